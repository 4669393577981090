"""Running one minGrok over several processes with ``torch.distributed``.

* :mod:`.tensor`: tensor parallelism (each rank a slice of every matrix, Megatron-style plans);
* :mod:`.expert`: expert parallelism (each rank whole experts, tokens exchanged by all-to-all);
* :mod:`.launch`: joining torchrun's process group (gloo on CPUs, NCCL on GPUs);
* :mod:`.compare`: the sharded model against the single-process one, from a notebook.

Data parallelism (DDP, FSDP2) lives with the training loop, in :mod:`mingrok.train`.
"""

from .compare import ShardedComparison, compare_sharded
from .expert import ExpertParallelMoE, expert_parallel
from .launch import DistributedRun, init_distributed, shutdown_distributed
from .strategy import STRATEGIES, check_strategy, parallelize
from .tensor import TensorParallelMoE, tensor_parallel, tensor_parallel_config

__all__ = [
    "STRATEGIES",
    "DistributedRun",
    "ExpertParallelMoE",
    "ShardedComparison",
    "TensorParallelMoE",
    "check_strategy",
    "compare_sharded",
    "expert_parallel",
    "init_distributed",
    "parallelize",
    "shutdown_distributed",
    "tensor_parallel",
    "tensor_parallel_config",
]
