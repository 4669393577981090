"""An independent float64 NumPy transcription of grok-1's forward pass, used as a test oracle.

Written from the official ``model.py`` math (see ../shared/fixtures/README.md), sharing no code
with the package, so a bug in mingrok cannot hide in both places. Its three numeric modes are the
fixture's: ``f32`` computes everything unrounded; ``official`` rounds to bfloat16 where the code
casts even in float32 (the MoE's gates and output, hence its post-norm); ``bf16`` rounds every
value that production (``fprop_dtype=bfloat16``) holds in bfloat16, and nothing else.
"""

from __future__ import annotations

import math

import numpy as np

MODES = ("f32", "official", "bf16")


def bf16(x):
    """Round to the nearest bfloat16 (ties to even), returned as float64: keep the top 16 bits
    of the float32 pattern after adding half of the dropped part."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def _rms_norm(x, scale, eps=1e-5):
    return scale * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def _rope(x, base=10000.0):
    # x [B, T, heads, d]; positions 0..T-1; split-half pairing
    _, steps, _, d = x.shape
    inv_freq = 1.0 / base ** (np.arange(0, d, 2) / d)
    phase = np.arange(steps)[:, None] * inv_freq[None, :]
    phase = np.concatenate([phase, phase], axis=-1)[None, :, None, :]
    rotated = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], axis=-1)
    return x * np.cos(phase) + rotated * np.sin(phase)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def grok1_forward(params, lm, model, tokens, pad_token=0, mode="f32"):
    """Logits [B, T, V] of grok-1 for the flat Haiku ``params`` ([in, out] matrices)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: one of {MODES}")
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    act = bf16 if mode == "bf16" else (lambda x: x)  # the activation dtype's rounding
    moe_cast = bf16 if mode != "f32" else (lambda x: x)  # the MoE's hard-coded casts

    def linear(x, name):  # weights cast to the activation dtype inside Linear
        return act(x @ act(p[name]))

    heads, kv_heads, d = model["num_q_heads"], model["num_kv_heads"], model["key_size"]
    top_k = model["num_selected_experts"]
    batch, steps = tokens.shape
    valid = tokens > pad_token
    mask = valid[:, None, :] & np.tril(np.ones((steps, steps), dtype=bool))[None]  # [B, T, S]
    emb = act(p["language_model/in_out_embed/embeddings"])
    h = act(emb[tokens] * act(lm["embedding_multiplier_scale"]))
    for i in range(model["num_layers"]):
        pre = f"transformer/decoder_layer_{i}"
        a = act(_rms_norm(h, p[f"{pre}/rms_norm/scale"]))
        q = linear(a, f"{pre}/multi_head_attention/query/w").reshape(batch, steps, heads, d)
        k = linear(a, f"{pre}/multi_head_attention/key/w").reshape(batch, steps, kv_heads, d)
        v = linear(a, f"{pre}/multi_head_attention/value/w").reshape(batch, steps, kv_heads, d)
        q, k = act(_rope(q)), act(_rope(k))
        out = np.zeros((batch, steps, heads, d))
        for n in range(heads):
            g = n // (heads // kv_heads)
            s = act(np.einsum("btd,bsd->bts", q[:, :, n], k[:, :, g]))
            s = s * model["attn_output_multiplier"]
            s = 30.0 * np.tanh(s / 30.0)
            s = np.where(mask, s, -1e30)
            s = np.exp(s - s.max(-1, keepdims=True))
            s = act(s / s.sum(-1, keepdims=True))
            out[:, :, n] = act(np.einsum("bts,bsd->btd", s, v[:, :, g]))
        o = linear(out.reshape(batch, steps, heads * d), f"{pre}/multi_head_attention/linear/w")
        h = act(h + act(_rms_norm(o, p[f"{pre}/rms_norm_1/scale"])))
        m = act(_rms_norm(h, p[f"{pre}/rms_norm_2/scale"]))
        logits = m @ p[f"{pre}/router/w"]  # float32 weights, float32 compute
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs = probs / probs.sum(-1, keepdims=True)
        moe = np.zeros_like(m)
        for b in range(batch):
            for t in range(steps):
                for e in np.argsort(-probs[b, t], kind="stable")[:top_k]:
                    x = m[b, t]
                    # the two input projections in the activation dtype; the rest, promoted by
                    # the official code's float32 one-hot, unrounded
                    hidden = _gelu_tanh(act(x @ act(p[f"{pre}/moe/linear/w"][e])))
                    hidden = hidden * act(x @ act(p[f"{pre}/moe/linear_v/w"][e]))
                    gate = moe_cast(probs[b, t, e])
                    moe[b, t] += gate * (hidden @ act(p[f"{pre}/moe/linear_1/w"][e]))
        moe = moe_cast(moe)
        h = act(h + moe_cast(_rms_norm(moe, p[f"{pre}/rms_norm_3/scale"])))
    h = act(_rms_norm(h, p["language_model/rms_norm/scale"]))
    return act(act(h @ emb.T) * act(lm["output_multiplier_scale"]))


def random_params(lm, model, ffn, seed=0):
    """Seeded random parameters under grok-1's Haiku paths, scaled so every part matters."""
    rng = np.random.default_rng(seed)
    dim, heads = model["emb_size"], model["num_q_heads"]
    kv, d, experts = model["num_kv_heads"], model["key_size"], model["num_experts"]

    def normal(*shape, fan_in):
        return (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32)

    def scale(*shape):
        return (1 + 0.3 * rng.standard_normal(shape)).astype(np.float32)

    params = {
        "language_model/in_out_embed/embeddings": normal(lm["vocab_size"], dim, fan_in=16),
        "language_model/rms_norm/scale": scale(dim),
    }
    for i in range(model["num_layers"]):
        pre = f"transformer/decoder_layer_{i}"
        params.update(
            {
                f"{pre}/rms_norm/scale": scale(dim),
                f"{pre}/rms_norm_1/scale": scale(dim),
                f"{pre}/rms_norm_2/scale": scale(dim),
                f"{pre}/rms_norm_3/scale": scale(dim),
                f"{pre}/multi_head_attention/query/w": normal(dim, heads * d, fan_in=dim),
                f"{pre}/multi_head_attention/key/w": normal(dim, kv * d, fan_in=dim),
                f"{pre}/multi_head_attention/value/w": normal(dim, kv * d, fan_in=dim),
                f"{pre}/multi_head_attention/linear/w": normal(heads * d, dim, fan_in=heads * d),
                f"{pre}/router/w": normal(dim, experts, fan_in=dim / 4),
                f"{pre}/moe/linear/w": normal(experts, dim, ffn, fan_in=dim),
                f"{pre}/moe/linear_v/w": normal(experts, dim, ffn, fan_in=dim),
                f"{pre}/moe/linear_1/w": normal(experts, ffn, dim, fan_in=ffn),
            }
        )
    return params
