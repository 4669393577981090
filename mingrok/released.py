"""Grok-1's released checkpoint format, read without trusting it and written byte for byte.

xAI's ``ckpt-0/`` holds one pickle per leaf of the parameter tree, ``tensor{i:05d}_000``, in the
order ``jax.tree_util.tree_flatten_with_path`` gives (Haiku module paths sorted as strings, so
``decoder_layer_10`` comes before ``decoder_layer_2``): 2 + 12·L files, 770 for Grok-1. The
embedding, the norms and the routers are float32 numpy arrays; the attention and expert matrices
are ``__main__.QuantizedWeight8bit``: int8 values q [..., K, N] and bfloat16 scales s [..., G, N],
one scale per output column in each of G blocks of the input axis (G = 8, one block per model-axis
shard, for the row-split ``multi_head_attention/linear`` and ``moe/linear_1``; G = 1 otherwise).
xAI's code uses such a weight as the bfloat16 product

    W[..., i, n] = bf16( q[..., i, n] · s[..., ⌊i / (K/G)⌋, n] )

(``weight.astype(scales.dtype) * scales`` in ``model.py``), before any matmul.

xAI's loader calls ``pickle.load`` on every file, which runs whatever callable a file names.
:func:`read_tensor` reads a file with a pickle machine of its own that knows only the opcodes
the release uses and the five globals it names (numpy's array and dtype reconstruction, under
numpy 1's and numpy 2's module names, ``__main__.QuantizedWeight8bit`` and ``ml_dtypes.bfloat16``),
each mapped to a stand-in that checks its arguments; any other global is refused before anything
runs. :func:`read_header` reads the shapes alone, skipping the arrays, so that
:func:`iter_checkpoint` checks all 770 files against the config before it reads one array. The
bfloat16 scales come back as ``torch.bfloat16`` tensors, so ``ml_dtypes`` is not needed.

:func:`write_checkpoint` writes the same files: protocol-4 pickles with the same opcodes, memo
and framing as CPython's pickler gives for xAI's objects under numpy 1 (the fixture's files come
back byte for byte), and :func:`quantize` makes the int8 values and scales from float weights.
Reference: xai-org/grok-1 ``checkpoint.py`` (``restore``, ``fast_unpickle``), ``model.py``
(``QuantizedWeight8bit``, ``Linear``, ``MoELayer``).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .config import MinGrokConfig
from .scale import RELEASED_SCALE_GROUPS, weights

CHECKPOINT_DIR = "ckpt-0"
FILE_PATTERN = re.compile(r"tensor(\d{5})_000")
LEVELS = 127  # int8 values in [−127, 127]
_FRAME_TARGET = 64 * 1024  # CPython's pickler ends a frame once it reaches this size
_FRAME_MIN = 4  # a frame shorter than this is written without its FRAME header

# The dtypes the release holds: numpy's pickled dtype code → (numpy dtype read, element bytes).
# bfloat16 has no numpy dtype without ml_dtypes: its 2-byte values are read as uint16 bit patterns.
_DTYPES = {"f4": np.dtype("<f4"), "i1": np.dtype("i1"), "bfloat16": np.dtype("<u2")}


def file_name(index: int) -> str:
    return f"tensor{index:05d}_000"


class CheckpointError(ValueError):
    """A released-format checkpoint that cannot be read as the config says: the message names the
    file and what is wrong."""


@dataclass(frozen=True)
class QuantizedWeight8bit:
    """A released int8 matrix: ``weight`` int8 [..., K, N] and ``scales`` bfloat16 [..., G, N]."""

    weight: torch.Tensor
    scales: torch.Tensor

    def __post_init__(self) -> None:
        q, s = self.weight, self.scales
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8 or q.dim() < 2:
            raise ValueError(
                f"QuantizedWeight8bit.weight must be an int8 tensor [..., K, N]; got {_describe(q)}"
            )
        if not isinstance(s, torch.Tensor) or s.dtype != torch.bfloat16 or s.dim() != q.dim():
            raise ValueError(
                f"QuantizedWeight8bit.scales must be a bfloat16 tensor [..., G, N] of the weight's "
                f"rank {q.dim()}; got {_describe(s)}"
            )
        *lead, k, n = q.shape
        if list(s.shape[:-2]) != lead or s.shape[-1] != n or k % s.shape[-2]:
            raise ValueError(
                f"QuantizedWeight8bit.scales {tuple(s.shape)} do not fit weight {tuple(q.shape)}: "
                f"expected [{', '.join(map(str, [*lead, 'G']))}, {n}] with G dividing {k}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)

    @property
    def groups(self) -> int:
        """G, the number of scale blocks along the input axis."""
        return self.scales.shape[-2]

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight xAI's code multiplies with, ``bf16(q · s)`` (each block of K/G rows with its
        own row of scales), as ``dtype``. The product is rounded to bfloat16 as the code computes
        it; dequantising in float32 instead moves the fixture's logits by 2.8e-2."""
        *lead, k, n = self.weight.shape
        blocks = self.weight.reshape(*lead, self.groups, k // self.groups, n)
        product = blocks.to(torch.bfloat16) * self.scales.unsqueeze(-2)  # one bfloat16 rounding
        return product.reshape(*lead, k, n).to(dtype)


def _describe(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"{type(value).__name__} {value.dtype} {tuple(value.shape)}"
    return type(value).__name__


# ----------------------------------------------------------------------------------------------
# Which tensors a config has, in file order


@dataclass(frozen=True)
class TensorSpec:
    """One file of the checkpoint: its Haiku path, its shape, and G (None: a float32 array)."""

    name: str
    shape: tuple[int, ...]
    scale_groups: int | None

    @property
    def scales_shape(self) -> tuple[int, ...] | None:
        if self.scale_groups is None:
            return None
        return (*self.shape[:-2], self.scale_groups, self.shape[-1])


def flatten_order(names: list[str] | Any) -> list[str]:
    """Haiku paths in ``tree_flatten`` order: by module path as a string, then parameter name."""
    return sorted(names, key=lambda name: tuple(name.rsplit("/", 1)))


def tensor_specs(config: MinGrokConfig) -> list[TensorSpec]:
    """Every file of a released checkpoint of ``config``, in the order the files are numbered.

    Names are :func:`mingrok.grok1.haiku_to_torch_names`'s; shapes and which matrices are int8
    (with G = 8 blocks for a row-split one) are :func:`mingrok.scale.weights`'s.
    """
    from .grok1 import haiku_to_torch_names

    if config.router_noise == "noisy_topk":
        raise CheckpointError(
            "a released-format checkpoint holds Grok-1's parameters; router_noise='noisy_topk' "
            "adds a noise projection that Grok-1 does not have"
        )
    layer_weights = {weight.name: weight for weight in weights(config) if weight.per_layer}
    ends = {
        "language_model/in_out_embed/embeddings": (config.vocab_size, config.d_model),
        "language_model/rms_norm/scale": (config.d_model,),
    }
    specs = []
    for name in flatten_order(haiku_to_torch_names(config)):
        if name in ends:
            specs.append(TensorSpec(name, ends[name], None))
            continue
        module = name.split("/", 2)[2].rsplit("/", 1)[0]  # transformer/decoder_layer_i/<module>/w
        weight = layer_weights[module]
        groups = None
        if weight.quantized:
            groups = RELEASED_SCALE_GROUPS if weight.row_split else 1
        specs.append(TensorSpec(name, weight.shape, groups))
    return specs


def checkpoint_names(config: MinGrokConfig) -> list[str]:
    """The Haiku path held by each ``tensor{i:05d}_000``, i = 0, 1, ... (what xAI's
    ``checkpoint.restore`` reads them as)."""
    return [spec.name for spec in tensor_specs(config)]


# ----------------------------------------------------------------------------------------------
# Reading: a restricted unpickler
#
# The files are read by a small pickle machine of our own rather than by ``pickle.Unpickler``: it
# knows only the opcodes the release's files use, calls nothing but the stand-ins below, and can
# skip the array bytes, so that every file's shapes are checked before any data is read.


class _Global:
    """A global the release names only as an argument (``numpy.ndarray``, ``ml_dtypes.bfloat16``):
    a marker that cannot be called, and that a pickle's BUILD cannot change."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"a pickle tried to change {self!r}")


_NDARRAY = _Global("numpy", "ndarray")
_BFLOAT16 = _Global("ml_dtypes", "bfloat16")


class _DtypeState:
    """What ``numpy.dtype(code, False, True)`` + its pickled state describe."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        key = "bfloat16" if code is _BFLOAT16 else code
        if not isinstance(key, str) or key not in _DTYPES:
            raise pickle.UnpicklingError(
                f"dtype {code!r} is not one the release uses (float32 'f4', int8 'i1', "
                "ml_dtypes.bfloat16)"
            )
        self.key = key
        self.byteorder: Any = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2:
            raise pickle.UnpicklingError(f"unexpected numpy dtype state {state!r:.80}")
        self.byteorder = state[1]
        allowed = "|" if self.key == "i1" else "<"  # little-endian, as every release machine
        if self.byteorder not in (allowed, "="):
            raise pickle.UnpicklingError(
                f"dtype {self.key} with byte order {self.byteorder!r}; the release uses {allowed!r}"
            )


class _Skipped:
    """A payload left on disk by a header scan: its length only."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


class _ArrayState:
    """What ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` + its state describe."""

    def __init__(self, cls: Any, shape: Any, typecode: Any) -> None:
        if cls is not _NDARRAY or typecode != b"b":
            raise pickle.UnpicklingError(f"_reconstruct of {cls!r}, {typecode!r}: not an ndarray")
        self.shape: tuple[int, ...] = ()
        self.dtype: _DtypeState | None = None
        self.fortran = False
        self.data: bytearray | _Skipped = _Skipped(0)

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise pickle.UnpicklingError(f"unexpected numpy array state {state!r:.80}")
        _, shape, dtype, fortran, data = state
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"array shape {shape!r:.80} is not a tuple of sizes")
        if not isinstance(dtype, _DtypeState) or not isinstance(data, (bytearray, _Skipped)):
            raise pickle.UnpicklingError("array state without a dtype or raw bytes")
        expected = math.prod(shape) * _DTYPES[dtype.key].itemsize
        if len(data) != expected:
            raise pickle.UnpicklingError(
                f"array {shape} of {dtype.key} needs {expected} bytes of data; it has {len(data)}"
            )
        self.shape, self.dtype, self.fortran, self.data = shape, dtype, bool(fortran), data

    def numpy(self) -> np.ndarray:
        """The array, over the bytes read (no copy)."""
        if self.dtype is None or isinstance(self.data, _Skipped):
            raise pickle.UnpicklingError("an array whose data was not read")
        flat = np.frombuffer(self.data, dtype=_DTYPES[self.dtype.key])
        return flat.reshape(self.shape, order="F" if self.fortran else "C")


class _QuantizedState:
    """The pickled ``__main__.QuantizedWeight8bit`` (a dataclass: NEWOBJ, then its ``__dict__``)."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _ArrayState,  # numpy 1 (the release)
    ("numpy._core.multiarray", "_reconstruct"): _ArrayState,  # numpy 2
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeState,
    ("__main__", "QuantizedWeight8bit"): _QuantizedState,
    ("ml_dtypes", "bfloat16"): _BFLOAT16,
}
ALLOWED_GLOBALS = tuple(f"{module}.{name}" for module, name in _ALLOWED)


class UnsafeCheckpointError(CheckpointError):
    """A file names a global outside the release's allow-list; nothing it names was run."""


def _find(module: Any, name: Any, source: str) -> Any:
    allowed = _ALLOWED.get((module, name))
    if allowed is None:
        raise UnsafeCheckpointError(
            f"{source} names the global {module}.{name}, which a released Grok-1 checkpoint "
            f"never holds; refused without running it (allowed: {', '.join(ALLOWED_GLOBALS)})"
        )
    return allowed


_CALLABLE = (_ArrayState, _DtypeState, _QuantizedState)  # the stand-ins REDUCE and NEWOBJ make
_PAYLOAD_LENGTHS = {ord("C"): "<B", ord("B"): "<I", 0x8E: "<Q"}  # SHORT_BINBYTES .. BINBYTES8
_INTEGERS = {ord("K"): "<B", ord("M"): "<H", ord("J"): "<i"}  # BININT1, BININT2, BININT
_ATOMS = {ord("N"): None, 0x88: True, 0x89: False, ord(")"): ()}  # NONE, NEWTRUE/FALSE, EMPTY_TUPLE


def _unpickle(file: BinaryIO, source: str, *, read_payloads: bool) -> Any:
    """The object a release file pickles, built from the stand-ins only.

    Only the opcodes the release's files use are known (protocol 4, plus GLOBAL so that an older
    pickle's global is named when refused); a global outside :data:`ALLOWED_GLOBALS` raises
    :class:`UnsafeCheckpointError` as soon as it is read. With ``read_payloads`` False the bytes
    of large arrays (64 KiB or more) are skipped, their length checked against the file's size,
    so a header scan reads a few hundred bytes of a 1.6 GB file.
    """
    size = os.fstat(file.fileno()).st_size
    stack: list[Any] = []
    marks: list[int] = []
    memo: list[Any] = []

    def read(count: int) -> bytes:
        data = file.read(count)
        if len(data) != count:
            raise EOFError("pickle data was truncated")
        return data

    def unpack(layout: str) -> int:
        return struct.unpack(layout, read(struct.calcsize(layout)))[0]

    def pop_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def payload(count: int) -> bytearray | _Skipped:
        if count > size - file.tell():
            raise EOFError(f"pickle data was truncated (a {count}-byte array runs past the end)")
        if not read_payloads and count >= _FRAME_TARGET:  # a large array's bytes: left on disk
            file.seek(count, os.SEEK_CUR)
            return _Skipped(count)
        data = bytearray(count)  # writable, so the arrays made over it need no copy
        if file.readinto(data) != count:
            raise EOFError("pickle data was truncated")
        return data

    while True:
        op = read(1)[0]
        if op == 0x80:  # PROTO
            read(1)
        elif op == 0x95:  # FRAME: its opcodes are read like the others
            read(8)
        elif op in (0x8C, ord("X")):  # SHORT_BINUNICODE, BINUNICODE
            stack.append(read(unpack("<B" if op == 0x8C else "<I")).decode())
        elif op == 0x94:  # MEMOIZE
            memo.append(stack[-1])
        elif op in (ord("h"), ord("j")):  # BINGET, LONG_BINGET
            stack.append(memo[unpack("<B" if op == ord("h") else "<I")])
        elif op == 0x93:  # STACK_GLOBAL
            name = stack.pop()
            stack.append(_find(stack.pop(), name, source))
        elif op == ord("c"):  # GLOBAL
            module = file.readline(256).decode().rstrip("\n")
            stack.append(_find(module, file.readline(256).decode().rstrip("\n"), source))
        elif op in _INTEGERS:
            stack.append(unpack(_INTEGERS[op]))
        elif op == 0x8A:  # LONG1
            stack.append(int.from_bytes(read(unpack("<B")), "little", signed=True))
        elif op in _ATOMS:
            stack.append(_ATOMS[op])
        elif op in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
            count = op - 0x84
            items = tuple(stack[-count:])
            if len(items) != count:
                raise IndexError("stack underflow")
            del stack[-count:]
            stack.append(items)
        elif op == ord("("):  # MARK
            marks.append(len(stack))
        elif op == ord("t"):  # TUPLE
            stack.append(tuple(pop_mark()))
        elif op in _PAYLOAD_LENGTHS:
            stack.append(payload(unpack(_PAYLOAD_LENGTHS[op])))
        elif op in (ord("R"), 0x81):  # REDUCE, NEWOBJ: only the stand-ins are ever called
            args, function = stack.pop(), stack.pop()
            if function not in _CALLABLE or not isinstance(args, tuple):
                raise pickle.UnpicklingError(f"a call of {function!r:.60}, not a release object")
            stack.append(function(*args))
        elif op == ord("}"):  # EMPTY_DICT
            stack.append({})
        elif op == ord("u"):  # SETITEMS
            items = pop_mark()
            stack[-1].update(zip(items[::2], items[1::2], strict=True))
        elif op == ord("b"):  # BUILD
            state = stack.pop()
            if not isinstance(stack[-1], _CALLABLE):
                raise pickle.UnpicklingError(f"a BUILD of {stack[-1]!r:.60}")
            stack[-1].__setstate__(state)
        elif op == ord("."):  # STOP
            if len(stack) != 1 or marks:
                raise pickle.UnpicklingError("the pickle stops with a malformed stack")
            if file.tell() != size:
                raise pickle.UnpicklingError("data after the pickle's end")
            return stack[0]
        else:
            raise pickle.UnpicklingError(
                f"opcode {bytes([op])!r} at byte {file.tell() - 1}, which the release never uses"
            )


def _bfloat16_tensor(bits: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)


def _parts(loaded: Any, source: str) -> tuple[_ArrayState, ...]:
    """(array,) for a float32 array, (weight, scales) for a QuantizedWeight8bit; else an error."""
    if isinstance(loaded, _ArrayState):
        if loaded.dtype is None or loaded.dtype.key != "f4":
            raise CheckpointError(
                f"{source} holds a {loaded.dtype.key if loaded.dtype else 'typeless'} array; "
                "outside a QuantizedWeight8bit the release stores float32 arrays only"
            )
        return (loaded,)
    if isinstance(loaded, _QuantizedState):
        state = loaded.state
        fields = set(state) if isinstance(state, dict) else None
        if fields != {"weight", "scales"} or not all(
            isinstance(state[key], _ArrayState) for key in ("weight", "scales")
        ):
            raise CheckpointError(
                f"{source}: a QuantizedWeight8bit must hold the arrays 'weight' and 'scales'; got "
                f"{sorted(fields) if fields is not None else type(state).__name__}"
            )
        weight, scales = state["weight"], state["scales"]
        if weight.dtype.key != "i1" or scales.dtype.key != "bfloat16":
            raise CheckpointError(
                f"{source}: a QuantizedWeight8bit holds int8 values and bfloat16 scales; got "
                f"{weight.dtype.key} and {scales.dtype.key}"
            )
        return weight, scales
    raise CheckpointError(
        f"{source} holds a {type(loaded).__name__}, not an array or a QuantizedWeight8bit"
    )


def _load(path: str | Path, read_payloads: bool) -> tuple[_ArrayState, ...]:
    path = Path(path)
    try:
        with open(path, "rb") as file:
            loaded = _unpickle(file, str(path), read_payloads=read_payloads)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except EOFError as error:
        raise CheckpointError(f"{path} is truncated ({error})") from None
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        MemoryError,
        IndexError,
        KeyError,
    ) as error:
        raise CheckpointError(
            f"{path} is corrupt or not a released Grok-1 tensor: {error}"
        ) from None
    return _parts(loaded, str(path))


@dataclass(frozen=True)
class TensorHeader:
    """What a released file holds, from its opcodes alone: the shape, and for a
    QuantizedWeight8bit the scales' shape (None for a float32 array)."""

    shape: tuple[int, ...]
    scales_shape: tuple[int, ...] | None

    @classmethod
    def of(cls, value: np.ndarray | QuantizedWeight8bit) -> TensorHeader:
        if isinstance(value, QuantizedWeight8bit):
            return cls(value.shape, tuple(value.scales.shape))
        return cls(tuple(value.shape), None)


def read_header(path: str | Path) -> TensorHeader:
    """The shapes one released file holds, read without its array bytes (a few hundred bytes of a
    1.6 GB file); the file's length must fit them exactly. Same refusals as :func:`read_tensor`."""
    parts = _load(path, read_payloads=False)
    return TensorHeader(parts[0].shape, parts[1].shape if len(parts) == 2 else None)


def read_tensor(path: str | Path) -> np.ndarray | QuantizedWeight8bit:
    """One released file: a float32 numpy array or a :class:`QuantizedWeight8bit`.

    Only the release's globals are admitted (:data:`ALLOWED_GLOBALS`); any other raises
    :class:`UnsafeCheckpointError` naming the file and the global, before it is run. A truncated
    or corrupt file raises :class:`CheckpointError` naming the file.
    """
    parts = _load(path, read_payloads=True)
    if len(parts) == 1:
        return parts[0].numpy()
    weight, scales = parts
    try:
        return QuantizedWeight8bit(
            torch.from_numpy(weight.numpy()), _bfloat16_tensor(scales.numpy())
        )
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None


def checkpoint_dir(path: str | Path) -> Path:
    """The ``ckpt-0`` folder: ``path`` itself if it is named so, else ``path/ckpt-0``."""
    path = Path(path)
    return path if path.name == CHECKPOINT_DIR else path / CHECKPOINT_DIR


def check_files(path: str | Path, config: MinGrokConfig) -> tuple[Path, list[TensorSpec]]:
    """The checkpoint folder and its specs, once every file the config needs is there and no other
    ``tensor*_000`` is; otherwise a :class:`CheckpointError` saying both counts."""
    folder = checkpoint_dir(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; expected the released ckpt-0/")
    specs = tensor_specs(config)
    present = {p.name for p in folder.iterdir() if FILE_PATTERN.fullmatch(p.name)}
    needed = {file_name(i) for i in range(len(specs))}
    if present != needed:
        missing, extra = sorted(needed - present), sorted(present - needed)
        details = []
        if missing:
            details.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            details.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise CheckpointError(
            f"{folder} holds {len(present)} tensor files; a {config.num_layers}-layer config "
            f"needs {len(specs)} (2 + 12 per layer: tensor00000_000 to "
            f"{file_name(len(specs) - 1)}): {'; '.join(details)}"
        )
    return folder, specs


def check_header(header: TensorHeader, spec: TensorSpec, source: str) -> None:
    """Raise a :class:`CheckpointError` unless a file holds what ``spec`` says, naming the
    parameter and both shapes."""
    if spec.scale_groups is None:
        if header.scales_shape is not None:
            raise CheckpointError(
                f"{source} holds a QuantizedWeight8bit for {spec.name}; the release stores it as "
                f"a float32 array {spec.shape}"
            )
        if header.shape != spec.shape:
            raise CheckpointError(
                f"{source} holds {spec.name} as float32 {header.shape}; the config needs float32 "
                f"{spec.shape}"
            )
        return
    if header.scales_shape is None:
        raise CheckpointError(
            f"{source} holds a float array for {spec.name}; the release stores it as a "
            f"QuantizedWeight8bit {spec.shape}"
        )
    if (header.shape, header.scales_shape) != (spec.shape, spec.scales_shape):
        raise CheckpointError(
            f"{source} holds {spec.name} with shape {header.shape} (scales "
            f"{header.scales_shape}); the config needs {spec.shape} (scales {spec.scales_shape})"
        )


def iter_checkpoint(
    path: str | Path, config: MinGrokConfig
) -> Iterator[tuple[str, np.ndarray | QuantizedWeight8bit]]:
    """(Haiku path, value) of each file in order, one file in memory at a time.

    Before the first value is read, the folder must hold exactly the files ``config`` needs, and
    every file's header must have the config's shapes and a length that fits them
    (:func:`read_header`): a wrong config or a truncated download is refused before any array is
    read or allocated.
    """
    folder, specs = check_files(path, config)
    sources = [str(folder / file_name(index)) for index in range(len(specs))]
    for spec, source in zip(specs, sources, strict=True):
        check_header(read_header(source), spec, source)
    for spec, source in zip(specs, sources, strict=True):
        value = read_tensor(source)
        check_header(TensorHeader.of(value), spec, source)  # the file may have changed since
        yield spec.name, value


# ----------------------------------------------------------------------------------------------
# Writing: the quantiser and a pickle writer


def quantize(weight: torch.Tensor | np.ndarray, groups: int) -> QuantizedWeight8bit:
    """Float weight W [..., K, N] → int8 q and bfloat16 scales s [..., G, N], per block of K/G rows:

        s[g, n] = bf16( max_{i in block g} |W[i, n]| / 127 ),   q = clamp(round(W / s), ±127)

    An all-zero block column gets the scale 1 (and stays zero).
    """
    w = torch.as_tensor(weight).detach().float()
    if w.dim() < 2 or w.shape[-2] % groups:
        raise ValueError(
            f"quantize needs a weight [..., K, N] whose K splits into {groups} blocks; got "
            f"shape {tuple(w.shape)}"
        )
    *lead, k, n = w.shape
    blocks = w.reshape(*lead, groups, k // groups, n)
    peak = blocks.abs().amax(dim=-2)  # [..., G, N]
    scales = torch.where(peak > 0, peak / LEVELS, torch.ones_like(peak)).to(torch.bfloat16)
    q = torch.round(blocks / scales.float().unsqueeze(-2)).clamp_(-LEVELS, LEVELS)
    return QuantizedWeight8bit(q.to(torch.int8).reshape(*lead, k, n).contiguous(), scales)


class _PickleWriter:
    """Protocol-4 opcodes for the release's objects, memoised and framed as CPython's pickler does.

    Every string and global is memoised once and fetched again by BINGET; a bytes payload of
    64 KiB or more is written outside any frame; a frame that reached 64 KiB ends before the next
    object starts.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.frame = bytearray()
        self.memo: dict[Any, int] = {}

    def write(self, data: bytes) -> None:
        self.frame += data

    def boundary(self) -> None:
        if len(self.frame) >= _FRAME_TARGET:
            self.commit()

    def commit(self) -> None:
        if len(self.frame) >= _FRAME_MIN:
            self.out.write(b"\x95" + struct.pack("<Q", len(self.frame)))
        self.out.write(self.frame)
        self.frame.clear()

    def memoize(self, key: Any = None) -> None:
        """MEMOIZE the object just written; ``key`` finds it again (None: it is never reused)."""
        self.memo[key if key is not None else object()] = len(self.memo)
        self.write(b"\x94")  # MEMOIZE

    def get(self, key: Any) -> bool:
        """Write BINGET for an object already memoised (True), or nothing (False)."""
        index = self.memo.get(key)
        if index is None:
            return False
        self.write(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))
        return True

    def string(self, text: str) -> None:
        self.boundary()
        if self.get(("str", text)):
            return
        data = text.encode()
        if len(data) < 256:
            self.write(b"\x8c" + bytes([len(data)]) + data)  # SHORT_BINUNICODE
        else:
            self.write(b"X" + struct.pack("<I", len(data)) + data)  # BINUNICODE
        self.memoize(("str", text))

    def global_(self, module: str, name: str) -> None:
        self.boundary()
        if self.get(("global", module, name)):
            return
        self.string(module)
        self.string(name)
        self.write(b"\x93")  # STACK_GLOBAL
        self.memoize(("global", module, name))

    def integer(self, value: int) -> None:
        self.boundary()
        if 0 <= value < 256:
            self.write(b"K" + bytes([value]))  # BININT1
        elif 0 <= value < 65536:
            self.write(b"M" + struct.pack("<H", value))  # BININT2
        elif -(2**31) <= value < 2**31:
            self.write(b"J" + struct.pack("<i", value))  # BININT
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.write(b"\x8a" + bytes([len(data)]) + data)  # LONG1

    def atom(self, value: bool | None) -> None:
        self.boundary()
        self.write({None: b"N", False: b"\x89", True: b"\x88"}[value])

    def tuple_(self, items: tuple) -> None:
        """A new tuple of up to three items, each written by calling it."""
        self.boundary()
        for write_item in items:
            write_item()
        n = len(items)
        if n == 0:
            self.write(b")")  # EMPTY_TUPLE (never memoised)
            return
        if n > 3:
            raise AssertionError("longer tuples are written with MARK")
        self.write(b"\x85\x86\x87"[n - 1 : n])  # TUPLE1/2/3
        self.memoize()

    def marked_tuple(self, items: list) -> None:
        self.boundary()
        self.write(b"(")  # MARK
        for write_item in items:
            write_item()
        self.write(b"t")  # TUPLE
        self.memoize()

    def payload(self, data: bytes | memoryview) -> None:
        self.boundary()
        size = len(data)
        if size < 256:
            header = b"C" + bytes([size])  # SHORT_BINBYTES
        elif size < 2**32:
            header = b"B" + struct.pack("<I", size)  # BINBYTES
        else:
            header = b"\x8e" + struct.pack("<Q", size)  # BINBYTES8
        if size >= _FRAME_TARGET:  # outside any frame, as CPython writes a large payload
            self.commit()
            self.out.write(header)
            self.out.write(data)
        else:
            self.write(header)
            self.write(bytes(data))
        self.memoize()

    def dtype(self, code: str) -> None:
        """numpy.dtype(code, False, True) with its state, as numpy 1 pickles it."""
        self.boundary()
        self.global_("numpy", "dtype")
        if code == "bfloat16":
            code_writer = lambda: self.global_("ml_dtypes", "bfloat16")  # noqa: E731
            order, size, flags = "<", 2, 80  # ml_dtypes' registered dtype: fixed size, its flags
        else:
            code_writer = lambda: self.string(code)  # noqa: E731
            order, size, flags = ("|" if code == "i1" else "<"), -1, 0
        self.tuple_((code_writer, lambda: self.atom(False), lambda: self.atom(True)))
        self.write(b"R")  # REDUCE
        self.memoize()
        state = [
            lambda: self.integer(3),
            lambda: self.string(order),
            lambda: self.atom(None),
            lambda: self.atom(None),
            lambda: self.atom(None),
            lambda: self.integer(size),
            lambda: self.integer(size),
            lambda: self.integer(flags),
        ]
        self.marked_tuple(state)
        self.write(b"b")  # BUILD

    def array(self, array: np.ndarray, code: str) -> None:
        """numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') + (1, shape, dtype, F, data)."""
        self.boundary()
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.tuple_(
            (
                lambda: self.global_("numpy", "ndarray"),
                lambda: self.tuple_((lambda: self.integer(0),)),
                lambda: self._typecode(),
            )
        )
        self.write(b"R")  # REDUCE
        self.memoize()
        shape = [lambda size=size: self.integer(size) for size in array.shape]
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        self.marked_tuple(
            [
                lambda: self.integer(1),
                lambda: self.tuple_(tuple(shape)) if len(shape) <= 3 else self.marked_tuple(shape),
                lambda: self.dtype(code),
                lambda: self.atom(False),
                lambda: self.payload(data),
            ]
        )
        self.write(b"b")  # BUILD

    def _typecode(self) -> None:
        self.boundary()
        if self.get(("typecode",)):
            return
        self.write(b"C\x01b")  # SHORT_BINBYTES b'b', numpy's one shared object
        self.memoize(("typecode",))

    def dump(self, value: np.ndarray | QuantizedWeight8bit) -> None:
        self.out.write(b"\x80\x04")  # PROTO 4
        if isinstance(value, QuantizedWeight8bit):
            self.global_("__main__", "QuantizedWeight8bit")
            self.write(b")\x81")  # EMPTY_TUPLE, NEWOBJ
            self.memoize()
            self.write(b"}")  # EMPTY_DICT
            self.memoize()
            self.write(b"(")  # MARK
            self.string("weight")
            self.array(value.weight.cpu().numpy(), "i1")
            self.string("scales")
            self.array(value.scales.cpu().view(torch.int16).numpy().view(np.uint16), "bfloat16")
            self.write(b"u")  # SETITEMS
            self.write(b"b")  # BUILD
        else:
            self.array(value, "f4")
        self.write(b".")  # STOP
        self.commit()


def encode_tensor(value: np.ndarray | torch.Tensor | QuantizedWeight8bit) -> bytes:
    """The bytes of one released file holding ``value`` (a float32 array or a quantised matrix)."""
    out = io.BytesIO()
    write_tensor(value, out)
    return out.getvalue()


def write_tensor(
    value: np.ndarray | torch.Tensor | QuantizedWeight8bit, out: str | Path | BinaryIO
) -> None:
    """Write one released file: a float32 array, or a QuantizedWeight8bit as xAI pickles it."""
    if not isinstance(value, QuantizedWeight8bit):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = value.numpy() if value.dtype == torch.float32 else value
        if not isinstance(value, np.ndarray) or value.dtype != np.float32:
            raise ValueError(
                f"the release stores a plain tensor as a float32 array; got {_describe(value)}"
            )
    if isinstance(out, (str, Path)):
        with open(out, "wb") as file:
            _PickleWriter(file).dump(value)
    else:
        _PickleWriter(out).dump(value)


def write_checkpoint(
    params: Mapping[str, np.ndarray | torch.Tensor | QuantizedWeight8bit], path: str | Path
) -> Path:
    """Write a Haiku-path → value tree as the release stores it: ``ckpt-0/tensor{i:05d}_000`` in
    ``tree_flatten`` order. ``path`` is the folder to hold ``ckpt-0/`` (or ``ckpt-0`` itself); it
    must not hold tensor files yet. Returns the ``ckpt-0`` folder."""
    folder = checkpoint_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in folder.iterdir() if FILE_PATTERN.fullmatch(p.name))
    if existing:
        raise CheckpointError(
            f"{folder} already holds {len(existing)} tensor files; write into an empty folder"
        )
    for index, name in enumerate(flatten_order(list(params))):
        try:
            write_tensor(params[name], folder / file_name(index))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return folder
