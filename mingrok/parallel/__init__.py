"""Running one minGrok over several processes with ``torch.distributed``.

* :mod:`.tensor`: tensor parallelism (each rank a slice of every matrix, Megatron-style plans);
* :mod:`.expert`: expert parallelism (each rank whole experts, tokens exchanged by all-to-all);
* :mod:`.data_parallel`: each rank its share of every batch, DDP or FSDP2 (what
  :class:`mingrok.train.Trainer` uses under torchrun);
* :mod:`.launch`: joining torchrun's process group (gloo on CPUs, NCCL on GPUs);
* :mod:`.compare`: the sharded model against the single-process one, from a notebook.
"""

from .compare import ShardedComparison, compare_sharded
from .data_parallel import DataParallel
from .expert import ExpertParallelMoE, expert_parallel
from .launch import DistributedRun, init_distributed, shutdown_distributed
from .strategy import STRATEGIES, check_strategy, parallelize
from .tensor import TensorParallelMoE, tensor_parallel, tensor_parallel_config

__all__ = [
    "STRATEGIES",
    "DataParallel",
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
