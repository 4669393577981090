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

from .attention import Attention, causal_mask
from .config import MinGrokConfig
from .kv_cache import KVCache
from .moe import MoELayer
from .norm import RMSNorm
from .precision import multiplier_in
from .router import RouterStats


@dataclass(frozen=True)
class MinGrokOutput:
    """``logits`` float32 [B, T, V]; one RouterStats per layer; the weighted router losses.

    ``aux_loss`` = c_aux·L_aux + c_z·L_z averaged over layers, a scalar tensor computed on first
    access (a zero, with no work, when both weights are 0), so that inference never pays for the
    statistics.
    """

    logits: torch.Tensor
    router_stats: list[RouterStats] = field(default_factory=list)
    aux_loss_coef: float = 0.0
    z_loss_coef: float = 0.0

    @cached_property
    def aux_loss(self) -> torch.Tensor:
        total = self.logits.new_zeros(())
        if self.aux_loss_coef:
            balance = torch.stack([s.balance_loss for s in self.router_stats]).mean()
            total = total + self.aux_loss_coef * balance
        if self.z_loss_coef:
            z = torch.stack([s.z_loss for s in self.router_stats]).mean()
            total = total + self.z_loss_coef * z
        return total


class TiedEmbedding(nn.Embedding):
    """Grok-1's ``in_out_embed``: one matrix E [V, D] looks tokens up and, transposed, unembeds."""

    def unembed(self, normed: torch.Tensor) -> torch.Tensor:
        """[B, T, D] final-normed hidden states → [B, T, V] logits, normed · Eᵀ."""
        return normed @ self.weight.t()


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

    def norms(self) -> tuple[RMSNorm, ...]:
        """The four sandwich norms, in grok-1's creation order (rms_norm, rms_norm_1, _2, _3)."""
        return (
            self.pre_attention_norm,
            self.post_attention_norm,
            self.pre_moe_norm,
            self.post_moe_norm,
        )

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
        self.embed = TiedEmbedding(config.vocab_size, config.d_model)  # in_out_embed
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.final_norm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every tensor for training from scratch (grok-1's code ships only zeros).

        One function names them all, in a fixed order, so a seed fixes the weights:

        * token embedding E ~ N(0, 1/D), so that √D·E[token] has unit RMS and the initial logits
          are small (the first loss is ≈ ln V);
        * every projection, attention's four and the router's, W ~ N(0, 1/fan_in), and the
          experts by :meth:`MoELayer.reset_parameters`, the same rule;
        * the noisy-top-k noise map 0 (:meth:`Router.reset_parameters`); every norm scale 1.
        """
        nn.init.normal_(self.embed.weight, std=1 / math.sqrt(self.config.d_model))
        for layer in self.layers:
            attention, moe = layer.attention, layer.moe
            for projection in (attention.query, attention.key, attention.value, attention.out):
                _normal_fan_in(projection)
            moe.reset_parameters()
            _normal_fan_in(moe.router.linear)
            moe.router.reset_parameters()
            for norm in layer.norms():
                norm.reset_parameters()
        self.final_norm.reset_parameters()

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

        The model computes in the dtype of its weights. ``model.to(torch.bfloat16)`` is Grok-1's
        production precision: the residual stream, projections, unembedding and both multipliers
        in bfloat16 (the multipliers rounded to it, :func:`mingrok.precision.multiplier_in`);
        RMSNorm, RoPE, attention logits and softmax, and the router in float32. The logits are
        returned in float32 whatever the dtype.

        ``input_mask`` [B, T] (True = real token) masks padded positions as *keys* only, as
        grok-1 does (which derives it as ``tokens > pad_token``). With a ``cache``, the tokens
        continue the cached sequence: RoPE positions start at ``cache.position``.
        """
        config = self.config
        tokens, input_mask = self._check_inputs(tokens, input_mask, cache)
        positions, mask = _positions_and_mask(input_mask, cache)
        h = self.embed(tokens)
        h = h * multiplier_in(config.embedding_scale, h.dtype)
        router_stats = []
        for layer in self.layers:
            h, stats = layer(h, positions, mask, input_mask, cache)
            router_stats.append(stats)
        if cache is not None:
            cache.advance(tokens.shape[1])
        logits = self.embed.unembed(self.final_norm(h))
        logits = (logits * multiplier_in(config.output_multiplier, logits.dtype)).float()
        return MinGrokOutput(
            logits, router_stats, config.router_aux_loss_coef, config.router_z_loss_coef
        )

    def _check_inputs(
        self, tokens: torch.Tensor, input_mask: torch.Tensor | None, cache: KVCache | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens as int64 and input_mask as bool [B, T] (all True when None), or a clear error."""
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
        if input_mask is None:
            return tokens.long(), torch.ones(tokens.shape, dtype=torch.bool, device=tokens.device)
        if input_mask.shape != tokens.shape:
            raise ValueError(
                f"input_mask has shape {tuple(input_mask.shape)}; it must match tokens "
                f"{tuple(tokens.shape)}"
            )
        return tokens.long(), input_mask.to(device=tokens.device, dtype=torch.bool)


def _normal_fan_in(projection: nn.Linear) -> None:
    """W ~ N(0, 1/fan_in): a projection's outputs keep the RMS of its inputs."""
    nn.init.normal_(projection.weight, std=1 / math.sqrt(projection.in_features))


def _positions_and_mask(
    input_mask: torch.Tensor, cache: KVCache | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE positions [T] of the tokens and the attention mask [B, T, S] (causal and padding).

    Without a cache the tokens are the whole sequence, at positions 0 .. T−1; with one, they
    continue it (:meth:`KVCache.start_step`) and also read the cached keys.
    """
    if cache is None:
        positions = torch.arange(input_mask.shape[1], device=input_mask.device)
        key_mask = input_mask
    else:
        positions, key_mask = cache.start_step(input_mask)
    return positions, causal_mask(key_mask, input_mask.shape[1])
