"""TinyShakespeare: find or fetch it (sha256-checked), split it, and sample training batches.

The text is not committed to the repository. Readers get it once from its canonical address
(karpathy/char-rnn) into a user cache; a local copy can be named instead, so tests and CI never need
the network. Every copy is checked against one sha256, so every chapter trains on the same bytes.

Command line (used by ``make data``): ``python -m mingrok.data --place input.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import torch

from .config import is_whole_number

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_NUM_BYTES = 1_115_394
SHAKESPEARE_FILENAME = "input.txt"
DATA_ENV_VAR = "MINGROK_DATA"  # path to a local copy; checked before any search or download
DOWNLOAD_TIMEOUT_S = 30.0

# The folder above the package: the repository root in a source checkout (where `make data` puts
# input.txt); in an installed package it is site-packages, where no input.txt is found.
CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


class DataError(RuntimeError):
    """TinyShakespeare is missing, unreachable, or a copy does not match the expected sha256."""


def cache_path() -> Path:
    """Where a download is kept: ``$XDG_CACHE_HOME/mingrok/input.txt`` (~/.cache by default)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "mingrok" / SHAKESPEARE_FILENAME


def candidate_paths() -> list[Path]:
    """Local places searched, in order, when no path is given and ``$MINGROK_DATA`` is unset.

    The current directory and its parents up to the project root (the first one holding
    ``pyproject.toml`` or ``.git``), so a notebook run from ``chapters/`` finds the repo's copy;
    then the checkout root; then the user cache.
    """
    here = Path.cwd().resolve()
    folders: list[Path] = []
    for folder in (here, *here.parents):
        folders.append(folder)
        if _is_project_root(folder):
            break
    else:  # not inside a project: a stray input.txt higher up is probably something else
        folders = [here]
    folders.append(CHECKOUT_ROOT)
    paths = [folder / SHAKESPEARE_FILENAME for folder in folders] + [cache_path()]
    return list(dict.fromkeys(paths))  # drop repeats, keep the order


def find_shakespeare(path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """The path of a verified copy: ``path``, else ``$MINGROK_DATA``, else a local copy, else fetch.

    A copy that is named (``path``, the environment variable) must exist; any copy found is checked
    against the sha256 and a mismatch raises :class:`DataError` rather than being used or replaced.
    """
    if path is not None:
        return _verified(Path(path), source="the path argument")
    env_path = os.environ.get(DATA_ENV_VAR)
    if env_path:
        return _verified(Path(env_path), source=f"${DATA_ENV_VAR}")
    for candidate in candidate_paths():
        if candidate.is_file():
            return _verified(candidate, source="a local copy")
    if not download:
        raise DataError(_how_to_provide("TinyShakespeare was not found and download=False."))
    return download_shakespeare(cache_path())


def load_shakespeare(path: str | os.PathLike[str] | None = None) -> str:
    """The full TinyShakespeare text (1,115,394 characters), located as :func:`find_shakespeare`."""
    return find_shakespeare(path).read_text(encoding="utf-8")


def download_shakespeare(
    destination: str | os.PathLike[str],
    url: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Fetch the text once, check its sha256, and write it atomically (no half-written file)."""
    url = url or SHAKESPEARE_URL
    destination = Path(destination)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (OSError, ValueError) as error:  # URLError, timeouts and bad URLs
        raise DataError(
            _how_to_provide(f"Downloading TinyShakespeare from {url} failed: {error}.")
        ) from error
    _check_bytes(data, where=f"the download from {url}")
    _write_atomically(destination, data)
    return destination


def place_shakespeare(
    destination: str | os.PathLike[str], shared_copy: str | os.PathLike[str] | None = None
) -> str:
    """Put a verified copy at ``destination``; return what was done. Safe to run again.

    The source is ``shared_copy`` (default ``../shared/input.txt`` beside the checkout) when it
    exists, else whatever :func:`find_shakespeare` locates or downloads. An existing destination
    that fails the check is reported, never overwritten.
    """
    destination = Path(destination)
    if destination.exists():
        _verified(destination, source="the destination")
        return f"{destination}: already in place (sha256 ok)"
    shared = Path(shared_copy or CHECKOUT_ROOT.parent / "shared" / SHAKESPEARE_FILENAME)
    source = _verified(shared, source="the shared copy") if shared.is_file() else find_shakespeare()
    _write_atomically(destination, source.read_bytes())
    _verified(destination, source="the placed copy")
    return f"{destination}: copied from {source} (sha256 ok)"


def split_text(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Split by characters at ``int(train_fraction · len(text))``: (train, validation).

    Splitting the text rather than the token ids gives every tokenizer the same training and
    validation text, so their losses can be compared.
    For TinyShakespeare the cut is at character 1,003,854 (1,003,854 / 111,540 characters).
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    cut = int(train_fraction * len(text))
    return text[:cut], text[cut:]


def random_batches(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows: (inputs, targets), both int64 [B, T], targets shifted by one.

    Window starts are uniform in ``[0, len(tokens) - seq_len)``, drawn only from ``generator`` so
    a seed fixes the batches whatever else uses the global RNG.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 1:
        raise ValueError(f"tokens must be a 1-D tensor of ids, got {_describe(tokens)}")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must hold integer ids, got dtype {tokens.dtype}")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if not is_whole_number(value):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if seq_len > len(tokens) - 1:
        raise ValueError(
            f"seq_len={seq_len} is too long for {len(tokens)} tokens: a window needs seq_len + 1 "
            f"tokens (the targets are shifted by one), so seq_len must be <= {len(tokens) - 1}"
        )
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {_describe(generator)}")

    starts = torch.randint(0, len(tokens) - seq_len, (batch_size,), generator=generator)
    positions = (starts[:, None] + torch.arange(seq_len)).to(tokens.device)  # [B, T]
    return tokens[positions].long(), tokens[positions + 1].long()


def main(argv: list[str] | None = None) -> int:
    """``python -m mingrok.data --place input.txt``: the set-up step behind ``make data``."""
    parser = argparse.ArgumentParser(
        prog="python -m mingrok.data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Put a sha256-checked copy of TinyShakespeare where the course expects it.\n\n"
            "The source, first found:\n"
            "  1. ../shared/input.txt beside the checkout\n"
            f"  2. ${DATA_ENV_VAR} (a path to a local copy)\n"
            "  3. input.txt in the current directory or its parents up to the project root,\n"
            "     then in the checkout root\n"
            f"  4. the user cache, {cache_path()}\n"
            f"  5. a download from\n     {SHAKESPEARE_URL}\n\n"
            f"Every copy must have sha256 {SHAKESPEARE_SHA256}.\n"
            "An existing destination is checked, never overwritten: running it again is harmless."
        ),
    )
    parser.add_argument(
        "--place",
        metavar="PATH",
        required=True,
        help="where to put the file, e.g. input.txt at the repository root",
    )
    args = parser.parse_args(argv)
    try:
        print(place_shakespeare(args.place))
    except DataError as error:
        parser.exit(1, f"error: {error}\n")
    return 0


def _verified(path: Path, source: str) -> Path:
    if not path.is_file():
        raise DataError(_how_to_provide(f"{source} names {path}, which is not a file."))
    _check_bytes(path.read_bytes(), where=str(path))
    return path


def _check_bytes(data: bytes, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise DataError(
            f"{where} is not TinyShakespeare: sha256 {digest} ({len(data):,} bytes), expected "
            f"{SHAKESPEARE_SHA256} ({SHAKESPEARE_NUM_BYTES:,} bytes). Delete or replace that file "
            f"(a fresh copy: {SHAKESPEARE_URL})."
        )


def _write_atomically(destination: Path, data: bytes) -> None:
    """Write a temporary file beside ``destination``, then rename: no reader sees half a file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=destination.parent, prefix=f".{destination.name}.", delete=False
    ) as handle:
        handle.write(data)
    try:
        os.chmod(handle.name, 0o644)  # temporary files are created private (0600)
        os.replace(handle.name, destination)
    except OSError:
        os.unlink(handle.name)
        raise


def _how_to_provide(problem: str) -> str:
    return (
        f"{problem}\nTo provide TinyShakespeare yourself, download {SHAKESPEARE_URL} "
        f"(sha256 {SHAKESPEARE_SHA256}, {SHAKESPEARE_NUM_BYTES:,} bytes) and either\n"
        f"  - pass its path: --data /path/to/input.txt on the command line (python -m mingrok),\n"
        f"    load_shakespeare(path='/path/to/input.txt') in Python,\n"
        f"  - set the environment variable {DATA_ENV_VAR}=/path/to/input.txt, or\n"
        f"  - save it as {cache_path()} (or as input.txt in the repository root)."
    )


def _is_project_root(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() or (folder / ".git").exists()


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


if __name__ == "__main__":
    raise SystemExit(main())
