"""Process groups from torchrun's environment: gloo on CPUs, NCCL when each rank has a GPU.

``torchrun --nproc-per-node N`` starts N copies of a command and tells each one who it is
through environment variables: ``RANK`` (0 … N−1 over all machines), ``LOCAL_RANK`` (on this
machine), ``WORLD_SIZE`` and ``MASTER_ADDR``/``MASTER_PORT`` (where rank 0 listens).
:func:`init_distributed` reads them and joins the group; without them (a plain ``python``) it
returns a one-process :class:`DistributedRun` and initialises nothing, so the same code runs
both ways.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedRun:
    """Who this process is: its rank among ``world_size`` processes, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0, the only process that writes checkpoints, logs and printed output."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors (GPU-to-GPU, NVLink), gloo for CPU tensors (TCP on this machine)."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device | str = "cpu") -> DistributedRun:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; a one-process run otherwise.

    With CUDA each rank takes GPU ``LOCAL_RANK`` (one process per GPU, as torchrun intends).
    """
    device = torch.device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistributedRun(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend_for(device), device_id=device if device.type == "cuda" else None
        )
    return DistributedRun(dist.get_rank(), dist.get_world_size(), device)


def shutdown_distributed() -> None:
    """Leave the process group (torchrun expects every rank to do so before it exits)."""
    if dist.is_initialized():
        dist.destroy_process_group()
