"""mingrok equals xAI's official grok-1 forward pass: on the shared fixture produced by the
official code, and on other shapes against an independent NumPy transcription."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mingrok.attention import causal_mask
from mingrok.grok1 import (
    config_from_grok1,
    dequantize,
    from_haiku_params,
    grok1_fields,
    input_mask_from_tokens,
    load_checkpoint,
    load_reference,
    save_checkpoint_released,
)
from mingrok.moe import MoEOutput, dense_moe_reference
from mingrok.released import CheckpointError, iter_checkpoint

from .conftest import fixture_path
from .grok1_numpy import grok1_forward, random_params

FIXTURE = "grok1_tiny_a.npz"
ATOL = 1e-4


@pytest.fixture(scope="module")
def reference():
    return load_reference(fixture_path(FIXTURE))


def trace(model, reference):
    """Run ``model`` once on the fixture, recording each module's output under grok-1's names."""
    acts, hooks = {}, []

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
            hooks.append(module.register_forward_hook(record(f"{pre}/{name}")))
    hooks.append(model.final_norm.register_forward_hook(record("language_model/rms_norm")))
    with torch.no_grad():
        out = model(reference.tokens, reference.input_mask)
    for hook in hooks:
        hook.remove()
    return out, acts


@pytest.fixture(scope="module")
def traced(reference):
    return trace(reference.model(), reference)


def reference_activation(reference, mode, name):
    """The fixture's activation ``name`` (as ``trace`` names it) in numeric mode ``mode``."""
    return torch.as_tensor(reference.arrays[f"{mode}/act/{name}"])


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
        expected = reference_activation(reference, "f32", name)
        torch.testing.assert_close(ours, expected, rtol=ATOL, atol=ATOL, msg=name)


# The fixture's two other numeric modes (../shared/fixtures/README.md, "Dtypes"). "official" is
# grok-1's code in float32 with its two hard-coded bfloat16 casts in the MoE; "bf16" is production,
# fprop_dtype=bfloat16, compiled by XLA: a statistical reference, not one to equal.


@pytest.fixture(scope="module")
def official_model(reference):
    return from_haiku_params(reference.params, reference.config.replace(moe_bf16_casts=True))


@pytest.fixture(scope="module")
def bf16_model(reference):
    return reference.model().to(torch.bfloat16)


@pytest.fixture(scope="module")
def traced_modes(reference, official_model, bf16_model):
    return {
        "official": trace(official_model, reference),
        "bf16": trace(bf16_model, reference),
    }


def test_official_mode_logits_activations_and_routing(reference, traced, traced_modes):
    out, acts = traced_modes["official"]
    expected = torch.as_tensor(reference.arrays["official/logits"])
    assert (out.logits - expected).abs().max().item() <= 5e-3  # measured 1.9e-6
    # the two casts are what this mode measures: the float32 model is 9.3e-3 away
    assert (traced[0].logits - expected).abs().max().item() > 5e-3
    for name, ours in acts.items():
        ours, expected = ours.float(), reference_activation(reference, "official", name)
        torch.testing.assert_close(ours, expected, rtol=0, atol=2e-2, msg=name)
    for i, stats in enumerate(out.router_stats):
        key = f"official/act/transformer/decoder_layer_{i}/router/topk_index"
        index = torch.as_tensor(reference.arrays[key]).long()
        assert torch.equal(stats.experts.view(index.shape), index)


def test_activation_dtypes_are_the_official_codes(reference, traced_modes):
    recorded = json.loads(str(reference.arrays["meta_json"]))["activation_dtypes"]
    for mode, (out, acts) in traced_modes.items():
        for name, ours in acts.items():
            assert ours.dtype == getattr(torch, recorded[mode][name]), (mode, name)
        assert out.router_stats[0].logits.dtype == torch.float32  # router/logits: float32


def test_bf16_logits_agree_with_production_as_closely_as_a_faithful_port(reference, traced_modes):
    """The README asks mean |Δ| ≤ 0.05, correlation ≥ 0.99, argmax agreement ≥ 0.95; these are
    the figures measured here with a margin (mean 0.0065, correlation 0.99998, argmax 1.0). A plain
    ``.to(torch.bfloat16)`` of the float32 model measured 0.0095 and 0.99996: the whole-model
    figures barely tell the two apart, the tests below do."""
    out, _ = traced_modes["bf16"]
    valid = reference.input_mask
    ours, expected = out.logits[valid], torch.as_tensor(reference.arrays["bf16/logits"])[valid]
    assert (ours - expected).abs().mean().item() <= 0.01
    assert torch.corrcoef(torch.stack([ours.flatten(), expected.flatten()]))[0, 1] >= 0.9999
    assert (ours.argmax(-1) == expected.argmax(-1)).float().mean().item() >= 0.98


def test_bf16_activations_layer_by_layer(reference, traced_modes):
    """Relative error of every activation ≤ 2e-2 (measured ≤ 1.05e-2), and the first block of
    layer 0, before any residual add, bit for bit (measured: all elements; with the norm scales
    rounded to bfloat16, as a plain ``.to(torch.bfloat16)`` does, 72%, 25% and 24% of them)."""
    _, acts = traced_modes["bf16"]
    for name, ours in acts.items():
        ours, expected = ours.float(), reference_activation(reference, "bf16", name)
        assert ((ours - expected).norm() / expected.norm()).item() <= 2e-2, name
    for name in ("rms_norm", "multi_head_attention", "rms_norm_1"):
        name = f"transformer/decoder_layer_0/{name}"
        assert_bf16_equal(acts[name], reference_activation(reference, "bf16", name), name)


def bf16_spacing(x: torch.Tensor) -> torch.Tensor:
    """The gap between consecutive bfloat16 numbers at |x| (8 significant bits)."""
    exponent = torch.frexp(x.float().abs().clamp_min(2**-126)).exponent
    return torch.ldexp(torch.ones_like(x, dtype=torch.float32), exponent - 8)


def bf16_equal_fraction(ours: torch.Tensor, expected: torch.Tensor) -> float:
    return (ours.float() == expected).float().mean().item()


def assert_bf16_equal(ours, expected, name, at_least=0.99):
    """At least 99% of the elements bit-equal, none more than one bfloat16 step away: what two
    float32 computations of one value in a different order give once rounded."""
    assert bf16_equal_fraction(ours, expected) >= at_least, name
    assert ((ours.float() - expected).abs() <= bf16_spacing(expected)).all(), name


@pytest.mark.parametrize("layer", [0, 1])
def test_bf16_modules_reproduce_production_from_its_own_inputs(reference, bf16_model, layer):
    """Each module fed the reference's bf16 input gives the reference's output, to the rounding.

    The pre-MoE norm reads the residual sum before it is rounded: XLA fuses the add into the norm
    and keeps it in float32 (fed the rounded bfloat16 sum it matches 77% of the elements). That
    fusion, and the final norm's, is what leaves the whole-model gap measured above.
    """
    block = bf16_model.layers[layer]

    def act(name):
        return reference_activation(reference, "bf16", f"transformer/decoder_layer_{layer}/{name}")

    steps = reference.tokens.shape[1]
    mask = causal_mask(reference.input_mask, steps)
    with torch.no_grad():
        attended = block.attention(act("rms_norm").bfloat16(), torch.arange(steps), mask)
        assert_bf16_equal(attended, act("multi_head_attention"), "attention")
        normed = block.post_attention_norm(act("multi_head_attention").bfloat16())
        assert_bf16_equal(normed, act("rms_norm_1"), "rms_norm_1")
        normed = block.pre_moe_norm(act("input") + act("rms_norm_1"))  # the unrounded sum
        assert_bf16_equal(normed.bfloat16(), act("rms_norm_2"), "rms_norm_2")
        moe_out, stats = block.moe(act("rms_norm_2").bfloat16())
        assert_bf16_equal(moe_out, act("moe"), "moe")
        torch.testing.assert_close(
            stats.logits.view(act("router/logits").shape), act("router/logits"), rtol=0, atol=1e-5
        )
        assert torch.equal(
            stats.experts.view(act("router/topk_index").shape).int(), act("router/topk_index")
        )
        assert_bf16_equal(
            block.post_moe_norm(act("moe").bfloat16()), act("rms_norm_3"), "rms_norm_3"
        )


def test_bf16_unembedding_rounds_the_output_multiplier_as_jax_does(reference, bf16_model):
    """The model's own unembedding of the reference's final norm output gives its logits bit for
    bit (measured: all of them): JAX multiplies bfloat16 by 1/√3 rounded to bfloat16, 0.578125."""
    final = reference_activation(reference, "bf16", "language_model/rms_norm").bfloat16()
    hook = bf16_model.final_norm.register_forward_hook(lambda module, inputs, output: final)
    try:
        with torch.no_grad():
            logits = bf16_model(reference.tokens, reference.input_mask).logits
    finally:
        hook.remove()
    assert_bf16_equal(logits, torch.as_tensor(reference.arrays["bf16/logits"]), "logits")


def test_bf16_shortcuts_would_be_caught(reference, bf16_model):
    """What a plain ``.to(torch.bfloat16)`` (or an all-bfloat16 expert) computes differently
    fails the checks above: each shortcut, fed the same reference input, misses the reference."""
    block = bf16_model.layers[0]

    def act(name):
        return reference_activation(reference, "bf16", f"transformer/decoder_layer_0/{name}")

    x, norm = act("input"), block.pre_attention_norm
    rounded_scale = norm.scale.bfloat16().float()
    normed = F.rms_norm(x, norm.scale.shape, rounded_scale, norm.eps).bfloat16()
    assert bf16_equal_fraction(normed, act("rms_norm")) < 0.9  # scale rounded to bfloat16

    moe_in, router = act("rms_norm_2"), block.moe.router
    rounded_router = F.linear(moe_in, router.linear.weight.bfloat16().float())
    assert (rounded_router - act("router/logits")).abs().max() > 1e-3  # router weights rounded

    stats = router(moe_in.view(-1, moe_in.shape[-1]))
    moe = block.moe
    all_bf16 = dense_moe_reference(
        moe_in.view(-1, moe_in.shape[-1]).bfloat16(),
        stats.experts,
        stats.gates.bfloat16(),
        moe.w_gate,
        moe.w_value,
        moe.w_out,
    )
    assert bf16_equal_fraction(all_bf16.view(moe_in.shape), act("moe")) < 0.9  # experts in bf16

    final = reference_activation(reference, "bf16", "language_model/rms_norm").bfloat16()
    unrounded = (final @ bf16_model.embed.weight.t()).float() * reference.config.output_multiplier
    assert bf16_equal_fraction(unrounded, torch.as_tensor(reference.arrays["bf16/logits"])) < 0.5


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


def numpy_case(shape, mode):
    """A random grok-1 of this shape, its padded tokens, and the NumPy transcription's logits."""
    shape = dict(shape)
    side, pads = shape.pop("pad")
    model_cfg = dict(num_layers=2, widening_factor=2.5, attn_output_multiplier=0.3, **shape)
    lm_cfg = dict(
        vocab_size=50,
        sequence_len=16,
        embedding_multiplier_scale=math.sqrt(shape["emb_size"]),  # not a bfloat16 number
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
    expected = grok1_forward(params, lm_cfg, model_cfg, tokens, mode=mode)
    return params, config, torch.as_tensor(tokens), torch.as_tensor(expected, dtype=torch.float32)


def mode_logits(params, config, tokens, mode):
    """mingrok's logits in numeric mode ``mode``: float32, moe_bf16_casts, or bfloat16."""
    if mode == "official":
        config = config.replace(moe_bf16_casts=True)
    model = from_haiku_params(params, config)
    if mode == "bf16":
        model = model.to(torch.bfloat16)
    with torch.no_grad():
        return model(tokens, input_mask_from_tokens(tokens)).logits


SHAPE_IDS = ["gqa3-right", "mqa-top3-left", "mha-left"]


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_other_shapes_equal_numpy_transcription(shape):
    params, config, tokens, expected = numpy_case(shape, "f32")
    assert (mode_logits(params, config, tokens, "f32") - expected).abs().max().item() <= ATOL


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_other_shapes_in_official_and_bf16_modes_equal_numpy_transcription(shape):
    """Official mode within the README's 5e-3 (measured ≤ 1.7e-4). In bfloat16 the NumPy
    transcription rounds where production holds bfloat16 and nowhere else; measured: every
    logit bit for bit. A plain ``.to(torch.bfloat16)`` measured mean |Δ| 0.0076-0.0092 and no
    logit equal, so the bounds (mean ≤ 2e-3, half the logits bit-equal) leave room for a
    rounding flip on another CPU and none for the shortcut."""
    params, config, tokens, expected = numpy_case(shape, "official")
    assert (mode_logits(params, config, tokens, "official") - expected).abs().max().item() <= 5e-3
    params, config, tokens, expected = numpy_case(shape, "bf16")
    logits = mode_logits(params, config, tokens, "bf16")
    assert (logits - expected).abs().mean().item() <= 2e-3
    assert (logits == expected).float().mean().item() >= 0.5
    float32 = mode_logits(params, config, tokens, "f32")  # the oracle tells the modes apart
    assert (float32 - expected).abs().mean().item() > 2e-3


def test_numpy_transcription_reproduces_the_fixture_in_every_mode(reference):
    """The oracle's own check: on the fixture its official mode is within 5e-3 of the official
    code (measured 6.3e-4) and its bf16 mode as close to production as mingrok (mean 0.0064)."""
    lm, model = reference.raw_config["lm"], reference.raw_config["model"]
    tokens = reference.tokens.numpy()
    for mode, bound in (("f32", ATOL), ("official", 5e-3)):
        logits = grok1_forward(reference.params, lm, model, tokens, mode=mode)
        assert np.abs(logits - reference.arrays[f"{mode}/logits"]).max() <= bound, mode
    logits = grok1_forward(reference.params, lm, model, tokens, mode="bf16")
    assert np.abs(logits - reference.arrays["bf16/logits"]).mean() <= 0.01


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


# --- the released checkpoint format (../shared/fixtures/grok1_ckpt_e, written by xAI's code) ---

CKPT = "grok1_ckpt_e"


@pytest.fixture(scope="module")
def ckpt():
    """The checkpoint folder, its reference logits and its config (grok-1's field names)."""
    path = fixture_path(CKPT)
    arrays = np.load(path / "reference.npz")
    raw = json.loads(str(arrays["meta_json"]))["config"]
    config = config_from_grok1(raw["lm"], raw["model"])
    return SimpleNamespace(path=path, arrays=arrays, config=config, raw=raw)


def per_sequence_logits(model, tokens):
    """Each sequence alone, batch 1 (xAI's int8 ``Linear`` only works so), grok-1's padding rule."""
    with torch.no_grad():
        rows = [model(row[None], input_mask_from_tokens(row[None])).logits for row in tokens]
    return torch.cat(rows)


@pytest.fixture(scope="module")
def ckpt_tokens(ckpt):
    tokens = torch.as_tensor(ckpt.arrays["tokens"]).long()
    assert (tokens[1, -5:] == 0).all() and (tokens[1, :-5] > 0).all()  # right-padded by 5
    return tokens


def test_load_checkpoint_computes_what_xais_code_computes(ckpt, ckpt_tokens):
    """With the MoE's bfloat16 casts, float32: the op-by-op run (every cast honoured) to 1e-4
    (measured 9.5e-7), the jitted one, where XLA drops the rounding of the expert weights'
    product, to 3e-2 (measured 2.24e-2)."""
    model = load_checkpoint(ckpt.path, ckpt.config.replace(moe_bf16_casts=True))
    logits = per_sequence_logits(model, ckpt_tokens)
    eager = torch.as_tensor(ckpt.arrays["logits_official_eager"])
    assert (logits - eager).abs().max().item() <= 1e-4
    jitted = torch.as_tensor(ckpt.arrays["logits_official"])
    assert (logits - jitted).abs().max().item() <= 3e-2


def test_dequantising_without_xais_rounding_is_visibly_off(ckpt, ckpt_tokens):
    """q·s kept in float32 instead of rounded to bfloat16: 2.8e-2 off the eager run."""
    params = {
        name: dequantize(value.weight, value.scales.float()) if hasattr(value, "scales") else value
        for name, value in iter_checkpoint(ckpt.path, ckpt.config)
    }
    model = from_haiku_params(params, ckpt.config.replace(moe_bf16_casts=True))
    eager = torch.as_tensor(ckpt.arrays["logits_official_eager"])
    assert (per_sequence_logits(model, ckpt_tokens) - eager).abs().max().item() > 1e-2


def test_load_checkpoint_in_bfloat16_agrees_with_production(ckpt, ckpt_tokens):
    """The fixture README's statistics over valid positions: mean |Δ| ≤ 0.05 (measured 0.0155),
    Pearson ≥ 0.99 (0.9986), argmax agreement ≥ 0.95 (26 of 27 positions)."""
    model = load_checkpoint(ckpt.path, ckpt.config, dtype=torch.bfloat16)
    assert model.embed.weight.dtype == torch.bfloat16
    assert model.layers[0].pre_attention_norm.scale.dtype == torch.float32  # as grok-1 keeps it
    valid = input_mask_from_tokens(ckpt_tokens)
    ours = per_sequence_logits(model, ckpt_tokens)[valid]
    expected = torch.as_tensor(ckpt.arrays["logits_bf16"])[valid]
    assert (ours - expected).abs().mean().item() <= 0.05
    assert torch.corrcoef(torch.stack([ours.flatten(), expected.flatten()]))[0, 1] >= 0.99
    assert (ours.argmax(-1) == expected.argmax(-1)).float().mean().item() >= 0.95


def test_load_checkpoint_checks_the_config_before_allocating(ckpt):
    """The default config is the real Grok-1: a 1.26 TB float32 model that the check refuses
    from the file count alone, before anything is allocated."""
    with pytest.raises(
        CheckpointError, match=r"holds 38 tensor files; a 64-layer config needs 770"
    ):
        load_checkpoint(ckpt.path)
    with pytest.raises(ValueError, match=r"dtype=torch.float16 is invalid"):
        load_checkpoint(ckpt.path, ckpt.config, dtype=torch.float16)


def test_grok1_fields_invert_config_from_grok1(ckpt):
    fields = grok1_fields(ckpt.config)
    assert config_from_grok1(fields["lm"], fields["model"]) == ckpt.config
    for name in fields["model"]:
        assert fields["model"][name] == pytest.approx(ckpt.raw["model"][name]), name
    with pytest.raises(ValueError, match=r"rope_base=500000.0 has no grok-1 config field"):
        grok1_fields(ckpt.config.replace(rope_base=500000.0))
    with pytest.raises(ValueError, match=r"ffn_size=40 is not grok-1's rule"):
        grok1_fields(ckpt.config.replace(ffn_size=40))


def test_shipped_model_round_trips_through_the_released_format(tmp_path):
    """Written as xAI released Grok-1 (int8 attention and experts) and read back, the shipped model
    loses under 1e-3 nats/char on the validation text (measured +4.8e-5 on 4 windows)."""
    from mingrok.data import load_shakespeare, split_text
    from mingrok.pretrained import load
    from mingrok.train import evaluate_nats_per_char, token_char_lengths

    from .conftest import shakespeare_path

    model, tokenizer = load("shakespeare")
    folder = save_checkpoint_released(model, tmp_path)
    assert len(list(folder.iterdir())) == 2 + 12 * model.config.num_layers
    again = load_checkpoint(tmp_path, model.config)
    state, restored = model.state_dict(), again.state_dict()
    for name in ("embed.weight", "final_norm.scale", "layers.3.moe.router.linear.weight"):
        assert torch.equal(state[name], restored[name]), name  # float32 tensors stored exactly
    _, val_text = split_text(load_shakespeare(shakespeare_path()))
    ids = torch.tensor(tokenizer.encode(val_text[:5000]))
    lengths = token_char_lengths(tokenizer)
    before = evaluate_nats_per_char(model, ids, lengths, max_windows=4)
    after = evaluate_nats_per_char(again, ids, lengths, max_windows=4)
    assert 0 < abs(after - before) <= 1e-3
