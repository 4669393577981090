"""Shared test helpers: the shared fixtures folder and configs that run in milliseconds."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from mingrok import MinGrokConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def tiny_config(**changes) -> MinGrokConfig:
    """A Grok-1-shaped model small enough for unit tests (H·d_h ≠ D on purpose)."""
    base = dict(
        vocab_size=61,
        d_model=24,
        num_layers=2,
        num_q_heads=6,
        num_kv_heads=2,
        head_dim=8,
        widening_factor=2.0,
        num_experts=4,
        num_experts_per_token=2,
        max_seq_len=32,
    )
    base.update(changes)
    return MinGrokConfig(**base)


def shakespeare_path() -> Path:
    """The repo's input.txt (placed by `make data`), else the shared copy it is made from."""
    for path in (REPO / "input.txt", REPO.parent / "shared" / "input.txt"):
        if path.is_file():
            return path
    pytest.fail("TinyShakespeare not found: run `make data` (python -m mingrok.data --place ...)")


# Set by the GitHub workflows only: xAI's reference fixtures are not redistributed in this
# repository, so there the tests that need them say they are skipped. Elsewhere a missing one fails.
FIXTURES_OPTIONAL_ENV = "MINGROK_FIXTURES_OPTIONAL"


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        message = f"shared fixture {path} is missing; CI runs with ../shared beside the repo"
        if os.environ.get(FIXTURES_OPTIONAL_ENV) == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path


def load_script(name: str) -> types.ModuleType:
    """Import ``scripts/<name>.py`` (the scripts folder is not a package) under its own name."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def overwrite_inside_tensor(path, tensor_name: str, new_bytes: bytes) -> None:
    """Overwrite bytes in the middle of one tensor's data, leaving the header as it was."""
    raw = bytearray(path.read_bytes())
    header_length = int.from_bytes(raw[:8], "little")
    start, end = json.loads(raw[8 : 8 + header_length])[tensor_name]["data_offsets"]
    at = 8 + header_length + start + (end - start) // 2 // 4 * 4  # a float32's first byte
    raw[at : at + len(new_bytes)] = new_bytes
    path.write_bytes(bytes(raw))
