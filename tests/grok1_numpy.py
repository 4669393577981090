"""An independent float64 NumPy transcription of grok-1's forward pass, used as a test oracle.

Written from the official ``model.py`` math (see ../shared/fixtures/README.md), sharing no code
with the package, so a bug in mingrok cannot hide in both places.
"""

from __future__ import annotations

import math

import numpy as np


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


def grok1_forward(params, lm, model, tokens, pad_token=0):
    """Logits [B, T, V] of grok-1 for the flat Haiku ``params`` ([in, out] matrices)."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    heads, kv_heads, d = model["num_q_heads"], model["num_kv_heads"], model["key_size"]
    top_k = model["num_selected_experts"]
    batch, steps = tokens.shape
    valid = tokens > pad_token
    mask = valid[:, None, :] & np.tril(np.ones((steps, steps), dtype=bool))[None]  # [B, T, S]
    emb = p["language_model/in_out_embed/embeddings"]
    h = emb[tokens] * lm["embedding_multiplier_scale"]
    for i in range(model["num_layers"]):
        pre = f"transformer/decoder_layer_{i}"
        a = _rms_norm(h, p[f"{pre}/rms_norm/scale"])
        q = (a @ p[f"{pre}/multi_head_attention/query/w"]).reshape(batch, steps, heads, d)
        k = (a @ p[f"{pre}/multi_head_attention/key/w"]).reshape(batch, steps, kv_heads, d)
        v = (a @ p[f"{pre}/multi_head_attention/value/w"]).reshape(batch, steps, kv_heads, d)
        q, k = _rope(q), _rope(k)
        out = np.zeros((batch, steps, heads, d))
        for n in range(heads):
            g = n // (heads // kv_heads)
            s = np.einsum("btd,bsd->bts", q[:, :, n], k[:, :, g]) * model["attn_output_multiplier"]
            s = 30.0 * np.tanh(s / 30.0)
            s = np.where(mask, s, -1e30)
            s = np.exp(s - s.max(-1, keepdims=True))
            s = s / s.sum(-1, keepdims=True)
            out[:, :, n] = np.einsum("bts,bsd->btd", s, v[:, :, g])
        o = out.reshape(batch, steps, heads * d) @ p[f"{pre}/multi_head_attention/linear/w"]
        h = h + _rms_norm(o, p[f"{pre}/rms_norm_1/scale"])
        m = _rms_norm(h, p[f"{pre}/rms_norm_2/scale"])
        logits = m @ p[f"{pre}/router/w"]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs = probs / probs.sum(-1, keepdims=True)
        moe = np.zeros_like(m)
        for b in range(batch):
            for t in range(steps):
                for e in np.argsort(-probs[b, t], kind="stable")[:top_k]:
                    x = m[b, t]
                    hidden = _gelu_tanh(x @ p[f"{pre}/moe/linear/w"][e])
                    hidden = hidden * (x @ p[f"{pre}/moe/linear_v/w"][e])
                    moe[b, t] += probs[b, t, e] * (hidden @ p[f"{pre}/moe/linear_1/w"][e])
        h = h + _rms_norm(moe, p[f"{pre}/rms_norm_3/scale"])
    h = _rms_norm(h, p["language_model/rms_norm/scale"])
    return (h @ emb.T) * lm["output_multiplier_scale"]


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
