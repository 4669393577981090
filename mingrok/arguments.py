"""Argument types shared by the command lines (``python -m mingrok`` and its ``course`` group).

An ``argparse`` type turns a bad value into argparse's own one-line usage error, which names the
option and the value, instead of a traceback from deep inside torch (``torch.set_num_threads(0)``
raises a ``RuntimeError``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers ≥ ``minimum``: ``"2"``, not ``"2.5"`` or ``"-3"``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number of at least {minimum}, got {text!r}"
            )
        return value

    return parse


positive = whole_number(1)
non_negative = whole_number(0)


def token_ids(text: str) -> list[int]:
    """An argparse ``type`` for a prompt given as token ids: ``"5,6,7"`` → [5, 6, 7]."""
    parts = text.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated token ids (whole numbers >= 0) like 5,6,7, got {text!r}"
        )
    return [int(part) for part in parts]
