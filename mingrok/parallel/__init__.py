"""Running one minGrok over several processes with ``torch.distributed``.

* :mod:`.tensor`: tensor parallelism (each rank a slice of every matrix, Megatron-style plans);
* :mod:`.expert`: expert parallelism (each rank whole experts, tokens exchanged by all-to-all);
* :mod:`.data_parallel`: each rank its share of every batch, DDP or FSDP2 (what
  :class:`mingrok.train.Trainer` uses under torchrun);
* :mod:`.launch`: joining torchrun's process group (gloo on CPUs, NCCL on GPUs);
* :mod:`.compare`: the sharded model against the single-process one, from a notebook.

The names below load their module on first use: DTensor's import (sympy included) takes about a
second, which training in one process, through :mod:`mingrok.train`, should never pay.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "ShardedComparison": "compare",
    "compare_sharded": "compare",
    "DataParallel": "data_parallel",
    "ExpertParallelMoE": "expert",
    "expert_parallel": "expert",
    "DistributedRun": "launch",
    "init_distributed": "launch",
    "shutdown_distributed": "launch",
    "STRATEGIES": "strategy",
    "check_strategy": "strategy",
    "parallelize": "strategy",
    "TensorParallelMoE": "tensor",
    "tensor_parallel": "tensor",
    "tensor_parallel_config": "tensor",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
