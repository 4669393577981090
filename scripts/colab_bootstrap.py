"""The first code cell of every chapter: it makes `import mingrok` work wherever the notebook runs.

- Colab opens the notebook file alone. When `google.colab` is loaded and mingrok is missing, the
  cell installs the package from the repository at the book's release tag (scripts/release.py:
  the same tag the book's Colab button opens the notebook at), with pip's default dependency
  resolution: the package's requirements are loose (torch>=2.4, numpy, safetensors, tqdm)
  and Colab already satisfies them, so pip installs mingrok and keeps Colab's CUDA torch.
  (`--no-deps` would also keep torch, but would break the day a requirement is missing from
  Colab.) Never `pip install -r requirements.txt` there: its exact pins would replace Colab's torch.
- Binder and a local checkout have the package installed (binder/postBuild, `-e .` in
  requirements.txt), so the cell does nothing. In a clone without the install, it puts the
  repository root (the first folder above the notebook holding pyproject.toml) on sys.path.
- A notebook downloaded alone and run in some other Jupyter stops at this cell with the one
  `%pip install` line that works without a clone (Run All stops at the first error).

The cell prints nothing on the happy path, so that strict nbval compares stable outputs.

Usage (from the repository root):
    python scripts/colab_bootstrap.py                   # print the cell's source
    python scripts/colab_bootstrap.py --check           # exit 1 unless every chapter starts with it
    python scripts/colab_bootstrap.py --write [NB ...]  # insert it, or bring it up to date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from release import package_spec  # the release facts have one owner

PACKAGE_SPEC = package_spec()

CELL_TAGS = ["bootstrap", "hide-input"]

CELL_SOURCE = f'''\
# Setup: make `import mingrok` work in Colab, on Binder and in a clone. Silent when all is well.
import importlib.util
import pathlib
import subprocess
import sys

if importlib.util.find_spec("mingrok") is None:
    # The release this notebook belongs to (the book's Colab button opens it at the same tag).
    package = "{PACKAGE_SPEC}"
    if "google.colab" in sys.modules:
        # Colab's torch already meets the package's loose requirements, so pip keeps it.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)
    else:
        here = pathlib.Path.cwd().resolve()
        roots = [p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()]
        if not roots:  # this notebook alone, outside a clone: the one line that fixes it
            raise ModuleNotFoundError(
                f"mingrok is not installed. Run  %pip install '{{package}}'  in a cell, "
                "restart the kernel, then run this notebook again."
            )
        sys.path.insert(0, str(roots[0]))'''


def bootstrap_cell() -> nbformat.NotebookNode:
    """A fresh code cell holding the bootstrap, tagged so the book folds it away."""
    cell = nbformat.v4.new_code_cell(CELL_SOURCE)
    cell.metadata["tags"] = list(CELL_TAGS)
    return cell


def first_code_cell_index(nb: nbformat.NotebookNode) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)


def has_bootstrap(nb: nbformat.NotebookNode) -> bool:
    """True when the notebook's first code cell is exactly the current bootstrap cell."""
    index = first_code_cell_index(nb)
    return index is not None and nb.cells[index].source == CELL_SOURCE


def write_bootstrap(path: Path) -> bool:
    """Make the first code cell of `path` the bootstrap (updating an older one). True if changed."""
    nb = nbformat.read(path, as_version=4)
    if has_bootstrap(nb):
        return False
    index = first_code_cell_index(nb)
    current = nb.cells[index] if index is not None else None
    if current is not None and "bootstrap" in current.metadata.get("tags", []):
        current.source = CELL_SOURCE
        current.outputs = []
        current.execution_count = None
    else:
        # Before the first code cell, after the title and introduction.
        nb.cells.insert(len(nb.cells) if index is None else index, bootstrap_cell())
    nbformat.write(nb, path)
    return True


def chapter_paths(paths: list[str]) -> list[Path]:
    root = Path(__file__).resolve().parent.parent
    return [Path(p) for p in paths] or sorted((root / "chapters").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify the chapters' first code cell")
    mode.add_argument("--write", action="store_true", help="insert or update the bootstrap cell")
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    args = parser.parse_args(argv)

    if not (args.check or args.write):
        print(CELL_SOURCE)
        return 0
    stale = []
    for path in chapter_paths(args.notebooks):
        if args.write:
            if write_bootstrap(path):
                print(f"{path}: bootstrap cell written (re-run `make notebooks` for its output)")
        elif not has_bootstrap(nbformat.read(path, as_version=4)):
            stale.append(path)
    for path in stale:
        print(
            f"{path}: first code cell is not the bootstrap cell; run {Path(__file__).name} --write"
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
