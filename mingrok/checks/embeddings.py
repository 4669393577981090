"""Checks for chapter 2 (embeddings and RMSNorm)."""

from __future__ import annotations

import math

import torch

from ..norm import RMSNorm
from ._core import CheckFailed, attempted, call, exercise


def _close(got, expected, what: str, hint: str) -> None:
    got = torch.as_tensor(got)
    if got.shape != expected.shape:
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(got.float(), expected.float(), rtol=1e-4, atol=1e-5):
        raise CheckFailed(hint)


@exercise("2.1")
def check_rms_norm(rms_norm) -> str:
    """``rms_norm(x, scale, eps) -> y`` = scale ⊙ x / √(mean(x²) + eps) over the last axis."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=generator) * 4
    x[0, 0] = 0.0  # an all-zero vector: without eps its RMS is 0 and x / 0 is NaN
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.scale.copy_(torch.rand(16, generator=generator) + 0.5)
        expected = norm(x)
    got = call(rms_norm, x.clone(), norm.scale.detach().clone(), 1e-5)
    if torch.as_tensor(got).isnan().any():
        raise CheckFailed(
            "NaN for an all-zero vector: add eps INSIDE the square root, √(mean(x²) + eps)"
        )
    _close(
        got,
        expected,
        "your output",
        "divide by √(mean(x²) + eps) over the LAST axis (keepdim=True), then multiply by scale "
        "(not 1 + scale) — no mean subtraction, unlike LayerNorm",
    )
    return "your RMSNorm matches mingrok.norm.RMSNorm."


@exercise("2.2")
def check_sandwich_block(sandwich) -> str:
    """``sandwich(h, sublayer, pre_norm, post_norm) -> h'``: Grok-1's residual wrapper."""
    generator = torch.Generator().manual_seed(1)
    h = torch.randn(2, 4, 8, generator=generator)
    weight = torch.randn(8, 8, generator=generator)

    def sublayer(x):
        return x @ weight

    def pre_norm(x):
        return 2 * x

    def post_norm(x):
        return 3 * torch.tanh(x)

    got = call(sandwich, h, sublayer, pre_norm, post_norm)
    _close(
        got,
        h + post_norm(sublayer(pre_norm(h))),
        "your output",
        "normalise the input, apply the sublayer, normalise its OUTPUT, then add to the residual: "
        "h + post_norm(sublayer(pre_norm(h)))",
    )
    return "your sandwich wrapper is Grok-1's: the residual stream itself is never normalised."


@exercise("2.3")
def check_initial_loss(value) -> str:
    """The cross-entropy (nats) of a model that spreads its bet evenly over V = 128 tokens."""
    expected = math.log(128)
    number = float(attempted(value))
    if not math.isclose(number, expected, rel_tol=1e-3):
        raise CheckFailed(
            f"you gave {number:.3f}; a uniform guess puts probability 1/V on the right token, and "
            "the loss is −log of that probability"
        )
    return f"ln 128 = {expected:.3f} nats: a well-initialised model starts here."
