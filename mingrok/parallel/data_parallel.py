"""Data parallelism: R ranks, each its own share of every batch, one model kept in step.

Every rank draws the *same* global batch of B windows (the batch generator is seeded alike on
every rank, and drawing B window starts is cheap) and keeps rows r·B/R … (r+1)·B/R − 1. The
gradient of the mean loss over the B windows is then the mean over ranks of each rank's mean
over its B/R windows, which is what DDP's all-reduce computes, so R processes follow the path
of one process training on the whole batch, up to float rounding.

* ``DistributedDataParallel``: every rank holds the whole model and optimizer; gradients are
  averaged by an all-reduce during backward (in buckets, overlapping the computation).
* FSDP2 (``fully_shard``, ``sharded=True``): every parameter, gradient and optimizer moment is
  split over the ranks (1/R each); a layer's weights are all-gathered just before its forward
  and backward, and gradients reduce-scattered. For a model that does not fit on one device.

The router's balancing loss E·Σ_i f_i P_i is *not* a mean over tokens (it multiplies two
means), so a rank computing it on its own tokens would train another model. Each rank uses
E·Σ_i f̄_i P_i^r instead, with f̄ the loads averaged over ranks (an all-reduce; f has no
gradient): its mean over ranks is exactly the whole batch's loss, and so is its gradient. The
z-loss is a mean over tokens already.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.nn.parallel import DistributedDataParallel

from ..model import MinGrok, MinGrokOutput
from .launch import DistributedRun


class DataParallel:
    """How a trainer spreads its batches over the ranks of ``run`` (one rank: changes nothing)."""

    def __init__(self, run: DistributedRun | None = None, *, sharded: bool = False) -> None:
        self.run = run or DistributedRun(0, 1, torch.device("cpu"))
        self.sharded = sharded

    @property
    def world_size(self) -> int:
        return self.run.world_size

    def rank_batch_size(self, batch_size: int) -> int:
        """B/R windows per rank; a clear error unless R divides the global batch B."""
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size={batch_size} (the global batch) must be a multiple of the "
                f"{self.world_size} processes, so that each draws the same number of windows"
            )
        return batch_size // self.world_size

    def wrap(self, model: MinGrok) -> nn.Module:
        """The module to train: DDP around ``model``, or ``model`` itself sharded by FSDP2
        (each decoder layer one unit, so one layer at a time is gathered in full)."""
        if not self.run.distributed:
            return model
        if self.sharded:
            from torch.distributed.fsdp import fully_shard

            for layer in model.layers:
                fully_shard(layer)
            return fully_shard(model)
        device_ids = [self.run.device] if self.run.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def reshard(self, model: nn.Module) -> None:
        """After a forward pass with no backward (an evaluation) FSDP2 leaves the root's weights
        gathered; shard them again, so that the module's parameters are the optimizer's."""
        if self.sharded and self.run.distributed:
            model.reshard()

    def this_rank(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch [B, …]."""
        rows = self.rank_batch_size(batch.shape[0])
        return batch[self.run.rank * rows : (self.run.rank + 1) * rows]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a (detached) value over the ranks, for the history."""
        return self.sum(value) / self.world_size

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        value = value.detach().clone()
        if self.run.distributed:
            dist.all_reduce(value)
        return value

    def router_loss(self, output: MinGrokOutput) -> torch.Tensor:
        """c_aux·L_aux + c_z·L_z of the whole batch, as this rank's share (see the module)."""
        if not self.run.distributed:
            return output.aux_loss
        stats = output.router_stats
        total = output.logits.new_zeros(())
        if output.aux_loss_coef:
            balance = [
                s.probs.shape[-1] * (self.mean(s.expert_fraction) * s.probs.mean(dim=0)).sum()
                for s in stats
            ]
            total = total + output.aux_loss_coef * torch.stack(balance).mean()
        if output.z_loss_coef:
            total = total + output.z_loss_coef * torch.stack([s.z_loss for s in stats]).mean()
        return total

    def gather_states(self, states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every rank's generator states, rank r > 0's under ``rank<r>.<name>`` (collective).

        The batch generator (``data``) is the same on every rank: rank 0's is kept alone."""
        if not self.run.distributed:
            return states
        everyone: list[dict[str, torch.Tensor] | None] = [None] * self.world_size
        dist.all_gather_object(everyone, states)
        gathered = dict(everyone[0])
        for rank, theirs in enumerate(everyone[1:], start=1):
            own = {name: state for name, state in theirs.items() if name != "data"}
            gathered |= {f"rank{rank}.{name}": state for name, state in own.items()}
        return gathered

    def state_name(self, name: str) -> str:
        """The checkpoint name of this rank's generator ``name`` (see :meth:`gather_states`)."""
        return name if self.run.is_main else f"rank{self.run.rank}.{name}"

    @staticmethod
    def full(tensor: torch.Tensor) -> torch.Tensor:
        """A sharded (DTensor) value gathered whole (collective); a plain one unchanged."""
        return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor

    @staticmethod
    def like(value: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
        """A whole saved value laid out as ``parameter`` is (this rank's shard under FSDP2)."""
        if isinstance(parameter, DTensor):
            return distribute_tensor(value, parameter.device_mesh, parameter.placements)
        return value.to(parameter.device)
