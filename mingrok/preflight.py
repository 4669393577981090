"""Before loading a released checkpoint: what each rank will hold, and whether its device can.

Loading Grok-1 takes minutes and ends, on a device too small, in an out-of-memory kill that names
nothing. :func:`rank_needs` computes a rank's bytes from the configuration (:mod:`mingrok.scale`)
and :func:`check_fits` compares them with what the device has free, before anything is read:

    weights        what the rank keeps: its shard of every tensor in the layout (tensor or
                   expert parallel), int8 + bfloat16 scales for the quantised matrices when
                   ``--weights int8`` (the released bytes), float32 otherwise
    KV cache       float32 keys and values of the rank's KV heads for the cache's capacity
                   (the eager decoder allocates max_seq_len positions up front)
    reading        the largest released file, read whole before its shard is cut
                   (:mod:`mingrok.parallel.load` streams one file at a time)
    dequantising   int8 weights only: one layer's largest expert or attention matrix shard in
                   float32, made for the product and dropped after it (3 for the experts'
                   three matrices)
    runtime        RUNTIME_BYTES for the process itself (PyTorch, the process group, the
                   activations of a decoding step), a stated allowance, not a measurement

On CPUs every rank of a host shares its memory, so the host must hold ``LOCAL_WORLD_SIZE`` ranks'
needs; a GPU rank has its own device.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import MinGrokConfig
from .parallel.launch import DistributedRun
from .scale import kv_cache_bytes, weight_bytes, weights

RUNTIME_BYTES = 2**30  # the allowance for PyTorch, the process group and a step's activations
# --weights (or --grok1-dtype) → mingrok.scale's storage
STORAGE_OF_WEIGHTS = {"float32": "float32", "bfloat16": "bfloat16", "int8": "released"}


@dataclass(frozen=True)
class RankNeeds:
    """Bytes one rank needs, by kind (see the module docstring)."""

    world_size: int
    layout: str
    weights: str
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {_gib(size)}" for name, size in self.parts.items())
        storage = f"--weights {self.weights}"
        who = f"one process (the whole model, {storage})"
        if self.world_size > 1:
            who = f"each of {self.world_size} ranks ({self.layout} parallel, {storage})"
        return f"{who} needs {_gib(self.total)}: {parts}"


def rank_needs(
    config: MinGrokConfig, world_size: int, layout: str, weights_storage: str
) -> RankNeeds:
    """What one of ``world_size`` ranks needs to load and run ``config`` split by ``layout``
    ("tensor" or "expert"), its matrices stored as ``weights_storage`` ("float32", "bfloat16":
    every parameter, or "int8": the quantised matrices as released)."""
    if weights_storage not in STORAGE_OF_WEIGHTS:
        raise ValueError(
            f"weights={weights_storage!r} is invalid: it must be one of {tuple(STORAGE_OF_WEIGHTS)}"
        )
    storage = STORAGE_OF_WEIGHTS[weights_storage]
    width = 2 if storage == "bfloat16" else 4  # the embedding's and the cache's bytes per value
    kv_ranks = world_size if layout == "tensor" else 1  # expert parallel replicates attention
    tensors = weights(config, layout)
    parts = {
        "weights": weight_bytes(config, storage, world_size, layout),
        "KV cache": kv_cache_bytes(config, config.max_seq_len, width, kv_ranks),
        "reading": max(weight.released_bytes() for weight in tensors),
    }
    if weights_storage == "int8":
        largest = max(math.prod(w.shard_shape(world_size)) for w in tensors if w.quantized)
        parts["dequantising"] = 3 * 4 * largest
    parts["runtime"] = RUNTIME_BYTES
    return RankNeeds(world_size, layout, weights_storage, parts)


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: the GPU's free bytes, or the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        import psutil
    except ImportError:
        return _meminfo_available()
    return psutil.virtual_memory().available


def _meminfo_available() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise OSError("cannot tell the available memory: no MemAvailable in /proc/meminfo")


def check_fits(needs: RankNeeds, device: torch.device) -> str:
    """The needs, described; a ValueError naming the figures when the device cannot hold them.

    A GPU rank reads its files into host memory: the device must hold all but the reading."""
    gpu = device.type == "cuda"
    sharing = 1 if gpu else int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    on_device = needs.total - (needs.parts["reading"] if gpu else 0)
    wanted, free = sharing * on_device, available_bytes(device)
    where = f"{device}" if sharing == 1 else f"this host's RAM, shared by its {sharing} ranks"
    summary = f"{needs.describe()}; {where} has {_gib(free)} free"
    if wanted > free:
        remedies = ["more ranks (under torchrun, with --tensor-parallel or --expert-parallel)"]
        if needs.weights != "int8":
            remedies.append("--weights int8")
        raise ValueError(
            f"{summary}, less than the {_gib(wanted)} needed: use {' or '.join(remedies)}, "
            "or a larger device"
        )
    return summary


def preflight_released(
    path: str | Path,
    config: MinGrokConfig,
    run: DistributedRun,
    strategy: str | None,
    weights_storage: str,
) -> str:
    """Before reading a released checkpoint: the folder holds the files ``config`` needs, the
    rank count splits it (the sizes allowed listed otherwise), and this rank's device holds what
    it needs; returns the needs, described. Every failure is a ValueError naming the figures."""
    from .parallel.load import check_split
    from .released import check_files

    check_files(path, config)
    world_size = run.world_size if strategy is not None else 1
    if strategy is not None:
        check_split(config, world_size, strategy)
    needs = rank_needs(config, world_size, strategy or "tensor", weights_storage)
    return check_fits(needs, run.device)


def _gib(size: int) -> str:
    """Bytes in GiB, or in MiB or KiB below one GiB (a small model's figures stay readable)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size / 2**10:.1f} KiB"
