"""The ways to split one model over ranks, by name, with their requirements checked up front."""

from __future__ import annotations

from collections.abc import Callable

from torch.distributed.device_mesh import DeviceMesh

from ..config import MinGrokConfig, is_whole_number
from ..model import MinGrok
from .expert import check_expert_parallel, expert_parallel
from .tensor import check_tensor_parallel, tensor_parallel

STRATEGIES: dict[str, tuple[Callable[[MinGrok, DeviceMesh], MinGrok], Callable]] = {
    "tensor": (tensor_parallel, check_tensor_parallel),
    "expert": (expert_parallel, check_expert_parallel),
}


def check_strategy(config: MinGrokConfig, world_size: int, strategy: str) -> None:
    """A clear error for an unknown strategy, a bad world size, or one the model cannot split."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is unknown; choose one of {tuple(STRATEGIES)}")
    if not is_whole_number(world_size):
        raise ValueError(f"world_size={world_size!r} is invalid: it must be an integer >= 1")
    STRATEGIES[strategy][1](config, world_size)


def parallelize(model: MinGrok, mesh: DeviceMesh, strategy: str) -> MinGrok:
    """Split ``model`` in place over ``mesh`` by ``strategy`` ("tensor" or "expert")."""
    check_strategy(model.config, mesh.size(), strategy)
    return STRATEGIES[strategy][0](model, mesh)
