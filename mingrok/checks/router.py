"""Checks for chapter 5 (the MoE router)."""

from __future__ import annotations

import math

import torch

from ..router import load_balancing_loss, router_z_loss
from ._core import CheckFailed, call, exercise


def _scalar(value: object, what: str) -> float:
    value = torch.as_tensor(value)
    if value.numel() != 1:
        raise CheckFailed(f"{what} should be one number, got shape {tuple(value.shape)}")
    return float(value)


@exercise("5.1")
def check_top_k_gates(top_k_gates) -> str:
    """``top_k_gates(logits [N, E], k) -> (gates, experts)``, both [N, k]: Grok-1's routing."""
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(16, 8, generator=generator) * 2
    probs = torch.softmax(logits, dim=-1)
    expected_gates, expected_experts = probs.topk(2, dim=-1)
    answer = call(top_k_gates, logits.clone(), 2)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise CheckFailed("return a pair (gates, experts), like torch.topk does")
    gates, experts = (torch.as_tensor(a) for a in answer)
    if not gates.is_floating_point() and experts.is_floating_point():
        raise CheckFailed(
            "you returned (experts, gates): return (gates, experts), in torch.topk's order "
            "(values, indices)"
        )
    if gates.shape != expected_gates.shape or experts.shape != expected_experts.shape:
        raise CheckFailed(
            f"gates {tuple(gates.shape)} and experts {tuple(experts.shape)}, expected [N, k] = "
            f"{tuple(expected_gates.shape)} each"
        )
    if not torch.equal(experts.long(), expected_experts):
        raise CheckFailed(
            "wrong experts: take the k largest probabilities of each row (dim=-1), largest first"
        )
    gates = gates.float()
    if torch.allclose(gates, expected_gates, atol=1e-5):
        return "softmax over all experts, then top-k, gates not renormalised: Grok-1's router."
    if torch.allclose(gates.sum(-1), torch.ones(len(gates)), atol=1e-5):
        raise CheckFailed(
            "your gates sum to 1: that is Mixtral's renormalisation (or a softmax over the k "
            "chosen logits). Grok-1 keeps the softmax over ALL experts, so g1 + g2 < 1"
        )
    if torch.allclose(gates, torch.softmax(probs, dim=-1).topk(2, dim=-1).values, atol=1e-5):
        raise CheckFailed("you applied the softmax twice (the seed's bug): once is enough")
    raise CheckFailed("the gates are softmax(logits) over all E experts, read at the top-k")


@exercise("5.2")
def check_load_balancing_loss(balance_loss) -> str:
    """``balance_loss(probs [N, E], experts [N, k]) -> scalar`` = E · Σ_i f_i P_i (Switch)."""
    generator = torch.Generator().manual_seed(6)
    probs = torch.softmax(torch.randn(64, 4, generator=generator) * 1.5, dim=-1)
    experts = probs.topk(2, dim=-1).indices
    expected = load_balancing_loss(probs, experts).item()
    got = _scalar(call(balance_loss, probs.clone(), experts.clone()), "the loss")
    if math.isclose(got, expected, rel_tol=1e-4):
        even_probs = torch.full((8, 4), 0.25)
        even_experts = torch.tensor([[0, 1], [2, 3]]).repeat(4, 1)  # every expert: 4 of 16 slots
        uniform = _scalar(call(balance_loss, even_probs, even_experts), "the loss")
        if not math.isclose(uniform, 1.0, rel_tol=1e-4):
            raise CheckFailed(f"perfectly even routing should give 1, yours gives {uniform:.4g}")
        return f"E·Σ f_i P_i = {expected:.4f} here, and exactly 1 when routing is perfectly even."
    if math.isclose(got, 2 * expected, rel_tol=1e-4):
        raise CheckFailed(
            "your value is k = 2 times too large: f_i is the share of the N·k routed slots (the "
            "f_i sum to 1), not of the N tokens (that is HF Mixtral's variant, which gives k)"
        )
    if math.isclose(got, expected / 4, rel_tol=1e-4):
        raise CheckFailed(
            "multiply Σ f_i P_i by the number of experts E (here 4), so that perfectly even "
            "routing gives 1 whatever E is"
        )
    soft = 4 * (probs.mean(0) ** 2).sum().item()
    if math.isclose(got, soft, rel_tol=1e-4):
        raise CheckFailed(
            "f_i counts hard choices: the share of routed slots whose expert is i (from "
            "`experts`), not the mean probability"
        )
    raise CheckFailed(
        "f_i = share of the N·k (token, slot) pairs sent to expert i, P_i = mean of probs[:, i] "
        "over the tokens; return E · Σ_i f_i · P_i"
    )


@exercise("5.3")
def check_z_loss(z_loss) -> str:
    """``z_loss(logits [N, E]) -> scalar`` = mean over tokens of (logsumexp_i z_i)² (ST-MoE)."""
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(32, 8, generator=generator) * 3 + 2
    expected = router_z_loss(logits).item()
    got = _scalar(call(z_loss, logits.clone()), "the z-loss")
    big = torch.full((2, 8), 100.0)
    if math.isclose(got, expected, rel_tol=1e-4):
        huge = _scalar(call(z_loss, big), "the z-loss")
        if not math.isfinite(huge):
            raise CheckFailed(
                "logits of 100 overflow exp in float32: use torch.logsumexp, which subtracts "
                "the maximum first"
            )
        return f"mean (logsumexp z)² = {expected:.3f} here, as mingrok.router.router_z_loss."
    if math.isclose(got, torch.logsumexp(logits, -1).mean().item() ** 2, rel_tol=1e-4):
        raise CheckFailed("square each token's logsumexp first, then average over the tokens")
    raise CheckFailed(
        "for each token (row) take logsumexp over the experts (dim=-1), square it, then average"
    )
