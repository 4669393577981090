"""Shared test helpers: the shared fixtures folder and configs that run in milliseconds."""

from __future__ import annotations

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


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"shared fixture {path} is missing; CI runs with ../shared beside the repo")
    return path
