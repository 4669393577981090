"""Expert parallelism: each rank holds E/R whole experts; tokens travel to their experts.

For one MoE layer on R ranks, rank r owning experts r·E/R … (r+1)·E/R − 1:

1. route the rank's tokens (the router is replicated: every rank has the same weights);
2. sort its (token, slot) pairs by expert, hence by owning rank, and count them per rank;
3. ``all_to_all`` the counts, then the rows: rank r receives every row routed to its experts;
4. run each local expert on its rows (:func:`mingrok.moe.sparse_moe` with one slot per row);
5. ``all_to_all`` the results back by the reverse counts, un-sort, and take Σ_j g_j · FFN.

Two all-to-alls per layer, each moving k·N·D values; no rank ever holds another's experts,
which is why Grok-1's 8 experts × 3 × 6144 × 32768 (4.8 B parameters per layer) would be placed
this way on 8 devices, one expert each. The exchanges use
:func:`torch.distributed._functional_collectives.all_to_all_single`, whose backward is the
reverse exchange, so the gradients equal :class:`mingrok.moe.MoELayer`'s.

``tokens="local"`` (data + expert parallelism, how a trainer would use it): each rank brings its
own tokens and gets their outputs; the replicated router's gradients are then per-rank parts
to be summed (DDP does). ``tokens="replicated"`` (this package's whole-model expert strategy,
attention replicated): every rank holds all N tokens, rank r handles block r of them, and the
outputs are all-gathered; forward and gradients then equal the unsharded model on every rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import _functional_collectives as funcol
from torch.distributed.device_mesh import DeviceMesh

from ..config import MinGrokConfig
from ..model import MinGrok
from ..moe import MoELayer, MoEOutput, sparse_moe
from .layouts import all_rows, rows_of_this_rank

TOKEN_LAYOUTS = ("local", "replicated")


def check_expert_parallel(config: MinGrokConfig, world_size: int) -> None:
    """A clear error unless ``world_size`` ranks can hold the same number of whole experts."""
    if config.num_experts % world_size:
        allowed = [d for d in range(1, config.num_experts + 1) if config.num_experts % d == 0]
        raise ValueError(
            f"world_size={world_size} does not divide num_experts={config.num_experts}: expert "
            f"parallelism gives each rank the same number of whole experts, so world_size must "
            f"be one of {allowed}"
        )


class ExpertParallelMoE(nn.Module):
    """A :class:`MoELayer` whose experts are spread over the ranks of ``mesh``, E/R each."""

    def __init__(self, moe: MoELayer, mesh: DeviceMesh, tokens: str = "local") -> None:
        super().__init__()
        check_expert_parallel(moe.config, mesh.size())
        if tokens not in TOKEN_LAYOUTS:
            raise ValueError(f"tokens={tokens!r} is unknown; choose one of {TOKEN_LAYOUTS}")
        self.mesh, self.tokens = mesh, tokens
        self.router = moe.router
        self.experts_per_rank = moe.config.num_experts // mesh.size()
        first = mesh.get_local_rank() * self.experts_per_rank
        owned = slice(first, first + self.experts_per_rank)
        self.first_expert = first
        self.w_gate = nn.Parameter(moe.w_gate.detach()[owned].clone())
        self.w_value = nn.Parameter(moe.w_value.detach()[owned].clone())
        self.w_out = nn.Parameter(moe.w_out.detach()[owned].clone())

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> MoEOutput:
        """x [B, T, D] (this rank's tokens, or all of them when replicated) → output, stats."""
        batch, steps, width = x.shape
        flat = x.reshape(batch * steps, width)
        stats = self.router(flat, None if token_mask is None else token_mask.reshape(-1))
        if self.tokens == "local":
            out = self._exchange(flat, stats.experts, stats.gates)
        else:
            mine = [rows_of_this_rank(t, self.mesh) for t in (flat, stats.experts, stats.gates)]
            out = all_rows(self._exchange(*mine), self.mesh, flat.shape[0])
        return MoEOutput(out.view(batch, steps, width), stats)

    def _exchange(
        self, x: torch.Tensor, experts: torch.Tensor, gates: torch.Tensor
    ) -> torch.Tensor:
        """Rows x [n, D] with their experts/gates [n, k] → Σ_j g_j · FFN_{e_j}(x) [n, D]."""
        num_rows, top_k = experts.shape
        group = self.mesh.get_group()
        flat_experts = experts.reshape(-1)
        order = torch.argsort(flat_experts, stable=True)  # by expert, hence by owning rank
        owner = flat_experts[order] // self.experts_per_rank
        send = torch.bincount(owner, minlength=self.mesh.size())
        receive = torch.empty_like(send)
        dist.all_to_all_single(receive, send, group=group)
        send_sizes, receive_sizes = send.tolist(), receive.tolist()
        rows = funcol.all_to_all_single(x[order // top_k], receive_sizes, send_sizes, group)
        their_experts = funcol.all_to_all_single(
            flat_experts[order], receive_sizes, send_sizes, group
        )
        results = self._run_local_experts(rows, their_experts - self.first_expert)
        back = funcol.all_to_all_single(results, send_sizes, receive_sizes, group)
        slots = back[torch.argsort(order)].view(num_rows, top_k, back.shape[-1])  # (0 rows: no -1)
        return (gates.to(slots.dtype)[..., None] * slots).sum(dim=1)

    def _run_local_experts(self, rows: torch.Tensor, local_experts: torch.Tensor) -> torch.Tensor:
        """Each received row through its own expert (one slot per row, gate 1)."""
        if rows.shape[0] == 0:  # no token chose this rank's experts: an empty [0, D] that
            return rows * 0  # stays in the autograd graph, so the reverse exchange runs here too
        ones = torch.ones(rows.shape[0], 1, dtype=rows.dtype, device=rows.device)
        return sparse_moe(rows, local_experts[:, None], ones, self.w_gate, self.w_value, self.w_out)


def expert_parallel(model: MinGrok, mesh: DeviceMesh) -> MinGrok:
    """Place ``model``'s experts on the ranks of ``mesh`` in place (attention, router, embedding
    and norms replicated; every rank holds all tokens) and return it."""
    check_expert_parallel(model.config, mesh.size())
    for layer in model.layers:
        layer.moe = ExpertParallelMoE(layer.moe, mesh, tokens="replicated")
    return model
