"""Models that ship inside the package, so a reader can skip training (works after a bare
``pip install``, in Colab). ``shakespeare``: see TRAINING.md beside this file for how it was made.
"""

from __future__ import annotations

from importlib import resources

import torch

from ..checkpoint import load_model_and_tokenizer
from ..device import resolve_device

NAMES = ("shakespeare",)


def path(name: str = "shakespeare"):
    """The shipped checkpoint ``name`` inside the installed package (a Traversable; a Path for a
    regular or editable install)."""
    if name not in NAMES:
        raise ValueError(f"pretrained model name={name!r} is unknown; choose one of {NAMES}")
    return resources.files(__name__) / f"{name}.safetensors"


def load(name: str = "shakespeare", device: torch.device | str = "cpu"):
    """``(model, tokenizer)`` for a shipped model, in eval mode on ``device``."""
    with resources.as_file(path(name)) as file:
        return load_model_and_tokenizer(file, device=resolve_device(device))
