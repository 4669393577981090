"""Checkpoints as safetensors: tensors plus JSON metadata, never a pickle.

A checkpoint file holds the model's parameters under ``model.<name>`` and, for a resumable
training checkpoint, the optimizer moments (``optimizer.<param>.<key>``) and generator states
(``rng.*``). The metadata (strings only, as safetensors requires) carries the config, the tokenizer
name and the package version, so a file says what it is without any code being run.

Every file carries ``tensors_sha256``, a SHA-256 over each tensor's name, dtype, shape and bytes
(:func:`tensor_checksum`), checked on every read: a flipped byte inside a tensor, which safetensors'
own header checks cannot see, is refused instead of loading as NaN weights.

Writes are atomic: the file is written under a temporary name in the same folder and renamed over
the target with ``os.replace``, so a crash never leaves a half-written checkpoint where a good one
was. ``torch.load`` is never used: loading a file cannot execute code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import MinGrokConfig
from .model import MinGrok

FORMAT = "mingrok-checkpoint/1"
MODEL_PREFIX = "model."  # model.<parameter name>
OPTIMIZER_PREFIX = "optimizer."  # optimizer.<parameter name>.<state key>, e.g. .exp_avg
RNG_PREFIX = "rng."  # rng.<generator name>
CHECKSUM_KEY = "tensors_sha256"
RESERVED_KEYS = ("format", "config", "tokenizer", "mingrok_version", CHECKSUM_KEY)


class CheckpointError(ValueError):
    """The file is missing, truncated, not a minGrok checkpoint, or does not fit the model."""


@dataclass
class Checkpoint:
    """Everything read from one file: config, metadata and every tensor (on the CPU)."""

    path: Path
    config: MinGrokConfig
    metadata: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def model_state(self) -> dict[str, torch.Tensor]:
        n = len(MODEL_PREFIX)
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(MODEL_PREFIX)}

    @property
    def training_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.tensors.items() if not k.startswith(MODEL_PREFIX)}


def save_checkpoint(
    path: str | os.PathLike[str],
    model: MinGrok,
    *,
    tokenizer_name: str,
    metadata: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (and optional training state) to ``path`` atomically; return the path.

    ``metadata`` values must be JSON-serialisable; ``extra_tensors`` keys must not start with
    ``model.``.
    """
    from . import __version__

    path = Path(path)
    tensors = {MODEL_PREFIX + k: v.detach() for k, v in model.state_dict().items()}
    for key, value in (extra_tensors or {}).items():
        if key.startswith(MODEL_PREFIX):
            raise ValueError(f"extra tensor name {key!r} must not start with {MODEL_PREFIX!r}")
        tensors[key] = value.detach()
    tensors = {k: v.to("cpu").contiguous() for k, v in tensors.items()}
    header = {
        "format": FORMAT,
        "config": model.config.to_json(),
        "tokenizer": tokenizer_name,
        "mingrok_version": __version__,
        CHECKSUM_KEY: tensor_checksum(tensors),
    }
    for key, value in (metadata or {}).items():
        if key in header:
            raise ValueError(f"metadata key {key!r} is reserved; reserved keys: {sorted(header)}")
        header[key] = json.dumps(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=header)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a checkpoint is ordinary data
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over the tensors in name order: each one's name, dtype, shape, then bytes.

    Names, dtypes and shapes are hashed too, so renaming or reshaping a tensor changes the sum;
    the bytes are hashed as stored (little-endian, C order), so the sum does not depend on how the
    tensors were computed, only on what the file holds.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def training_tensors(
    optimizer_state: dict[str, dict[str, Any]], generator_states: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A training state under its checkpoint names, for ``save_checkpoint(extra_tensors=…)``.

    ``optimizer_state`` maps a parameter name to its optimizer state (``step``, the moments);
    ``generator_states`` maps a generator name to its ``get_state()``.
    """
    tensors = {
        f"{OPTIMIZER_PREFIX}{parameter}.{key}": torch.as_tensor(value)
        for parameter, state in optimizer_state.items()
        for key, value in state.items()
    }
    tensors.update({RNG_PREFIX + name: state for name, state in generator_states.items()})
    return tensors


def split_training_tensors(
    tensors: dict[str, torch.Tensor],
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """The inverse of :func:`training_tensors`: (optimizer state, generator states)."""
    optimizer_state: dict[str, dict[str, torch.Tensor]] = {}
    generator_states: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.startswith(OPTIMIZER_PREFIX):
            parameter, state_key = key[len(OPTIMIZER_PREFIX) :].rsplit(".", 1)
            optimizer_state.setdefault(parameter, {})[state_key] = value
        elif key.startswith(RNG_PREFIX):
            generator_states[key[len(RNG_PREFIX) :]] = value
    return optimizer_state, generator_states


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint file; a clear :class:`CheckpointError` if it is not a readable one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
            names = handle.keys()  # a safe_open handle is not iterable itself
            tensors = {name: handle.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: it is truncated, corrupt or not a "
            f"safetensors file ({error})"
        ) from error
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file but not a minGrok checkpoint: its metadata "
            f"format is {header.get('format')!r}, expected {FORMAT!r}"
        )
    _check_checksum(path, header.get(CHECKSUM_KEY), tensors)
    config = MinGrokConfig.from_json(header["config"])
    metadata: dict[str, Any] = {
        "tokenizer": header.get("tokenizer"),
        "mingrok_version": header.get("mingrok_version"),
    }
    for key, value in header.items():
        if key not in RESERVED_KEYS:
            metadata[key] = json.loads(value)
    return Checkpoint(path, config, metadata, tensors)


def _check_checksum(path: Path, recorded: str | None, tensors: dict[str, torch.Tensor]) -> None:
    if recorded is None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has no {CHECKSUM_KEY!r} in its metadata, so its tensors "
            "cannot be verified; it was written by a minGrok older than 0.1.0 or by other code"
        )
    found = tensor_checksum(tensors)
    if found != recorded:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt: its tensors' SHA-256 is {found[:16]}…, but the "
            f"file records {recorded[:16]}… (the bytes changed after it was written)"
        )


def tokenizer_by_name(name: str):
    """The tokenizer a checkpoint's metadata names (only minGrok's 128-token one so far)."""
    from .tokenizer import MinGrokTokenizer

    tokenizer = MinGrokTokenizer()
    if name != tokenizer.name:
        raise CheckpointError(
            f"checkpoint tokenizer {name!r} is unknown; known tokenizers: {[tokenizer.name]}"
        )
    return tokenizer


def check_config(expected: MinGrokConfig, found: MinGrokConfig, where: str) -> None:
    """Raise a CheckpointError naming the first field where the two configs differ."""
    for config_field in fields(MinGrokConfig):
        name = config_field.name
        mine, theirs = getattr(expected, name), getattr(found, name)
        if mine != theirs:
            raise CheckpointError(
                f"{where} was saved with {name}={theirs!r}, but the model has {name}={mine!r} "
                "(the first differing config field)"
            )


def load_model(
    path: str | os.PathLike[str],
    model: MinGrok | None = None,
    device: torch.device | str | None = None,
) -> MinGrok:
    """The model stored in ``path``, in eval mode: built from its config, or loaded into ``model``.

    Loading into an existing model first checks that its config equals the file's.
    """
    return _model_from(read_checkpoint(path), model, device)


def load_model_and_tokenizer(
    path: str | os.PathLike[str], device: torch.device | str | None = None
) -> tuple[MinGrok, Any]:
    """``(model, tokenizer)`` from one checkpoint file: what ``sample`` and ``eval`` need."""
    checkpoint = read_checkpoint(path)
    return _model_from(checkpoint, None, device), tokenizer_by_name(
        checkpoint.metadata["tokenizer"]
    )


def _model_from(checkpoint: Checkpoint, model: MinGrok | None, device) -> MinGrok:
    if model is None:
        model = MinGrok(checkpoint.config)
    else:
        check_config(model.config, checkpoint.config, f"checkpoint {str(checkpoint.path)!r}")
    load_model_state(model, checkpoint)
    if device is not None:
        model.to(device)
    return model.eval()


def load_model_state(model: MinGrok, checkpoint: Checkpoint) -> None:
    """Copy the checkpoint's parameters into ``model`` (strict: no missing or extra names).

    Weights holding NaN or ±inf (a run that diverged, saved faithfully) are refused: every logit
    of such a model is NaN, which sampling cannot draw from and evaluation would report as a loss.
    """
    for name, tensor in checkpoint.model_state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"checkpoint {str(checkpoint.path)!r} holds NaN or infinite values in {name!r}: "
                "the run that saved it diverged; use an earlier checkpoint"
            )
    result = model.load_state_dict(checkpoint.model_state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} does not fit the model: missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
