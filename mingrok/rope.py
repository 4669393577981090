"""Rotary position embedding (RoPE) in Grok-1's split-half ("GPT-NeoX") form.

Dimension i of a head is paired with dimension i + d/2 (not with its neighbour 2i+1, the
"interleaved" form of the RoFormer paper). Each pair is rotated by the angle t·θ_i:

    θ_i = base^(-2i/d),  i = 0 .. d/2-1
    x'_i       = x_i cos(tθ_i) − x_{i+d/2} sin(tθ_i)
    x'_{i+d/2} = x_{i+d/2} cos(tθ_i) + x_i sin(tθ_i)

so q_t · k_s depends only on t − s. Positions start at a per-sequence offset, which is how a KV
cache continues a sequence. Reference: Su et al. (2021); xai-org/grok-1 ``RotaryEmbedding``.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=16)
def rope_inverse_frequencies(head_dim: int, base: float, device=None) -> torch.Tensor:
    """θ_i = base^(-2i/d) for i = 0 .. d/2-1, in float32 (shape [d/2]).

    Computed once per (d, base, device) and shared: generation calls RoPE for every new token,
    and these four ops would otherwise be repeated in every layer. Do not modify the result.
    """
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    return 1.0 / (base**exponents)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[x1, x2] → [−x2, x1] on the last axis: the 90° turn of every (i, i + d/2) pair."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate ``x`` [B, T, heads, d] by the positions [B, T] (or [T]); float32 inside.

    The 64 (for d = 128) frequencies are concatenated twice, not interleaved, so the phase of
    dim j equals that of dim j + d/2.
    """
    head_dim = x.shape[-1]
    inv_freq = rope_inverse_frequencies(head_dim, base, device=x.device)
    phase = positions.to(torch.float32)[..., None] * inv_freq  # [B, T, d/2] or [T, d/2]
    phase = torch.cat((phase, phase), dim=-1)[..., None, :]  # broadcast over heads
    x32 = x.float()
    rotated = x32 * torch.cos(phase) + rotate_half(x32) * torch.sin(phase)
    return rotated.to(x.dtype)
