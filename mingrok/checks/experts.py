"""Checks for chapter 6 (experts and dispatch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import ffn_size
from ..moe import dense_moe_reference, expert_ffn
from ._core import CheckFailed, call, exercise


def _expert_weights(experts: int, d: int, f: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(experts, d, f, generator=generator) / d**0.5,
        torch.randn(experts, d, f, generator=generator) / d**0.5,
        torch.randn(experts, f, d, generator=generator) / f**0.5,
    ]


@exercise("6.1")
def check_geglu_expert(expert) -> str:
    """``expert(x [n, D], w_gate [D, F], w_value [D, F], w_out [F, D]) -> [n, D]``: a GeGLU."""
    generator = torch.Generator().manual_seed(61)
    x = 2 * torch.randn(9, 16, generator=generator)
    w_gate, w_value, w_out = (w[0] for w in _expert_weights(1, 16, 24, seed=6))
    got = torch.as_tensor(call(expert, x.clone(), w_gate, w_value, w_out))
    expected = expert_ffn(x, w_gate, w_value, w_out)
    if got.shape != expected.shape:
        raise CheckFailed(
            f"shape {tuple(got.shape)}, expected [n, D] = {tuple(expected.shape)}: project up "
            "with w_gate and w_value ([D, F]), multiply, then down with w_out ([F, D])"
        )
    if torch.allclose(got.float(), expected, atol=1e-5, rtol=1e-4):
        return "your expert equals mingrok.moe.expert_ffn: (gelu_tanh(x W) ⊙ x V) U."
    erf = (F.gelu(x @ w_gate) * (x @ w_value)) @ w_out
    swapped = expert_ffn(x, w_value, w_gate, w_out)
    if torch.allclose(got.float(), erf, atol=1e-5, rtol=1e-4):
        raise CheckFailed(
            "close, but that is PyTorch's default (erf) GELU; jax.nn.gelu, which Grok-1 uses, "
            "defaults to the tanh form: F.gelu(..., approximate='tanh')"
        )
    if torch.allclose(got.float(), swapped, atol=1e-5, rtol=1e-4):
        raise CheckFailed(
            "GELU went on the wrong branch: it acts on x @ w_gate (grok-1's moe/linear), and "
            "x @ w_value (moe/linear_v) multiplies it without any activation"
        )
    raise CheckFailed(
        "compute h = gelu_tanh(x @ w_gate) * (x @ w_value), an [n, F] tensor, then h @ w_out; "
        "no activation after the down projection"
    )


@exercise("6.2")
def check_ffn_size(expert_width) -> str:
    """``expert_width(emb_size, widening_factor) -> int``: Grok-1's rule for the expert width F."""
    cases = [(6144, 8), (96, 8), (100, 8), (64, 2.0), (128, 8), (130, 3.0), (6144, 4), (7, 1.5)]
    for emb_size, widening in cases:
        got = call(expert_width, emb_size, widening)
        expected = ffn_size(emb_size, widening)
        if got == expected:
            continue
        plain = int(widening * emb_size)
        down = plain * 2 // 3 // 8 * 8
        if got == plain:
            raise CheckFailed(
                f"for D={emb_size}, w={widening} you gave w·D = {plain}: Grok-1 takes 2/3 of "
                "that, because a gated expert has three matrices instead of two"
            )
        if got == down:
            raise CheckFailed(
                f"for D={emb_size}, w={widening} you rounded down to {got}; Grok-1 rounds "
                f"⌊w·D⌋·2//3 UP to a multiple of 8 ({expected})"
            )
        raise CheckFailed(
            f"for D={emb_size}, w={widening} you gave {got!r}, expected {expected}: f = "
            "int(w·D)·2 // 3, then f + (8 − f) % 8"
        )
    return "ffn_size(6144, 8) = 32768: F/D = 5.33, not 8."


@exercise("6.3")
def check_sparse_dispatch(moe) -> str:
    """``moe(x [N, D], experts [N, k], gates [N, k], w_gate, w_value, w_out) -> [N, D]``.

    An expert nobody chose holds NaN weights here, so code that runs every expert on every token
    and then multiplies the unchosen outputs by zero (as the seed repo does) returns NaN.
    """
    num_experts, d, f, n, k = 6, 12, 20, 29, 2
    weights = _expert_weights(num_experts, d, f, seed=63)
    generator = torch.Generator().manual_seed(63)
    x = torch.randn(n, d, generator=generator)
    probs = torch.randn(n, num_experts - 1, generator=generator).softmax(-1)  # expert 5: unused
    gates, experts = probs.topk(k, dim=-1)
    expected = dense_moe_reference(x, experts, gates, *weights)
    poisoned = [w.clone() for w in weights]
    for w in poisoned:
        w[num_experts - 1] = float("nan")
    got = torch.as_tensor(call(moe, x.clone(), experts.clone(), gates.clone(), *poisoned))
    if got.shape != expected.shape:
        raise CheckFailed(f"shape {tuple(got.shape)}, expected [N, D] = {tuple(expected.shape)}")
    if torch.isnan(got).any():
        raise CheckFailed(
            "your output has NaN: expert 5 is chosen by no token and holds NaN weights here, so "
            "your code ran experts on tokens that did not choose them (0 · NaN is NaN). Gather "
            "each expert's rows, e.g. with (experts == e).nonzero(), and run it on those only"
        )
    if torch.allclose(got.float(), expected, atol=1e-5, rtol=1e-4):
        return "each token visited only its k experts, and the result equals the dense reference."
    renormalized = dense_moe_reference(x, experts, gates / gates.sum(-1, keepdim=True), *weights)
    if torch.allclose(got.float(), renormalized, atol=1e-5, rtol=1e-4):
        raise CheckFailed("use the gates as given: Grok-1 does not renormalise them to sum to 1")
    raise CheckFailed(
        "for each token n and slot j, add gates[n, j] · expert_ffn(x[n], *weights of expert "
        "experts[n, j]); check that every (token, slot) pair lands back on its own row"
    )
