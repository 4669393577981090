"""Shared test helpers: the shared fixtures folder and configs that run in milliseconds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
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


def torchrun(world_size: int, *command: str, timeout: float = 120, **popen) -> subprocess.Popen:
    """Start ``torchrun --standalone --nproc-per-node world_size COMMAND`` in the repository
    root (gloo processes on this machine), its output captured as text."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.Popen(
        [*launcher, f"--nproc-per-node={world_size}", *command],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finished(process: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    """Wait for a :func:`torchrun` launch; its (stdout, stderr), or a failure showing stderr."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out, err


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
