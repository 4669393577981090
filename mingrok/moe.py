"""Grok-1's mixture-of-experts block: GeGLU experts, each token visits only its top-k.

Expert e is a gated FFN with three matrices and the **tanh** GELU (``jax.nn.gelu``'s default):

    FFN_e(x) = ( gelu_tanh(x W_e) ⊙ (x V_e) ) U_e        W_e, V_e: [D, F]   U_e: [F, D]
    MoE(x)   = Σ_{j<k} g_j(x) · FFN_{e_j(x)}(x)

The weights keep grok-1's layout, one tensor per matrix with a leading expert axis:
``w_gate`` = ``moe/linear`` (through GELU), ``w_value`` = ``moe/linear_v``, ``w_out`` =
``moe/linear_1``. The official code evaluates all 8 experts on every token and keeps 2 with a
one-hot selector; :func:`sparse_moe` computes only the chosen ones: it groups the (token, slot)
pairs by expert, runs one matmul per expert over its rows and puts the results back.
Reference: xai-org/grok-1 ``MoELayer``, ``DenseBlock``; Shazeer (2020) for GLU variants.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import MinGrokConfig
from .router import Router, RouterStats


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the GELU grok-1 uses (not PyTorch's erf one)."""
    return F.gelu(x, approximate="tanh")


def expert_ffn(
    x: torch.Tensor, w_gate: torch.Tensor, w_value: torch.Tensor, w_out: torch.Tensor
) -> torch.Tensor:
    """One GeGLU expert on rows x [n, D] with its [D, F], [D, F], [F, D] weights.

    The two input projections run in x's dtype, the rest in float32 (at least): in a bfloat16
    model grok-1 picks each row's expert by multiplying with ``jax.nn.one_hot``, float32 by
    default, which promotes the GeGLU product, the output projection and the gated sum to float32.
    """
    if x.dtype == torch.float32:  # the common case, without the casts below
        return (gelu_tanh(x @ w_gate) * (x @ w_value)) @ w_out
    wide = torch.promote_types(x.dtype, torch.float32)
    hidden = gelu_tanh((x @ w_gate).to(wide)) * (x @ w_value).to(wide)
    return hidden @ w_out.to(wide)


class _PermuteRows(torch.autograd.Function):
    """rows[permutation], whose gradient is grad[inverse]: a gather both ways.

    Autograd's own backward of an index is a scatter-add (``index_add_``/``index_put_`` with
    accumulation), which costs several times a gather on a CPU; a permutation needs no accumulation.
    The gather is ``F.embedding``, a row lookup, measured 2-10x faster than ``index_select`` or
    ``rows[permutation]`` on a CPU (16384 rows of 96 floats).
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, permutation: torch.Tensor, inverse: torch.Tensor):
        ctx.save_for_backward(inverse)
        return F.embedding(permutation, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inverse,) = ctx.saved_tensors
        return F.embedding(inverse, grad), None, None


def sparse_moe(
    x: torch.Tensor,
    experts: torch.Tensor,
    gates: torch.Tensor,
    w_gate: torch.Tensor,
    w_value: torch.Tensor,
    w_out: torch.Tensor,
) -> torch.Tensor:
    """x [N, D], experts/gates [N, k] → [N, D], running each expert only on its own rows.

    1. flatten the N·k (token, slot) pairs and sort them by expert (stable, so ties keep order);
       each token's row, repeated k times, is permuted into that order;
    2. one matmul chain per expert over its contiguous block of rows;
    3. permute back into [N, k, D] and take the gate-weighted sum over the k slots.

    Both permutations are gathers whose gradients are gathers by the inverse permutation
    (:class:`_PermuteRows`). A single token (one generation step) skips the grouping and calls its
    k experts directly.
    """
    num_tokens, top_k = experts.shape
    if num_tokens == 1:  # one token (a generation step): run its k experts, nothing to group
        slots = torch.cat(
            [expert_ffn(x, w_gate[e], w_value[e], w_out[e]) for e in experts[0].tolist()]
        )
        return (gates.to(slots.dtype)[0, :, None] * slots).sum(dim=0, keepdim=True)
    flat_experts = experts.reshape(-1)
    order = torch.argsort(flat_experts, stable=True)  # sorted position → (token, slot) pair
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=order.device)  # (token, slot) → sorted position
    rows_per_expert = torch.bincount(flat_experts, minlength=w_gate.shape[0]).tolist()
    repeated = x[:, None].expand(-1, top_k, -1).reshape(num_tokens * top_k, -1)
    routed = _PermuteRows.apply(repeated, order, rank)  # [N·k, D], grouped by expert
    # unbind: one backward (a stack) for each weight, where indexing w[e] per expert would add
    # a full-size zero gradient per expert
    per_expert = zip(w_gate.unbind(), w_value.unbind(), w_out.unbind(), strict=True)
    outputs = [
        expert_ffn(block, *weights)
        for block, weights in zip(routed.split(rows_per_expert), per_expert, strict=True)
        if block.shape[0]
    ]
    sorted_out = torch.cat(outputs)
    slots = _PermuteRows.apply(sorted_out, rank, order).view(num_tokens, top_k, -1)
    return (gates.to(slots.dtype)[..., None] * slots).sum(dim=1)  # Σ_j g_j · FFN_{e_j}(x)


def dense_moe_reference(
    x: torch.Tensor,
    experts: torch.Tensor,
    gates: torch.Tensor,
    w_gate: torch.Tensor,
    w_value: torch.Tensor,
    w_out: torch.Tensor,
) -> torch.Tensor:
    """The official code's way: every expert on every token, then keep the chosen k (tests only)."""
    hidden = gelu_tanh(torch.einsum("nd,edf->nef", x, w_gate))
    hidden = hidden * torch.einsum("nd,edf->nef", x, w_value)
    every_expert = torch.einsum("nef,efd->ned", hidden, w_out)  # [N, E, D]
    index = experts[..., None].expand(-1, -1, every_expert.shape[-1])
    chosen = every_expert.gather(1, index)  # [N, k, D]
    return torch.einsum("nk,nkd->nd", gates.to(chosen.dtype), chosen)


@dataclass(frozen=True)
class MoEOutput:
    """The layer's output [B, T, D] and what its router decided; unpacks as ``output, router``."""

    output: torch.Tensor
    router: RouterStats

    def __iter__(self) -> Iterator[torch.Tensor | RouterStats]:
        return iter((self.output, self.router))


class MoELayer(nn.Module):
    """Router + E GeGLU experts in grok-1's weight layout; forward [B, T, D] → (output, stats)."""

    def __init__(self, config: MinGrokConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.config = config
        e, d, f = config.num_experts, config.d_model, config.ffn_dim
        self.router = Router(config, layer_index)
        self.w_gate = nn.Parameter(torch.empty(e, d, f))  # grok-1: moe/linear
        self.w_value = nn.Parameter(torch.empty(e, d, f))  # grok-1: moe/linear_v
        self.w_out = nn.Parameter(torch.empty(e, f, d))  # grok-1: moe/linear_1
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The experts ~ N(0, 1/fan_in) like every projection (grok-1 released no initialiser).

        The router initialises its own tensors (:meth:`Router.reset_parameters`)."""
        d, f = self.config.d_model, self.config.ffn_dim
        nn.init.normal_(self.w_gate, std=1 / math.sqrt(d))
        nn.init.normal_(self.w_value, std=1 / math.sqrt(d))
        nn.init.normal_(self.w_out, std=1 / math.sqrt(f))

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> MoEOutput:
        """x [B, T, D] (token_mask [B, T]: real tokens, for the statistics) → output [B, T, D].

        In a bfloat16 model the gates are rounded to bfloat16 and the gated sum, taken in
        float32 (:func:`expert_ffn`), is rounded once, to the output. ``config.moe_bf16_casts``
        makes the same two casts in a float32 model, as grok-1's code does (its "official" mode):
        the post-MoE norm then returns bfloat16 too, and the residual add promotes back to float32.
        """
        batch, steps, width = x.shape
        flat = x.reshape(batch * steps, width)
        flat_mask = None if token_mask is None else token_mask.reshape(-1)
        stats = self.router(flat, flat_mask)
        gates, bf16_casts = stats.gates, self.config.moe_bf16_casts
        if bf16_casts or x.dtype == torch.bfloat16:  # grok-1: expert_gate.astype(bfloat16)
            gates = gates.to(torch.bfloat16)
        out = sparse_moe(flat, stats.experts, gates, self.w_gate, self.w_value, self.w_out)
        out_dtype = torch.bfloat16 if bf16_casts else x.dtype  # grok-1: out.astype(bfloat16)
        if out.dtype != out_dtype:  # (a no-op .to() still costs a dispatch per layer and token)
            out = out.to(out_dtype)
        return MoEOutput(out.view(batch, steps, width), stats)
