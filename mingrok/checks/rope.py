"""Checks for chapter 4 (RoPE)."""

from __future__ import annotations

import torch

from ..rope import apply_rope, rope_inverse_frequencies, rotate_half
from ._core import CheckFailed, call, exercise


@exercise("4.1")
def check_inverse_frequencies(inverse_frequencies) -> str:
    """``inverse_frequencies(head_dim, base) -> [head_dim / 2]`` with θ_i = base^(−2i/d)."""
    for head_dim, base in ((128, 10000.0), (16, 100.0)):
        got = torch.as_tensor(call(inverse_frequencies, head_dim, base)).float()
        expected = rope_inverse_frequencies(head_dim, base)
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-5):
            raise CheckFailed(
                f"for head_dim={head_dim}, base={base}: θ_i = base^(−2i/d) for i = 0..d/2−1, "
                "so θ_0 = 1 and the list has d/2 entries"
            )
    return "your frequencies match: one per pair of dimensions, from 1 down to ≈ 1/base."


@exercise("4.2")
def check_rotate_half(rotate) -> str:
    """``rotate(x) -> [−x₂, x₁]`` where x₁, x₂ are the two halves of the last axis."""
    x = torch.arange(1.0, 9.0).reshape(1, 8)
    got = torch.as_tensor(call(rotate, x.clone()))
    if torch.equal(got, -rotate_half(x)):
        raise CheckFailed(
            f"got {got.flatten().tolist()}: the signs are swapped; the minus goes on the SECOND "
            "half, [−x₂, x₁] (a quarter turn counter-clockwise)"
        )
    if not torch.equal(got, rotate_half(x)):
        raise CheckFailed(
            f"got {got.flatten().tolist()}, expected {rotate_half(x).flatten().tolist()}: Grok-1 "
            "pairs dim i with i + d/2 (split halves), not neighbours 2i, 2i+1"
        )
    return "split-half rotate_half, as in grok-1 and GPT-NeoX."


@exercise("4.3")
def check_rope(rope) -> str:
    """``rope(x [T, heads, d], positions [T], base) -> rotated``, split-half form."""
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(6, 2, 16, generator=generator)
    positions = torch.arange(3, 9)
    got = torch.as_tensor(call(rope, x.clone(), positions.clone(), 10000.0))
    expected = apply_rope(x[None], positions, 10000.0)[0]
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
        raise CheckFailed(
            "x·cos(tθ) + rotate_half(x)·sin(tθ) with the d/2 frequencies concatenated twice "
            "([θ, θ], not interleaved) and t the position of each row"
        )
    return "your RoPE equals mingrok.rope.apply_rope."
