"""mingrok.parallel: tensor and expert parallelism equal the single-process model.

The equality checks run inside real gloo processes (``tests/distributed_checks.py`` under
torchrun); the argument checks need no process group.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from mingrok import MinGrok
from mingrok.__main__ import main
from mingrok.config import GROK1
from mingrok.parallel import check_strategy, compare_sharded
from mingrok.parallel.tensor import allowed_tensor_parallel_sizes, tensor_parallel_config

from .conftest import finished, tiny_config, torchrun

MODELS = ("course", "pretrained", "fixture")


@pytest.mark.parametrize("world_size", [2, 4])
def test_sharded_logits_and_gradients_equal_one_process(world_size):
    out, _ = finished(torchrun(world_size, "-m", "tests.distributed_checks"))
    report = json.loads(out.strip().splitlines()[-1])
    assert report["world_size"] == world_size
    figures = report["max_abs_diff"]
    expected = {f"{m}/{s}" for m in MODELS for s in ("tensor", "expert")}
    assert set(figures) == expected | {"moe_layer/expert_local_tokens"}
    for name, diffs in figures.items():
        assert all(value <= 1e-5 for value in diffs.values()), (name, diffs)


def test_compare_sharded_reports_the_run_from_fresh_processes():
    torch.manual_seed(0)
    model = MinGrok(tiny_config())
    tokens = torch.randint(0, model.config.vocab_size, (2, 12))
    result = compare_sharded(model, tokens, world_size=2, strategy="expert")
    assert (result.world_size, result.strategy) == (2, "expert")
    assert result.max_abs_logit_diff <= 1e-5
    assert result.same_expert_choices
    assert 0 < result.seconds < result.launch_seconds
    with pytest.raises(AttributeError):
        result.world_size = 3  # frozen


@pytest.mark.parametrize(
    ("world_size", "strategy", "message"),
    [
        (0, "tensor", "world_size=0 is invalid: it must be an integer >= 1"),
        (2.0, "tensor", "world_size=2.0 is invalid"),
        (2, "pipeline", "strategy='pipeline' is unknown; choose one of ('tensor', 'expert')"),
        (3, "tensor", "world_size=3 cannot split num_kv_heads=2 KV heads"),
        (3, "expert", "world_size=3 does not divide num_experts=4"),
    ],
)
def test_bad_arguments_name_the_parameter_value_and_what_is_allowed(world_size, strategy, message):
    config = tiny_config()
    with pytest.raises(ValueError, match=re.escape(message)):
        check_strategy(config, world_size, strategy)
    with pytest.raises(ValueError, match=r"world_size|strategy"):  # before any process starts
        compare_sharded(MinGrok(config), torch.zeros(1, 4, dtype=torch.long), world_size, strategy)


def test_grok1_splits_over_its_8_way_mesh_and_shares_kv_heads_beyond_it():
    allowed = allowed_tensor_parallel_sizes(GROK1)
    assert {1, 2, 4, 8, 16} <= set(allowed) and 3 not in allowed
    eight = tensor_parallel_config(GROK1, 8)
    assert (eight.num_q_heads, eight.num_kv_heads, eight.ffn_dim) == (6, 1, 4096)
    sixteen = tensor_parallel_config(GROK1, 16)  # 16 ranks: each KV head on two ranks
    assert (sixteen.num_q_heads, sixteen.num_kv_heads, sixteen.ffn_dim) == (3, 1, 2048)


def test_sample_with_tensor_parallel_prints_the_single_process_text(capsys):
    args = ["sample", "--max-new-tokens", "40", "--seed", "3", "--device", "cpu"]
    assert main(args) == 0
    alone = capsys.readouterr().out
    out, _ = finished(torchrun(2, "-m", "mingrok", *args, "--tensor-parallel"))
    assert out == alone
    assert len(alone) > 40
