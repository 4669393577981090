"""Checks for chapter 8 (training on TinyShakespeare)."""

from __future__ import annotations

import math

import torch

from ..train import TrainConfig, learning_rate_at
from ._core import CheckFailed, call, exercise


@exercise("8.1")
def check_nats_per_char(nats_per_char) -> str:
    """``nats_per_char(token_losses [N], char_counts [N]) -> float`` = Σ losses / Σ characters."""
    generator = torch.Generator().manual_seed(8)
    token_losses = torch.rand(200, generator=generator) * 4  # nats, one per predicted token
    char_counts = torch.randint(1, 5, (200,), generator=generator).float()  # chars per target
    expected = (token_losses.sum() / char_counts.sum()).item()
    got = float(torch.as_tensor(call(nats_per_char, token_losses.clone(), char_counts.clone())))
    if math.isclose(got, expected, rel_tol=1e-5):
        return f"{expected:.4f} nats/char: the total loss over the total characters."
    if math.isclose(got, expected / math.log(2), rel_tol=1e-5):
        raise CheckFailed("that is bits per character: nats are natural logarithms, keep them")
    if math.isclose(got, token_losses.mean().item(), rel_tol=1e-5):
        raise CheckFailed("that is nats per TOKEN: divide the total by the characters instead")
    if math.isclose(got, (token_losses / char_counts).mean().item(), rel_tol=1e-5):
        raise CheckFailed(
            "you averaged loss/chars token by token: a long token would weigh as much as a short "
            "one. Divide the SUM of the losses by the SUM of the characters"
        )
    raise CheckFailed("add up the losses (nats) and the characters, then divide")


@exercise("8.2")
def check_cosine_lr(cosine_lr) -> str:
    """``cosine_lr(step, total_steps, warmup_steps, peak_lr, min_lr)`` = mingrok's schedule."""
    shipped_recipe = TrainConfig()
    toy_recipe = TrainConfig(steps=40, warmup_steps=8, learning_rate=1.0, min_learning_rate=0.0)
    for config in (shipped_recipe, toy_recipe):
        steps, warmup = config.steps, config.warmup_steps
        peak, minimum = config.learning_rate, config.min_learning_rate
        for step in range(steps):
            expected = learning_rate_at(step, config)
            got = float(call(cosine_lr, step, steps, warmup, peak, minimum))
            if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12):
                continue
            if step < warmup:
                raise CheckFailed(
                    f"step {step} of the warm-up: expected {expected:.6g}, got {got:.6g}. "
                    "The warm-up is linear, peak · (step + 1) / warmup_steps, so that step 0 "
                    "already learns (a learning rate of 0 would waste it)"
                )
            raise CheckFailed(
                f"step {step} (total {steps}, warm-up {warmup}): expected {expected:.6g}, got "
                f"{got:.6g}. After the warm-up, progress = (step − warmup) / (total − warmup) "
                "goes from 0 to 1 and lr = min + ½ (peak − min)(1 + cos(π · progress))"
            )
    return "linear warm-up to the peak, then a cosine down to the minimum: mingrok's schedule."
