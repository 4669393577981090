"""Finding chapters by the short names instructors type, and where the tools may write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_CHAPTERS = Path("chapters")


class ChapterError(ValueError):
    """A chapter name that matches no notebook, or a folder without chapters."""


def available_chapters(folder: Path) -> list[Path]:
    """The chapters in ``folder``: ``NN_slug.ipynb`` files, in order."""
    return sorted(path for path in folder.glob("*.ipynb") if path.name[:2].isdigit())


def resolve_chapters(names: Sequence[str], folder: Path = DEFAULT_CHAPTERS) -> list[Path]:
    """Notebook paths for ``names`` (all chapters when empty), or a ChapterError naming the choices.

    A name is a notebook path, or a chapter of ``folder`` given by number (``3``, ``03``), by
    stem (``03_attention``) or by file name (``03_attention.ipynb``).
    """
    chapters = available_chapters(folder) if folder.is_dir() else []
    if not names:
        if not chapters:
            raise ChapterError(
                f"no chapters found in {str(folder)!r}: run from the repository root, "
                "or pass --chapters DIR or the notebooks themselves"
            )
        return chapters
    paths, unknown = [], []
    for name in names:
        path = Path(name)
        matches = (
            [path] if path.suffix == ".ipynb" and path.is_file() else _matching(name, chapters)
        )
        if len(matches) == 1:
            paths.append(matches[0])
        else:
            unknown.append(name)
    if unknown:
        choices = ", ".join(p.stem for p in chapters) or f"none (no chapters in {str(folder)!r})"
        raise ChapterError(
            f"unknown chapter(s) {', '.join(map(repr, unknown))}; chapters: {choices}"
        )
    return list(dict.fromkeys(paths))


def _matching(name: str, chapters: list[Path]) -> list[Path]:
    stem = name.removesuffix(".ipynb")
    if stem.isdigit():
        return [p for p in chapters if int(p.name[:2]) == int(stem)]
    return [p for p in chapters if p.stem == stem]


def check_output_folder(out: Path, sources: Iterable[Path], must_be_new: bool = True) -> None:
    """Refuse an output folder inside a folder the notebooks come from (they stay untouched) or,
    with ``must_be_new``, one that already holds files (its tables would mix two commands)."""
    resolved = out.resolve()
    for folder in {Path(source).resolve() for source in sources}:
        if resolved == folder or folder in resolved.parents:
            raise ChapterError(f"--out {out} is inside {folder}: write the results elsewhere")
    if must_be_new and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ChapterError(f"{out} exists and is not empty: choose a new --out folder")
