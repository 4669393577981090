"""`course student`: copies of the chapters without their solutions, for students to work in.

A solution is found by its markup (``contract.is_solution``), never by its text: code cells
tagged ``solution`` are dropped, and so are the markdown cells that open a
``solution-start``/``solution-end`` pair or a prose ``{solution}`` (the book's gated solution
block, CONTRIBUTING.md), so the whole block disappears rather than leaving an empty dropdown.
The stub and check cells of each exercise lose their outputs; every other cell, output and piece
of metadata is kept as it is. Run in order, a student copy prints NOT ATTEMPTED YET at each
check until the student writes the code.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import nbformat

from .contract import CHECK, EXERCISE, has_tag, is_solution
from .notebooks import check_output_folder


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without solutions, and with the exercise and check cells' outputs cleared."""
    student = copy.deepcopy(nb)
    student.cells = [cell for cell in student.cells if not is_solution(cell)]
    for cell in student.cells:
        if cell.cell_type == "code" and (has_tag(cell, EXERCISE) or has_tag(cell, CHECK)):
            cell.outputs = []
            cell.execution_count = None
    return student


def write_student_copies(chapters: Sequence[Path], out: Path) -> list[Path]:
    """A student copy of each chapter in ``out`` (same file name), never in a chapters folder."""
    check_output_folder(out, [path.parent for path in chapters], must_be_new=False)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters:
        student = student_copy(nbformat.read(path, as_version=4))
        nbformat.validate(student)
        nbformat.write(student, out / path.name)
        written.append(out / path.name)
    return written
