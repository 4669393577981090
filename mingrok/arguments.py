"""Argument types shared by the command lines (``python -m mingrok`` and its ``course`` group).

Every value is checked where argparse reads it, so a bad one is refused before the command prints
or loads anything: an ``argparse`` type turns it into one line that names the option, the value and
what is allowed, instead of a traceback from deep inside torch (``torch.set_num_threads(0)`` raises
a ``RuntimeError``) or an error after the prompt is already on the screen. A rule that involves two
options is a command's ``check`` function (:func:`mingrok.__main__.main` runs it before ``run``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

SEED_LIMIT = 2**64 - 1  # torch.Generator.manual_seed's largest seed


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are a single line on stderr, exit code 2.

    argparse prints the whole usage block first (a dozen lines for ``sample``), which buries the
    one line that says what is wrong; ``--help`` shows the usage to whoever wants it. Subcommand
    parsers inherit the class (``add_subparsers`` makes them of the parent's type).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())}\n")


class UsageError(Exception):
    """A rule between options is broken (``sample --weights int8 --no-cache``): a command's
    ``check`` raises it with the one line to print."""


def _refuse(allowed: str, text: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers ≥ ``minimum`` (and ≤ ``maximum``): ``"2"``, not
    ``"2.5"`` or ``"-3"``."""
    allowed = f"a whole number of at least {minimum}"
    if maximum is not None:
        allowed = f"a whole number from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            _refuse(allowed, text)
        if value < minimum or (maximum is not None and value > maximum):
            _refuse(allowed, text)
        return value

    return parse


def real_number(
    minimum: float, maximum: float = math.inf, *, above: bool = False
) -> Callable[[str], float]:
    """An argparse ``type`` for finite numbers ≥ ``minimum`` (> it when ``above``), ≤ ``maximum``.

    ``nan`` and ``inf``, which ``float`` accepts, are refused: no option means anything by them.
    """
    allowed = f"a number {'above' if above else 'of at least'} {minimum:g}"
    if maximum < math.inf:
        allowed += f" and at most {maximum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            _refuse(allowed, text)
        low_ok = value > minimum if above else value >= minimum
        if not (math.isfinite(value) and low_ok and value <= maximum):
            _refuse(allowed, text)
        return value

    return parse


def non_empty_text(text: str) -> str:
    """An argparse ``type`` for text of at least one character (a prompt to continue)."""
    if not text:
        _refuse("at least one character", text)
    return text


def shakespeare_file(text: str) -> str:
    """An argparse ``type`` for ``--data``: an existing file whose bytes are TinyShakespeare's
    (:func:`mingrok.data.find_shakespeare` checks its sha256: a fraction of a second)."""
    from .data import SHAKESPEARE_NUM_BYTES, DataError, find_shakespeare

    allowed = f"a copy of TinyShakespeare (input.txt, {SHAKESPEARE_NUM_BYTES:,} bytes)"
    if not Path(text).is_file():
        _refuse(allowed, text)
    try:
        find_shakespeare(text, download=False)
    except (DataError, OSError):  # other bytes (the sha256 differs), or unreadable
        _refuse(allowed, text)
    return text


def file_or_folder_holding(name: str) -> Callable[[str], str]:
    """An argparse ``type`` for a path to a file, or to a folder that holds a file ``name``."""
    allowed = f"an existing file, or a folder holding {name}"

    def parse(text: str) -> str:
        path = Path(text)
        if not (path.is_file() or (path / name).is_file()):
            _refuse(allowed, text)
        return text

    return parse


def device_name(text: str) -> str:
    """An argparse ``type`` for ``--device``: a name :func:`mingrok.device.resolve_device` accepts
    here (``cuda`` only where CUDA is available), returned as given."""
    from .device import resolve_device  # imports torch, which every command needs anyway

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


positive = whole_number(1)
non_negative = whole_number(0)
seed = whole_number(0, SEED_LIMIT)


def token_ids(text: str) -> list[int]:
    """An argparse ``type`` for a prompt given as token ids: ``"5,6,7"`` → [5, 6, 7]."""
    parts = text.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated token ids (whole numbers >= 0) like 5,6,7, got {text!r}"
        )
    return [int(part) for part in parts]
