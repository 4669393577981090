import math

import pytest
import torch

from mingrok import GROK1, SHAKESPEARE, MinGrok, MinGrokConfig, count_parameters, ffn_size
from mingrok.config import is_whole_number

from .conftest import tiny_config


def test_ffn_size_follows_grok_rule():
    assert ffn_size(6144, 8) == 32768
    assert ffn_size(96, 8) == 512
    assert ffn_size(100, 8) == 536
    assert ffn_size(64, 2.0) == 88  # the fixture's tiny config


def test_grok1_constants():
    assert GROK1.ffn_dim == 32768
    assert math.isclose(GROK1.embedding_scale, math.sqrt(6144), abs_tol=1e-12)
    assert math.isclose(GROK1.attn_scale, 1 / math.sqrt(128), abs_tol=1e-12)
    assert math.isclose(GROK1.output_multiplier, 1 / math.sqrt(3), abs_tol=1e-12)
    assert GROK1.queries_per_kv_head == 6


def test_grok1_parameter_count_is_exact():
    assert count_parameters(GROK1) == (315_684_820_992, 83_756_587_008)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"num_kv_heads": 1},
        {"num_kv_heads": 6, "num_experts": 8, "num_experts_per_token": 3},
        {"ffn_size": 40},
        {"router_noise": "noisy_topk", "router_noise_std": 1.0},
    ],
)
def test_count_parameters_equals_numel(changes):
    config = tiny_config(**changes)
    model = MinGrok(config)
    total, active = count_parameters(config)
    assert total == sum(p.numel() for p in model.parameters())
    expert = 3 * config.d_model * config.ffn_dim
    skipped = config.num_layers * (config.num_experts - config.num_experts_per_token) * expert
    assert active == total - skipped


def test_grok1_builds_on_meta_device():
    with torch.device("meta"):
        model = MinGrok(GROK1)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(GROK1)[0]
    assert all(p.device.type == "meta" for p in model.parameters())
    layer = model.layers[0]
    assert tuple(layer.moe.w_gate.shape) == (8, 6144, 32768)
    assert tuple(layer.moe.w_out.shape) == (8, 32768, 6144)
    assert tuple(layer.moe.router.linear.weight.shape) == (8, 6144)
    assert tuple(layer.attention.key.weight.shape) == (1024, 6144)


def test_shakespeare_preset_is_small():
    assert count_parameters(SHAKESPEARE)[0] <= 5_000_000


def test_round_trip_through_json():
    config = tiny_config(
        router_noise="gaussian", router_noise_std=0.5, ffn_size=40, moe_bf16_casts=True
    )
    assert MinGrokConfig.from_json(config.to_json()) == config


def test_json_written_before_a_field_existed_loads_with_its_default():
    values = tiny_config().to_dict()
    del values["moe_bf16_casts"]  # a checkpoint saved before the field was added
    assert MinGrokConfig.from_dict(values).moe_bf16_casts is False


def test_unknown_field_named():
    with pytest.raises(ValueError, match="bogus"):
        MinGrokConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_q_heads": 6, "num_kv_heads": 4}, "num_kv_heads"),
        ({"head_dim": 7}, "head_dim"),
        ({"num_experts": 4, "num_experts_per_token": 5}, "num_experts_per_token"),
        ({"d_model": 0}, "d_model"),
        ({"num_layers": 2.5}, "num_layers"),
        ({"vocab_size": True}, "vocab_size"),
        ({"ffn_size": -3}, "ffn_size"),
        ({"widening_factor": 0}, "widening_factor"),
        ({"rope_base": -1.0}, "rope_base"),
        ({"rms_norm_eps": 0.0}, "rms_norm_eps"),
        ({"attn_logit_softcap": 0.0}, "attn_logit_softcap"),
        ({"attn_logit_multiplier": -0.1}, "attn_logit_multiplier"),
        ({"embedding_multiplier": 0.0}, "embedding_multiplier"),
        ({"output_multiplier": 0.0}, "output_multiplier"),
        ({"router_noise": "loud"}, "router_noise"),
        ({"router_noise_std": -1.0}, "router_noise_std"),
        ({"router_noise": "jitter", "router_noise_std": 1.5}, "router_noise_std"),
        ({"router_aux_loss_coef": -1.0}, "router_aux_loss_coef"),
        ({"router_z_loss_coef": -1.0}, "router_z_loss_coef"),
        ({"dropout": 1.0}, "dropout"),
        ({"renormalize_gates": "yes"}, "renormalize_gates"),
        ({"moe_bf16_casts": 1}, "moe_bf16_casts"),
    ],
)
def test_invalid_values_name_field_value_and_rule(changes, field):
    with pytest.raises(ValueError) as error:
        tiny_config(**changes)
    message = str(error.value)
    assert f"MinGrokConfig.{field}=" in message
    assert repr(changes[field]) in message
    assert "must be" in message


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [(1, 1, True), (0, 1, False), (0, 0, True), (-1, 0, False), (True, 1, False), (2.0, 1, False)],
)
def test_one_whole_number_check_for_every_count(value, minimum, expected):
    assert is_whole_number(value, minimum) is expected
