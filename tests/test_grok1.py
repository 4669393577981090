"""mingrok equals xAI's official grok-1 forward pass: on the shared fixture produced by the
official code, and on other shapes against an independent NumPy transcription."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mingrok.grok1 import (
    config_from_grok1,
    dequantize,
    from_haiku_params,
    input_mask_from_tokens,
    load_reference,
)
from mingrok.moe import MoEOutput

from .conftest import fixture_path
from .grok1_numpy import grok1_forward, random_params

FIXTURE = "grok1_tiny_a.npz"
ATOL = 1e-4


@pytest.fixture(scope="module")
def reference():
    return load_reference(fixture_path(FIXTURE))


@pytest.fixture(scope="module")
def traced(reference):
    """Run the loaded model once, recording each module's output under grok-1's names."""
    model = reference.model()
    acts = {}

    def record(name):
        def hook(module, inputs, output):
            if isinstance(output, MoEOutput):
                output = output.output
            elif isinstance(output, tuple):  # a DecoderLayer: (h, router stats)
                output = output[0]
            acts[name] = output

        return hook

    for i, layer in enumerate(model.layers):
        pre = f"transformer/decoder_layer_{i}"
        names = {
            "rms_norm": layer.pre_attention_norm,
            "multi_head_attention": layer.attention,
            "rms_norm_1": layer.post_attention_norm,
            "rms_norm_2": layer.pre_moe_norm,
            "moe": layer.moe,
            "rms_norm_3": layer.post_moe_norm,
            "output": layer,
        }
        for name, module in names.items():
            module.register_forward_hook(record(f"{pre}/{name}"))
    model.final_norm.register_forward_hook(record("language_model/rms_norm"))
    with torch.no_grad():
        out = model(reference.tokens, reference.input_mask)
    return out, acts


def test_config_from_fixture(reference):
    config = reference.config
    assert (config.d_model, config.num_layers, config.head_dim) == (64, 2, 16)
    assert (config.num_q_heads, config.num_kv_heads) == (4, 2)
    assert config.ffn_dim == reference.raw_config["ffn_size"] == 88
    assert config.attn_scale == 0.25 and config.embedding_scale == 8.0


def test_logits_equal_official(reference, traced):
    out, _ = traced
    expected = torch.as_tensor(reference.arrays["logits"])
    assert out.logits.dtype == torch.float32
    assert (out.logits - expected).abs().max().item() <= ATOL


def test_routing_equals_official(reference, traced):
    out, _ = traced
    batch, steps = reference.tokens.shape
    for i, stats in enumerate(out.router_stats):
        pre = f"f32/act/transformer/decoder_layer_{i}/router"
        index = torch.as_tensor(reference.arrays[f"{pre}/topk_index"]).long()
        assert torch.equal(stats.experts.view(batch, steps, -1), index)
        for ours, name in (
            (stats.probs, "probs"),
            (stats.logits, "logits"),
            (stats.gates, "topk_gate"),
        ):
            expected = torch.as_tensor(reference.arrays[f"{pre}/{name}"])
            torch.testing.assert_close(ours.view(expected.shape), expected, rtol=ATOL, atol=ATOL)


def test_every_layer_activation_equals_official(reference, traced):
    _, acts = traced
    assert len(acts) == 2 * 7 + 1
    for name, ours in acts.items():
        expected = torch.as_tensor(
            reference.arrays[f"f32/act/transformer/{name}"]
            if name.startswith("decoder")
            else reference.arrays[f"f32/act/{name}"]
        )
        torch.testing.assert_close(ours, expected, rtol=ATOL, atol=ATOL, msg=name)


SHAPES = [
    # H·d ≠ D, 3 query heads per KV head, 4 experts, top-2, right padding
    dict(
        emb_size=48,
        key_size=8,
        num_q_heads=6,
        num_kv_heads=2,
        num_experts=4,
        num_selected_experts=2,
        pad=("right", [0, 3]),
    ),
    # MQA, 8 experts, top-3, left padding
    dict(
        emb_size=32,
        key_size=12,
        num_q_heads=4,
        num_kv_heads=1,
        num_experts=8,
        num_selected_experts=3,
        pad=("left", [2, 0]),
    ),
    # plain MHA, 8 experts, top-2, both rows padded on the left
    dict(
        emb_size=40,
        key_size=10,
        num_q_heads=2,
        num_kv_heads=2,
        num_experts=8,
        num_selected_experts=2,
        pad=("left", [1, 4]),
    ),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["gqa3-right", "mqa-top3-left", "mha-left"])
def test_other_shapes_equal_numpy_transcription(shape):
    shape = dict(shape)
    side, pads = shape.pop("pad")
    model_cfg = dict(num_layers=2, widening_factor=2.5, attn_output_multiplier=0.3, **shape)
    lm_cfg = dict(
        vocab_size=50,
        sequence_len=16,
        embedding_multiplier_scale=4.0,
        output_multiplier_scale=0.5773502691896257,
        pad_token=0,
    )
    config = config_from_grok1(lm_cfg, model_cfg)
    params = random_params(lm_cfg, model_cfg, config.ffn_dim, seed=len(pads) + shape["emb_size"])
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, 50, size=(2, 9))
    for row, pad in enumerate(pads):
        if pad and side == "left":
            tokens[row, :pad] = 0
        elif pad:
            tokens[row, -pad:] = 0
    expected = grok1_forward(params, lm_cfg, model_cfg, tokens)
    model = from_haiku_params(params, config)
    tokens_t = torch.as_tensor(tokens)
    with torch.no_grad():
        logits = model(tokens_t, input_mask_from_tokens(tokens_t)).logits
    assert (logits - torch.as_tensor(expected, dtype=torch.float32)).abs().max().item() <= ATOL


def test_nested_haiku_tree_and_quantized_weights_load(reference):
    nested: dict = {}
    for key, value in reference.params.items():
        module, name = key.rsplit("/", 1)
        nested.setdefault(module, {})[name] = value
    # quantize one expert tensor like the release: int8 values with per-block scales (G = 2)
    key = "transformer/decoder_layer_0/moe/linear_1"
    w = nested[key]["w"]
    scales = np.abs(w).reshape(w.shape[0], 2, -1, w.shape[-1]).max(axis=2) / 127
    q = np.round(w.reshape(w.shape[0], 2, -1, w.shape[-1]) / scales[:, :, None]).astype(np.int8)
    nested[key]["w"] = SimpleNamespace(weight=q.reshape(w.shape), scales=scales.astype(np.float32))
    model = from_haiku_params(nested, reference.config)
    loaded = model.layers[0].moe.w_out.detach()
    torch.testing.assert_close(loaded, torch.as_tensor(dequantize(q.reshape(w.shape), scales)))
    assert (loaded - torch.as_tensor(w)).abs().max() <= scales.max() / 2 + 1e-6


def test_dequantize_groups_along_input_axis():
    q = torch.arange(-8, 8, dtype=torch.int8).reshape(4, 4)
    scales = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
    w = dequantize(q, scales)
    torch.testing.assert_close(w[:2], q[:2].float() * scales[0])
    torch.testing.assert_close(w[2:], q[2:].float() * scales[1])
    torch.testing.assert_close(dequantize(q, scales[:1]), q.float() * scales[0])
    with pytest.raises(ValueError, match="do not fit"):
        dequantize(q, torch.ones(3, 4))


def test_missing_unexpected_and_misshaped_keys_are_named(reference):
    params = dict(reference.params)
    missing = dict(params)
    del missing["transformer/decoder_layer_1/router/w"]
    with pytest.raises(KeyError, match="decoder_layer_1/router/w"):
        from_haiku_params(missing, reference.config)
    extra = dict(params, **{"transformer/decoder_layer_9/router/w": np.zeros((64, 8))})
    with pytest.raises(KeyError, match="decoder_layer_9"):
        from_haiku_params(extra, reference.config)
    wrong = dict(params)
    wrong["transformer/decoder_layer_0/multi_head_attention/key/w"] = np.zeros((64, 16))
    with pytest.raises(ValueError, match=r"key/w.*\(64, 16\).*\(64, 32\)"):
        from_haiku_params(wrong, reference.config)


def test_config_errors_and_defaults():
    model = dict(
        emb_size=16,
        key_size=4,
        num_q_heads=4,
        num_kv_heads=2,
        num_layers=1,
        num_experts=4,
        num_selected_experts=2,
    )
    config = config_from_grok1({"vocab_size": 10}, model)
    assert config.attn_scale == 1.0 and config.embedding_scale == 1.0  # grok-1 class defaults
    assert config.ffn_dim == 48  # widening factor default 4.0
    with pytest.raises(ValueError, match="value_size"):
        config_from_grok1({"vocab_size": 10}, dict(model, value_size=8))
    with pytest.raises(ValueError, match="emb_size"):
        config_from_grok1({"vocab_size": 10}, {k: v for k, v in model.items() if k != "emb_size"})
    with pytest.raises(ValueError, match="num_experts"):
        config_from_grok1({"vocab_size": 10}, dict(model, num_experts=-1))
