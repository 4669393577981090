"""Which device to run on: ``auto`` = CUDA when present, else the CPU.

Apple's MPS is used only when asked for by name: some ops fall back to the CPU or differ
numerically there, and the course's stored outputs are produced on a CPU.
"""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` → a usable torch.device."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(
            f"device={name!r} is not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} was asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} was asked for, but Apple MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={name!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")
    return device
