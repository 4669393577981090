"""mingrok.parallel.load: a released checkpoint streamed into each rank's shard computes the
single-process model's logits (2 gloo processes), and rank counts that cannot split it are refused
with the sizes allowed."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from mingrok import MinGrok
from mingrok.__main__ import main
from mingrok.grok1 import config_from_grok1, save_checkpoint_released
from mingrok.parallel.launch import DistributedRun
from mingrok.parallel.load import build_sharded, fill, load_sharded
from mingrok.preflight import rank_needs
from mingrok.released import iter_checkpoint

from .conftest import finished, fixture_path, tiny_config, torchrun

CPU = torch.device("cpu")


def fixture_config():
    meta = json.loads(str(np.load(fixture_path("grok1_ckpt_e") / "reference.npz")["meta_json"]))
    return config_from_grok1(meta["config"]["lm"], meta["config"]["model"])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A tiny model written in the released format (int8 + bfloat16 scales), with its config:
    2 KV heads, so 2 ranks each hold a whole one (the fixture's single KV head is shared)."""
    folder = tmp_path_factory.mktemp("released")
    torch.manual_seed(0)
    config = tiny_config(d_model=32, ffn_size=48)
    save_checkpoint_released(MinGrok(config), folder)
    (folder / "config.json").write_text(config.to_json())
    return folder, config


def _check_two_ranks(folder, config_path):
    out, _ = finished(torchrun(2, "-m", "tests.distributed_load_checks", str(folder), config_path))
    return json.loads(out.strip().splitlines()[-1])


def test_two_ranks_load_their_shards_and_compute_the_one_process_logits(synthetic):
    folder, config = synthetic
    report = _check_two_ranks(folder, str(folder / "config.json"))
    assert report["world_size"] == 2
    assert set(report["max_abs_diff"]) == {
        f"{s}/{w}" for s in ("tensor", "expert") for w in ("float32", "int8")
    }
    assert max(report["max_abs_diff"].values()) <= 1e-5
    held = report["resident_bytes"]
    # int8 keeps 1 byte per matrix value (+ its scales) instead of 4
    assert held["tensor/int8"] < 0.6 * held["tensor/float32"]
    # each rank holds exactly what the pre-flight says it will (mingrok.scale's tables)
    for name, size in held.items():
        strategy, weights = name.split("/")
        assert size == rank_needs(config, 2, strategy, weights).parts["weights"], name


def test_two_ranks_share_the_fixtures_single_kv_head(tmp_path):
    config = fixture_config()
    (tmp_path / "config.json").write_text(config.to_json())
    report = _check_two_ranks(fixture_path("grok1_ckpt_e"), str(tmp_path / "config.json"))
    assert max(report["max_abs_diff"].values()) <= 1e-5


def test_one_process_streamed_load_is_the_whole_model(synthetic):
    folder, config = synthetic
    run = DistributedRun(0, 1, CPU)
    model = load_sharded(folder, config, run)
    assert all(p.device.type == "cpu" for p in model.parameters())
    pairs = dict(iter_checkpoint(folder, config))
    embed = pairs["language_model/in_out_embed/embeddings"]
    assert torch.equal(model.embed.weight, torch.as_tensor(embed))
    query = pairs["transformer/decoder_layer_1/multi_head_attention/query/w"].dequantize()
    assert torch.equal(model.layers[1].attention.query.weight, query.t())
    int8 = load_sharded(folder, config, run, weights="int8")
    stored = dict(int8.named_buffers())["layers.1.attention.query.parametrizations.weight.0.values"]
    assert stored.dtype == torch.int8
    assert torch.equal(int8.layers[1].attention.query.weight, query.t())


@pytest.mark.parametrize(
    ("world_size", "strategy", "message"),
    [
        (3, "tensor", "world_size=3 cannot split num_kv_heads=2 KV heads"),
        (3, "tensor", "allowed: [1, 2, 6]"),
        (3, "expert", "world_size=3 does not divide num_experts=4"),
        (3, "expert", "must be one of [1, 2, 4]"),
    ],
)
def test_a_rank_count_that_cannot_split_the_shapes_lists_the_sizes_allowed(
    world_size, strategy, message
):
    config = tiny_config(d_model=48, ffn_size=48)
    with pytest.raises(ValueError, match=re.escape(message)):
        build_sharded(config, DistributedRun(0, world_size, CPU), strategy)


def test_a_tensor_split_must_cut_the_released_rows_along_their_scale_blocks():
    config = tiny_config(d_model=48, ffn_size=48)  # 6 query heads, 2 KV heads: 6 ranks split it
    message = (
        "world_size=6 cuts the rows of multi_head_attention/linear and moe/linear_1 into 6 "
        "blocks, which do not line up with their 8 bfloat16 scale blocks as released; "
        "allowed: [1, 2]"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        build_sharded(config, DistributedRun(0, 6, CPU), "tensor")


def test_a_checkpoint_that_is_not_the_configs_is_refused_naming_the_tensor(synthetic):
    folder, config = synthetic
    run = DistributedRun(0, 1, CPU)
    pairs = list(iter_checkpoint(folder, config))
    with pytest.raises(KeyError, match="lacks 1 tensor"):
        fill(build_sharded(config, run, None), pairs[:-1], run, "float32")
    with pytest.raises(KeyError, match="comes twice"):
        fill(build_sharded(config, run, None), [*pairs, pairs[0]], run, "float32")
    wrong = [(pairs[0][0], torch.zeros(3, 5)), *pairs[1:]]
    with pytest.raises(ValueError, match=r"in_out_embed/embeddings' has shape \(3, 5\)"):
        fill(build_sharded(config, run, None), wrong, run, "float32")
    with pytest.raises(ValueError, match="weights='int4' is invalid"):
        fill(build_sharded(config, run, None), pairs, run, "int4")


# --- sample --grok1 under torchrun: each rank streams its part ---


@pytest.fixture(scope="module")
def fixture_options(tmp_path_factory):
    """sample's options for the shared released-format fixture, its config as a JSON file."""
    meta = json.loads(str(np.load(fixture_path("grok1_ckpt_e") / "reference.npz")["meta_json"]))
    config_file = tmp_path_factory.mktemp("grok1") / "config.json"
    config_file.write_text(json.dumps({key: meta["config"][key] for key in ("lm", "model")}))
    folder = str(fixture_path("grok1_ckpt_e"))
    return ["sample", "--grok1", folder, "--grok1-config", str(config_file), "--device", "cpu"]


@pytest.mark.parametrize(
    ("split", "weights"), [("--tensor-parallel", "int8"), ("--expert-parallel", "float32")]
)
def test_two_processes_sample_the_single_process_tokens(fixture_options, split, weights, capsys):
    args = [*fixture_options, "--prompt-ids", "5,6,7", "--max-new-tokens", "16", "--seed", "1"]
    args += ["--weights", weights]
    assert main(args) == 0
    alone = capsys.readouterr()
    out, err = finished(torchrun(2, "-m", "mingrok", *args, split))
    assert out == alone.out
    assert len(out.split()) == 3 + 16
    assert f"each of 2 ranks ({split[2:8]} parallel, --weights {weights}) needs" in err
    assert f"one process (the whole model, --weights {weights}) needs" in alone.err


def test_sample_refuses_before_reading_when_a_rank_cannot_hold_its_part(tmp_path, capsys):
    folder = tmp_path / "ckpt-0"
    folder.mkdir()
    for index in range(770):  # Grok-1's file names, empty: nothing may be read
        (folder / f"tensor{index:05d}_000").touch()
    with pytest.raises(SystemExit):
        main(["sample", "--grok1", str(tmp_path), "--prompt-ids", "5", "--device", "cpu"])
    err = capsys.readouterr().err
    assert "error: one process (the whole model, --weights float32) needs 1184.02 GiB" in err
    assert "weights 1176.02 GiB, KV cache 4.00 GiB, reading 3.00 GiB" in err


def test_sharded_sample_takes_float32_or_int8_matrices(fixture_options, capsys):
    args = [*fixture_options, "--prompt-ids", "5", "--tensor-parallel", "--grok1-dtype", "bfloat16"]
    with pytest.raises(SystemExit):
        main(args)
    assert "error: --grok1-dtype bfloat16 goes with one process and --weights float32" in (
        capsys.readouterr().err
    )
