"""Checks for chapter 3 (attention)."""

from __future__ import annotations

import torch

from ..attention import soft_cap
from ._core import CheckFailed, call, exercise


@exercise("3.1")
def check_soft_cap(cap_logits) -> str:
    """``cap_logits(logits, cap) -> capped`` = cap · tanh(logits / cap)."""
    logits = torch.tensor([-1e4, -50.0, -3.0, 0.0, 0.1, 3.0, 29.0, 50.0, 1e4])
    got = torch.as_tensor(call(cap_logits, logits.clone(), 30.0))
    expected = soft_cap(logits, 30.0)
    if got.shape != expected.shape or not torch.allclose(got.float(), expected, atol=1e-5):
        raise CheckFailed(
            "compute cap · tanh(logits / cap): small logits pass almost unchanged, large ones "
            "approach ±cap; torch.clamp is a hard cap and is not what Grok-1 does"
        )
    return "your soft-cap matches 30·tanh(x/30)."


@exercise("3.2")
def check_kv_head_for_query(kv_head_for_query) -> str:
    """``kv_head_for_query(n, num_q_heads, num_kv_heads) -> g``: the KV head query head n reads."""
    for heads, kv_heads in ((48, 8), (4, 2), (6, 1), (8, 8), (9, 3)):
        group = heads // kv_heads
        for n in range(heads):
            got = call(kv_head_for_query, n, heads, kv_heads)
            if int(got) != n // group:
                raise CheckFailed(
                    f"with {heads} query heads over {kv_heads} KV heads, query head {n} uses KV "
                    f"head {n // group}, you said {got}: consecutive blocks of "
                    f"{group} query heads share one KV head (not n % {kv_heads})"
                )
    return "query head n reads KV head n // (H/G), as repeat_interleave does."


@exercise("3.3")
def check_attention_mask(build_mask) -> str:
    """``build_mask(input_mask [B, T]) -> [B, T, T]`` bool: causal AND key is a real token.

    Left padding alone cannot tell key masking from key-and-query masking (a padded query there
    sees only padded keys anyway), so the batch also holds a right-padded row: its padded queries
    still see the real keys before them.
    """
    input_mask = torch.tensor(
        [[True, True, True, True], [False, False, True, True], [True, True, False, False]]
    )
    got = torch.as_tensor(call(build_mask, input_mask.clone()))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    keys, queries = input_mask[:, None, :], input_mask[:, :, None]
    expected = causal[None] & keys
    if got.shape != expected.shape:
        raise CheckFailed(f"shape {tuple(got.shape)}, expected [B, T, T] = {tuple(expected.shape)}")
    got = got.bool()
    if torch.equal(got, expected):
        return "causal × key-padding mask, exactly grok-1's."
    if torch.equal(got, causal[None] & queries):
        raise CheckFailed("padding masks KEYS (columns), not queries (rows)")
    if torch.equal(got, expected & queries):
        raise CheckFailed(
            "padding masks keys only, not queries: you also blanked the rows of padded queries "
            "(causal & key_real & query_real). A padded query still sees the real keys before "
            "it; its output is ignored anyway, and a row with nothing to see would give NaN"
        )
    if torch.equal(got, causal.T[None] & keys):
        raise CheckFailed("the causal part is the LOWER triangle: key s ≤ query t (tril, not triu)")
    raise CheckFailed("query t may see key s when s ≤ t (lower triangle) and key s is a real token")
