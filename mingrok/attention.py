"""Grok-1's attention: grouped-query heads, RoPE, a scaled and soft-capped logit, masks after.

For query head n in KV group g = n // (H/G):

    ℓ_ts = 30 · tanh( (q_t · k_s) · m / 30 )     m = attn multiplier (1/√d_h in Grok-1)
    ℓ_ts = −1e30 where key s is masked (future position or padding)
    o_t  = Σ_s softmax_s(ℓ_ts) v_s

The soft-cap comes *before* the mask; the fill is the finite −1e30 (not −∞), so a query row whose
keys are all masked (inside a left padding) gets a uniform softmax instead of NaNs, exactly as in
the official code. Logits and softmax are float32 whatever the activation dtype.
Reference: xai-org/grok-1 ``model.py`` ``MultiHeadAttention``; Ainslie et al. (2023) for GQA.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MinGrokConfig
from .kv_cache import KVCache
from .rope import apply_rope

MASK_FILL = -1e30


def soft_cap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """cap · tanh(logits / cap): smooth, keeps small logits, bounds every logit in (−cap, cap)."""
    return cap * torch.tanh(logits / cap)


def causal_mask(key_mask: torch.Tensor, num_queries: int) -> torch.Tensor:
    """key_mask [B, S] (True = real key) → mask [B, T, S] of what each of the T queries may read.

    The queries are the last T of the S positions (S = T without a cache), so query t sits at
    position S − T + t and reads key s when s ≤ S − T + t and key s is not padding.
    """
    num_keys = key_mask.shape[1]
    query_index = torch.arange(num_keys - num_queries, num_keys, device=key_mask.device)
    key_index = torch.arange(num_keys, device=key_mask.device)
    causal = key_index[None, :] <= query_index[:, None]  # [T, S]
    return causal[None] & key_mask[:, None, :]


def grouped_query_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    multiplier: float,
    cap: float,
) -> torch.Tensor:
    """q [B, T, H, d], k/v [B, S, G, d], mask [B, T, S] (True = may attend) → [B, T, H, d].

    Query heads are grouped by reshaping, so heads g·(H/G) .. g·(H/G)+H/G−1 share KV head g,
    the same mapping as ``repeat_interleave(k, H // G, dim=heads)``.
    """
    batch, steps, num_q_heads, head_dim = q.shape
    num_kv_heads = k.shape[2]
    group = num_q_heads // num_kv_heads
    q = q.view(batch, steps, num_kv_heads, group, head_dim).permute(0, 2, 3, 1, 4)  # B,G,h,T,d
    k = k.permute(0, 2, 1, 3).unsqueeze(2)  # B,G,1,S,d
    v = v.permute(0, 2, 1, 3).unsqueeze(2)  # B,G,1,S,d
    logits = torch.matmul(q, k.transpose(-1, -2)).float() * multiplier  # B,G,h,T,S
    logits = soft_cap(logits, cap)
    logits = logits.masked_fill(~mask[:, None, None], MASK_FILL)
    weights = torch.softmax(logits, dim=-1).to(v.dtype)
    out = torch.matmul(weights, v)  # B,G,h,T,d
    return out.permute(0, 3, 1, 2, 4).reshape(batch, steps, num_q_heads, head_dim)


class Attention(nn.Module):
    """Projections (no biases), RoPE on q and k, grouped-query attention, output projection."""

    def __init__(self, config: MinGrokConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.config = config
        self.layer_index = layer_index
        d, h, g, dh = config.d_model, config.num_q_heads, config.num_kv_heads, config.head_dim
        self.query = nn.Linear(d, h * dh, bias=False)
        self.key = nn.Linear(d, g * dh, bias=False)
        self.value = nn.Linear(d, g * dh, bias=False)
        self.out = nn.Linear(h * dh, d, bias=False)  # grok-1: multi_head_attention/linear

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """x [B, T, D], positions [T] or [B, T], mask [B, T, S] → [B, T, D]."""
        config = self.config
        batch, steps, _ = x.shape
        q = self.query(x).view(batch, steps, config.num_q_heads, config.head_dim)
        k = self.key(x).view(batch, steps, config.num_kv_heads, config.head_dim)
        v = self.value(x).view(batch, steps, config.num_kv_heads, config.head_dim)
        # q and k share the positions: rotate them in one call, so the angles are computed once.
        rotated = apply_rope(torch.cat([q, k], dim=2), positions, config.rope_base)
        q, k = rotated.split([config.num_q_heads, config.num_kv_heads], dim=2)
        if cache is not None:  # keys are cached already rotated, as in grok-1
            k, v = cache.write(self.layer_index, k, v)
        out = grouped_query_attention(q, k, v, mask, config.attn_scale, config.attn_logit_softcap)
        return self.out(out.reshape(batch, steps, -1))
