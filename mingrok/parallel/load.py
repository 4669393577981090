"""Load a released Grok-1 checkpoint straight into the ranks' shards, one file at a time.

Reading 296 GiB and splitting it afterwards would need the whole model on every rank first.
Instead, :func:`load_sharded`

1. builds the model on the meta device (shapes, no memory) and splits it there with
   :func:`mingrok.parallel.parallelize`, so every parameter already has the shape of *this
   rank's* piece, in the layout that :mod:`mingrok.parallel` owns;
2. streams the checkpoint (:func:`mingrok.released.iter_checkpoint`, one pickle at a time) and
   cuts each tensor to the rank's piece as soon as it is read: the piece is the block
   ``r·n // P`` of ``n`` equal blocks along the one axis where the rank's shape is smaller than
   the tensor's (n = P for a split axis; n = G for a KV head shared by P/G ranks, as
   :func:`mingrok.parallel.tensor.tensor_parallel` shares it), so nothing about the layout is
   written twice;
3. places the piece on the rank's device and drops the file.

A rank's peak memory is then its pieces plus the largest file being read. The attention and
expert matrices come as int8 with bfloat16 block scales (``QuantizedWeight8bit``): their pieces
are cut in int8, scale blocks alongside (the scales of the rows a rank keeps), and then either
dequantised once (``weights="float32"``: four bytes per value) or kept as they are
(``weights="int8"``: the released bytes, one per value plus the scales), in which case a
parametrization (:class:`Int8Weight`) dequantises the matrix each time its module reads it, so
a layer's float32 matrices exist only while that layer runs. Both dequantise with the same
function, so the two give the same logits.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import MinGrokConfig
from ..grok1 import haiku_to_torch_names
from ..model import MinGrok
from ..released import QuantizedWeight8bit, iter_checkpoint
from ..scale import RELEASED_SCALE_GROUPS
from .launch import DistributedRun
from .strategy import check_strategy, parallelize
from .tensor import allowed_tensor_parallel_sizes

WEIGHTS = ("float32", "int8")  # how the attention and expert matrices stay resident


def load_sharded(
    path: str | Path,
    config: MinGrokConfig,
    run: DistributedRun,
    strategy: str | None = None,
    weights: str = "float32",
) -> MinGrok:
    """This rank's part of the released checkpoint at ``path`` (a ``ckpt-0`` folder), split by
    ``strategy`` ("tensor", "expert", or None: the whole model) over ``run``'s ranks, on its
    device, with the quantised matrices stored as ``weights`` ("float32" or "int8")."""
    model = build_sharded(config, run, strategy)
    return fill(model, iter_checkpoint(path, config), run, weights)


def check_split(config: MinGrokConfig, world_size: int, strategy: str) -> None:
    """A clear error, naming the sizes allowed, unless ``world_size`` ranks can split ``config``
    by ``strategy`` and cut the released matrices along their scale blocks: a tensor split cuts
    the row-split matrices' K rows into ``world_size`` blocks, which must be whole scale blocks
    (``world_size`` divides G = 8) or lie inside one (8 divides ``world_size``)."""
    check_strategy(config, world_size, strategy)
    groups = RELEASED_SCALE_GROUPS
    if strategy == "tensor" and groups % world_size and world_size % groups:
        allowed = [
            size
            for size in allowed_tensor_parallel_sizes(config)
            if groups % size == 0 or size % groups == 0
        ]
        raise ValueError(
            f"world_size={world_size} cuts the rows of multi_head_attention/linear and "
            f"moe/linear_1 into {world_size} blocks, which do not line up with their {groups} "
            f"bfloat16 scale blocks as released; allowed: {allowed}"
        )


def build_sharded(config: MinGrokConfig, run: DistributedRun, strategy: str | None) -> MinGrok:
    """The model on the meta device, split over ``run``'s ranks (a clear error, naming the sizes
    allowed, when the rank count cannot split its shapes: :func:`check_split`)."""
    if strategy is not None:
        check_split(config, run.world_size, strategy)
    with torch.device("meta"):
        model = MinGrok(config)
    if strategy is not None and run.distributed:
        from torch.distributed.device_mesh import init_device_mesh

        parallelize(model, init_device_mesh(run.device.type, (run.world_size,)), strategy)
    return model.eval()


def fill(
    model: MinGrok, tensors: Iterable[tuple[str, Any]], run: DistributedRun, weights: str
) -> MinGrok:
    """Give every meta parameter of ``model`` its piece of the (Haiku path, value) pairs.

    Every parameter must come exactly once with its full released shape: a missing, unexpected,
    repeated or mis-shaped tensor raises ``KeyError``/``ValueError`` naming it.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is invalid: it must be one of {WEIGHTS}")
    names = haiku_to_torch_names(model.config)
    seen: set[str] = set()
    for haiku_name, value in tensors:
        name = haiku_name.removeprefix("params/")
        if name not in names:
            raise KeyError(f"unexpected tensor {haiku_name!r} for this config")
        if name in seen:
            raise KeyError(f"tensor {haiku_name!r} comes twice")
        seen.add(name)
        torch_name, transpose = names[name]
        _place(model, torch_name, name, value, transpose, run, weights)
        del value  # the whole file: only the rank's piece stays
        _return_freed_memory()
    missing = sorted(set(names) - seen)
    if missing:
        raise KeyError(f"the checkpoint lacks {len(missing)} tensor(s), first: {missing[0]!r}")
    return model


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent from musl, macOS and Windows
    except (OSError, AttributeError, TypeError):
        return None


def _return_freed_memory() -> None:
    """Give the pages of the file just dropped back to the system (glibc's ``malloc_trim``).

    After a large block is freed, glibc raises its mmap threshold to that size, so the next
    file-sized blocks come from the heap, where a freed block stays in the process's resident
    memory until a trim: benchmarks/bench_sharded_load.py measured float32 ranks up to 25 MiB over
    shard + largest file + 64 MiB without it. One trim per file costs microseconds.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def resident_bytes(model: nn.Module) -> int:
    """Bytes of the tensors this rank holds: its pieces of the parameters (a DTensor's local
    tensor) and the buffers (the int8 values and scales of :class:`Int8Weight`)."""
    tensors = [getattr(t, "_local_tensor", t) for t in (*model.parameters(), *model.buffers())]
    return sum(t.numel() * t.element_size() for t in tensors)


class Int8Weight(nn.Module):
    """A parametrization: the weight its module reads is ``dequantize(values, scales)``, made
    each time it is read, from int8 ``values`` [..., K, N] and bfloat16 ``scales`` [..., G, N]
    kept as buffers (transposed to ``torch.nn.Linear``'s [out, in] when ``transpose``, and
    wrapped as the rank's DTensor piece when the module's weight was one)."""

    def __init__(
        self, values: torch.Tensor, scales: torch.Tensor, transpose: bool, like: torch.Tensor
    ) -> None:
        super().__init__()
        self.register_buffer("values", values)
        self.register_buffer("scales", scales)
        self.transpose = transpose
        self.layout = _dtensor_layout(like)

    def forward(self, placeholder: torch.Tensor) -> torch.Tensor:
        weight = _dequantize(self.values, self.scales)
        weight = weight.t() if self.transpose else weight
        if self.layout is None:
            return weight
        from torch.distributed.tensor import DTensor

        mesh, placements, shape, stride = self.layout
        return DTensor.from_local(
            weight, mesh, placements, run_check=False, shape=shape, stride=stride
        )


def _place(
    model: MinGrok,
    torch_name: str,
    haiku_name: str,
    value: Any,
    transpose: bool,
    run: DistributedRun,
    weights: str,
) -> None:
    """Cut ``value`` to the rank's piece of parameter ``torch_name`` and install it."""
    module_name, _, attribute = torch_name.rpartition(".")
    module = model.get_submodule(module_name)
    target = getattr(module, attribute)
    local = target.to_local() if _dtensor_layout(target) else target
    want = tuple(local.shape[::-1] if transpose else local.shape)  # the piece, Haiku layout
    quantized = isinstance(value, QuantizedWeight8bit)
    full = value.weight if quantized else torch.as_tensor(value)
    axis, blocks = _split_of(haiku_name, tuple(full.shape), want, model.config, transpose)
    rank, size = run.rank, run.world_size
    piece = _block(full, axis, blocks, rank, size)
    if not quantized:
        _install(module, attribute, target, piece, transpose, run.device, fresh=False)
        return
    scales = _scale_piece(haiku_name, value.scales, piece.dim(), axis, blocks, run)
    if weights == "float32":
        matrix = _dequantize(piece, scales)
        _install(module, attribute, target, matrix, transpose, run.device, fresh=True)
        return
    parametrization = Int8Weight(
        piece.to(run.device, copy=True), scales.to(run.device, copy=True), transpose, target
    )
    setattr(module, attribute, nn.Parameter(torch.empty(0, device=run.device), False))
    parametrize.register_parametrization(module, attribute, parametrization, unsafe=True)


def _split_of(
    name: str, full: tuple[int, ...], want: tuple[int, ...], config: MinGrokConfig, transpose: bool
) -> tuple[int, int]:
    """(axis, n): the rank's piece is one of n equal blocks along ``axis`` (n = 1: all of it)."""
    if len(full) != len(want):
        raise ValueError(f"tensor {name!r} has shape {full}; the config needs {len(want)} axes")
    differing = [axis for axis, (a, b) in enumerate(zip(full, want, strict=True)) if a != b]
    if not differing:
        return 0, 1
    axis = differing[0]
    if len(differing) > 1 or full[axis] % want[axis]:
        whole = _whole_shape(name, config, transpose)
        raise ValueError(
            f"tensor {name!r} has shape {full}; the config needs {whole} (cut into pieces {want})"
        )
    return axis, full[axis] // want[axis]


def _whole_shape(name: str, config: MinGrokConfig, transpose: bool) -> tuple[int, ...]:
    with torch.device("meta"):
        state = MinGrok(config).state_dict()
    torch_name, _ = haiku_to_torch_names(config)[name]
    shape = tuple(state[torch_name].shape)
    return shape[::-1] if transpose else shape


def _block(tensor: torch.Tensor, axis: int, blocks: int, rank: int, size: int) -> torch.Tensor:
    """Block ``rank·blocks // size`` of ``blocks`` equal blocks of ``tensor`` along ``axis``."""
    width = tensor.shape[axis] // blocks
    return tensor.narrow(axis, rank * blocks // size * width, width)


def _scale_piece(
    name: str, scales: torch.Tensor, dims: int, axis: int, blocks: int, run: DistributedRun
) -> torch.Tensor:
    """The scales [..., G, N] of the rank's block of int8 values.

    Cut along the input axis K (a row split), the rank's rows are whole scale blocks when its
    block count divides G, or lie inside one block when G divides it; any other rank count would
    give a rank part of a block's rows with no scale of their own."""
    if scales.dim() != dims:
        raise ValueError(f"tensor {name!r} has scales of {scales.dim()} axes for {dims}")
    if blocks == 1 or scales.shape[axis] == 1:  # whole, or one scale row for every block
        return scales
    if axis != dims - 2 or scales.shape[axis] % blocks == 0:
        return _block(scales, axis, blocks, run.rank, run.world_size)
    groups = scales.shape[axis]
    if blocks % groups:  # (check_split refuses such rank counts for the release's G = 8)
        raise ValueError(
            f"{run.world_size} ranks cut the rows of {name!r} into {blocks} blocks, which do not "
            f"line up with its {groups} scale blocks: the rank count must divide {groups} or be "
            "a multiple of it"
        )
    group = run.rank * blocks // run.world_size * groups // blocks
    return scales.narrow(axis, group, 1)


def _install(
    module: nn.Module,
    attribute: str,
    target: torch.Tensor,
    piece: torch.Tensor,
    transpose: bool,
    device: torch.device,
    *,
    fresh: bool,
) -> None:
    """Replace the meta parameter ``target`` by ``piece`` (contiguous, float32, on ``device``, in
    torch's layout; the rank's DTensor piece when ``target`` was one). A piece that is a view of
    the file read is copied, so that the file can go; a ``fresh`` one (made from it, such as a
    dequantised matrix) is kept as it is when it already has the layout, to save a copy."""
    local = piece.t() if transpose else piece
    local = local.contiguous() if fresh else local.clone(memory_format=torch.contiguous_format)
    local = local.to(device=device, dtype=torch.float32)
    layout = _dtensor_layout(target)
    if layout is not None:
        from torch.distributed.tensor import DTensor

        mesh, placements, shape, stride = layout
        local = DTensor.from_local(
            local, mesh, placements, run_check=False, shape=shape, stride=stride
        )
    setattr(module, attribute, nn.Parameter(local, requires_grad=False))


def _dtensor_layout(tensor: torch.Tensor) -> tuple | None:
    """(mesh, placements, global shape, global stride) of a DTensor; None for a plain tensor."""
    if not hasattr(tensor, "placements"):
        return None
    return tensor.device_mesh, tensor.placements, tensor.shape, tensor.stride()


def _dequantize(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The float32 matrix xAI's code multiplies with, ``bf16(q · s)`` (the released reader's)."""
    return QuantizedWeight8bit(values, scales).dequantize()
