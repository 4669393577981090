"""The whole Grok-1 decoder: embedding × √D, N sandwich-normed layers, tied unembedding × 1/√3.

    h₀ = m_emb · E[tokens]
    for each layer:
        h ← h + N₁(Attention(N₀(h)))       four RMSNorms per layer, the "sandwich":
        h ← h + N₃(MoE(N₂(h)))             the branch output is normalised before the add
    logits = m_out · RMSNorm(h) Eᵀ          the same matrix E as the input embedding

Reference: xai-org/grok-1 ``model.py`` (``LanguageModel``, ``Transformer``, ``DecoderLayer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn

from .attention import Attention
from .config import MinGrokConfig
from .kv_cache import KVCache
from .moe import MoELayer
from .norm import RMSNorm
from .router import Router, RouterStats


@dataclass
class MinGrokOutput:
    """``logits`` float32 [B, T, V]; one RouterStats per layer; the weighted router losses.

    ``aux_loss`` = c_aux·L_aux + c_z·L_z averaged over layers, computed on first access (and 0.0,
    with no work, when both weights are 0), so that inference never pays for the statistics.
    """

    logits: torch.Tensor
    router_stats: list[RouterStats] = field(default_factory=list)
    aux_loss_coef: float = 0.0
    z_loss_coef: float = 0.0

    @cached_property
    def aux_loss(self) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        if self.aux_loss_coef:
            balance = torch.stack([s.balance_loss for s in self.router_stats]).mean()
            total = total + self.aux_loss_coef * balance
        if self.z_loss_coef:
            z = torch.stack([s.z_loss for s in self.router_stats]).mean()
            total = total + self.z_loss_coef * z
        return total


class DecoderLayer(nn.Module):
    """Attention then MoE, each wrapped in a pre-norm and a post-norm before the residual add."""

    def __init__(self, config: MinGrokConfig, layer_index: int) -> None:
        super().__init__()
        eps = config.rms_norm_eps
        self.pre_attention_norm = RMSNorm(config.d_model, eps)  # grok-1: rms_norm
        self.attention = Attention(config, layer_index)
        self.post_attention_norm = RMSNorm(config.d_model, eps)  # rms_norm_1
        self.pre_moe_norm = RMSNorm(config.d_model, eps)  # rms_norm_2
        self.moe = MoELayer(config, layer_index)
        self.post_moe_norm = RMSNorm(config.d_model, eps)  # rms_norm_3
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        h: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        token_mask: torch.Tensor | None,
        cache: KVCache | None,
    ) -> tuple[torch.Tensor, RouterStats]:
        attended = self.attention(self.pre_attention_norm(h), positions, mask, cache)
        h = h + self.dropout(self.post_attention_norm(attended))
        moe_out, stats = self.moe(self.pre_moe_norm(h), token_mask)
        h = h + self.dropout(self.post_moe_norm(moe_out))
        return h, stats


class MinGrok(nn.Module):
    """Grok-1's architecture at any size. ``MinGrok(GROK1)`` under ``torch.device("meta")`` is
    the real 315.7 B-parameter shape without memory."""

    def __init__(self, config: MinGrokConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)  # in_out_embed (tied)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.final_norm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise for training from scratch (grok-1's code ships only zero placeholders).

        Embedding rows ~ N(0, 1/D), so that √D·E[token] has unit RMS and the initial logits are
        small: the first loss is ≈ ln V, not the ≈ 92 the seed repo started from. Projections
        ~ N(0, 1/fan_in); norm scales 1.
        """
        d = self.config.d_model
        nn.init.normal_(self.embed.weight, std=1 / math.sqrt(d))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=1 / math.sqrt(module.in_features))
            elif isinstance(module, MoELayer):
                module.reset_parameters()
        # The router's noise map last: the pass above reaches it (a child) after its router.
        for module in self.modules():
            if isinstance(module, Router):
                module.reset_parameters()

    def seed_router_noise(self, seed: int) -> None:
        """Give every layer's router its own reproducible noise stream (seed + layer index)."""
        for index, layer in enumerate(self.layers):
            layer.moe.router.seed_noise(seed + index)

    def forward(
        self,
        tokens: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> MinGrokOutput:
        """tokens [B, T] int → MinGrokOutput with float32 logits [B, T, V].

        ``input_mask`` [B, T] (True = real token) masks padded positions as *keys* only, as
        grok-1 does (which derives it as ``tokens > pad_token``). With a ``cache``, the tokens
        continue the cached sequence: RoPE positions start at ``cache.position``.
        """
        config = self.config
        tokens = self._check_tokens(tokens, cache)
        batch, steps = tokens.shape
        device = tokens.device
        if input_mask is None:
            input_mask = torch.ones(batch, steps, dtype=torch.bool, device=device)
        elif input_mask.shape != tokens.shape:
            raise ValueError(
                f"input_mask has shape {tuple(input_mask.shape)}; it must match tokens "
                f"{tuple(tokens.shape)}"
            )
        input_mask = input_mask.to(device=device, dtype=torch.bool)
        start = 0
        if cache is None:
            key_mask = input_mask
            positions = torch.arange(steps, device=device)
        else:
            cache.make_room(steps, input_mask)
            start = cache.length
            key_mask = cache.key_mask[:, : start + steps]
            positions = torch.arange(cache.position, cache.position + steps, device=device)
        query_index = torch.arange(start, start + steps, device=device)
        key_index = torch.arange(start + steps, device=device)
        causal = key_index[None, :] <= query_index[:, None]  # [T, S]
        mask = causal[None] & key_mask[:, None, :]  # [B, T, S]

        h = self.embed(tokens) * config.embedding_scale
        router_stats = []
        for layer in self.layers:
            h, stats = layer(h, positions, mask, input_mask, cache)
            router_stats.append(stats)
        if cache is not None:
            cache.advance(steps)
        logits = self.final_norm(h) @ self.embed.weight.t()
        logits = logits.float() * config.output_multiplier
        return MinGrokOutput(
            logits, router_stats, config.router_aux_loss_coef, config.router_z_loss_coef
        )

    def _check_tokens(self, tokens: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point:
            raise TypeError(f"tokens must be an integer torch.Tensor [B, T]; got {tokens!r:.80}")
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape [B, T]; got shape {tuple(tokens.shape)}")
        limit = self.config.max_seq_len if cache is None else cache.capacity
        if tokens.shape[1] > limit:
            raise ValueError(
                f"tokens has {tokens.shape[1]} positions; at most {limit} fit "
                f"({'max_seq_len' if cache is None else 'cache capacity'})"
            )
        if tokens.numel() and tokens.device.type != "meta":
            low, high = int(tokens.min()), int(tokens.max())
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(
                    f"token ids must lie in [0, {self.config.vocab_size}); got min {low}, "
                    f"max {high}"
                )
        return tokens.long()
