"""The MoE router: which k of the E experts each token visits, and with what weight.

Grok-1's router (``model.py``, ``Router``) is one bias-free linear map computed in float32,
a softmax over **all** experts, then top-k of those probabilities. The k gates are the raw
probabilities: they are **not** renormalised (Mixtral renormalises them to sum to 1). The released
code is inference-only: no noise, no auxiliary loss.

Training an MoE from scratch needs help to keep every expert in use: without it, the experts
chosen early learn, get chosen more, and the others starve. Everything below is off by default,
so the default router is exactly Grok-1's:

* noise, in training mode only, from the router's own seeded generator:
  ``gaussian``   z ← z + σ·ε                        (ε ~ N(0, 1))
  ``jitter``     x ← x ⊙ U(1−σ, 1+σ) before the map    (Switch Transformer)
  ``noisy_topk`` z ← z + σ·ε·softplus(x W_noise)       (Shazeer et al. 2017, learned noise scale)
* the Switch load-balancing loss  L_aux = E · Σ_i f_i P_i  (1 when routing is perfectly even)
* the ST-MoE router z-loss        L_z = mean_x (log Σ_i exp z_i(x))²
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .config import MinGrokConfig
from .precision import Float32Parameters


@dataclass(frozen=True)
class RouterStats:
    """What one layer's router decided, with the balancing statistics computed on demand.

    ``logits``/``probs`` are [N, E] float32 (after noise, i.e. what routing used), ``gates`` and
    ``experts`` are [N, k]; ``token_mask`` [N] marks real tokens (padding is left out of the
    statistics, never out of routing: grok-1 routes padded positions too).
    """

    logits: torch.Tensor
    probs: torch.Tensor
    gates: torch.Tensor
    experts: torch.Tensor
    token_mask: torch.Tensor | None = None

    @property
    def expert_fraction(self) -> torch.Tensor:
        """f_i: share of the routed (token, slot) pairs that went to expert i; sums to 1."""
        return expert_fraction(self.experts, self.probs.shape[-1], self.token_mask)

    @property
    def balance_loss(self) -> torch.Tensor:
        return load_balancing_loss(self.probs, self.experts, self.token_mask)

    @property
    def z_loss(self) -> torch.Tensor:
        return router_z_loss(self.logits, self.token_mask)


def _masked_mean(values: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the first axis, counting only rows where token_mask is True."""
    if token_mask is None:
        return values.mean(dim=0)
    weights = token_mask.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))
    return (values * weights).sum(dim=0) / weights.sum().clamp_min(1)


def expert_fraction(
    experts: torch.Tensor, num_experts: int, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """f_i = (1 / N·k) Σ_x Σ_slots 1[slot of x chose i]  — the hard, non-differentiable load."""
    one_hot = F.one_hot(experts, num_experts).float().mean(dim=1)  # [N, E], rows sum to 1
    return _masked_mean(one_hot, token_mask)


def load_balancing_loss(
    probs: torch.Tensor, experts: torch.Tensor, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Switch Transformer auxiliary loss E · Σ_i f_i · P_i (Fedus et al. 2021, eq. 4).

    f_i is the fraction of routed slots sent to expert i, P_i the mean router probability of i.
    The gradient flows through P only. Perfectly even routing gives exactly 1 for any k; HF
    Mixtral's version keeps the k axis and gives k instead.
    """
    num_experts = probs.shape[-1]
    fraction = expert_fraction(experts, num_experts, token_mask)
    mean_prob = _masked_mean(probs, token_mask)
    return num_experts * (fraction * mean_prob).sum()


def router_z_loss(logits: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ST-MoE router z-loss mean_x (logsumexp_i z_i(x))² (Zoph et al. 2022, eq. 5).

    Penalises large router logits, which keeps the float32 softmax well conditioned.
    """
    return _masked_mean(torch.logsumexp(logits.float(), dim=-1).pow(2), token_mask)


class Router(Float32Parameters):
    """Router logits in float32, softmax over all experts, top-k, optional noise.

    Its weights stay float32 when the model is cast to bfloat16: only its input is rounded."""

    def __init__(self, config: MinGrokConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.d_model, config.num_experts, bias=False)  # router/w
        if config.router_noise == "noisy_topk":
            self.noise_linear = nn.Linear(config.d_model, config.num_experts, bias=False)
        self.reset_parameters()
        self.noise_seed = layer_index
        self._generator: torch.Generator | None = None

    def reset_parameters(self) -> None:
        """The noise map starts at zero, so the learned noise scale is softplus(0) = ln 2 for every
        expert. (The router's own matrix is a projection: :meth:`MinGrok.reset_parameters`.)"""
        if hasattr(self, "noise_linear"):
            nn.init.zeros_(self.noise_linear.weight)

    def seed_noise(self, seed: int) -> None:
        """Restart this router's noise stream: the same seed gives the same noise."""
        self.noise_seed = seed
        self._generator = None

    def noise_generator(self, device: torch.device | str | None = None) -> torch.Generator:
        """The generator that draws this router's noise, on ``device`` (default: the router's).

        Created from ``noise_seed`` on first use; a trainer saves and restores its state so that a
        resumed run draws the same noise as an uninterrupted one.
        """
        device = torch.device(device) if device is not None else self.linear.weight.device
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.noise_seed)
        return self._generator

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> RouterStats:
        """x [N, D] → RouterStats with gates/experts [N, k]: softmax over all E, then top-k."""
        noise = self.config.router_noise if self.training else "none"
        with torch.autocast(x.device.type, enabled=False):  # float32 under a trainer's autocast
            logits = self._logits_with[noise](self, x.float())  # [N, E] float32
        probs = torch.softmax(logits, dim=-1)
        gates, experts = probs.topk(self.config.num_experts_per_token, dim=-1)
        if self.config.renormalize_gates:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        return RouterStats(logits, probs, gates, experts, token_mask)

    # One function per kind of noise: x [N, D] float32 → router logits z [N, E] float32.

    def _clean_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z = x W_router, grok-1's router (and every kind's logits in eval mode)."""
        return F.linear(x, self.linear.weight.float())

    def _gaussian_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z + σ·ε."""
        logits = self._clean_logits(x)
        return logits + self.config.router_noise_std * self._standard_normal(logits)

    def _jitter_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z(x ⊙ u), u ~ U(1−σ, 1+σ) per input coordinate (Switch Transformer)."""
        strength = self.config.router_noise_std
        uniform = torch.rand(x.shape, generator=self.noise_generator(x.device), device=x.device)
        return self._clean_logits(x * (1 - strength + 2 * strength * uniform))

    def _noisy_topk_logits(self, x: torch.Tensor) -> torch.Tensor:
        """z + σ·ε·softplus(x W_noise): a learned noise scale per token and expert (Shazeer)."""
        logits = self._clean_logits(x)
        noise_scale = F.softplus(F.linear(x, self.noise_linear.weight.float()))
        noise = self._standard_normal(logits)
        return logits + self.config.router_noise_std * noise * noise_scale

    def _standard_normal(self, like: torch.Tensor) -> torch.Tensor:
        """ε ~ N(0, 1) shaped like ``like``, from this router's own generator."""
        generator = self.noise_generator(like.device)
        return torch.randn(like.shape, generator=generator, device=like.device)

    _logits_with: ClassVar[dict[str, Callable[[Router, torch.Tensor], torch.Tensor]]] = {
        "none": _clean_logits,
        "gaussian": _gaussian_logits,
        "jitter": _jitter_logits,
        "noisy_topk": _noisy_topk_logits,
    }
