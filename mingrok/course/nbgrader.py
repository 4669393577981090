"""`course nbgrader`: the chapters as an nbgrader course, one assignment per chapter.

nbgrader (https://nbgrader.readthedocs.io) reads a course folder holding ``nbgrader_config.py``
and ``source/<assignment>/<notebook>.ipynb``, whose cells carry ``metadata.nbgrader`` (schema 3):

- each exercise's stub becomes an autograded answer cell (``solution``) holding the master's own
  solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, so that ``generate_solution``
  gives the chapter's solution back and ``generate_assignment`` the stub (the master's stub is
  kept above the markers, as comments, for the student to start from, with the import of the
  check that the solution calls);
- each exercise's check becomes an autograded test cell (``grade``, worth the exercise's points)
  that imports the check afresh, so a student's own ``check_soft_cap`` is not the one called,
  and raises unless it passed;
- the solution blocks go (their code is in the answer cells now), and every other cell is locked.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import nbformat

from .contract import Exercise, exercises
from .grading_kernel import fresh_import
from .notebooks import check_output_folder

SCHEMA_VERSION = 3
# Each chapter runs in about 90 s on 2 CPU cores (CONTRIBUTING.md); one cell may need all of it on
# a slower hub machine, so nbgrader's default of 30 s per cell would fail the training chapters.
CELL_TIMEOUT_S = 300
CODE_STUB = "raise NotImplementedError  # your code here"
SOLUTION_TITLE = "# @title Solution"

CONFIG = '''\
"""nbgrader configuration written by `python -m mingrok course nbgrader` (see its docs)."""

c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = {course_id!r}
# A chapter runs in about 90 s on 2 CPU cores; any one cell may take that long on a slower machine.
c.Execute.timeout = {timeout}
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
'''


def write_course(chapters: Sequence[Path], out: Path, course_id: str = "mingrok") -> list[Path]:
    """``out``/nbgrader_config.py and ``out``/source/<chapter>/<chapter>.ipynb; their paths."""
    check_output_folder(out, [path.parent for path in chapters], must_be_new=False)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "nbgrader_config.py"
    config.write_text(
        CONFIG.format(course_id=course_id, timeout=CELL_TIMEOUT_S, stub=CODE_STUB), encoding="utf-8"
    )
    written = [config]
    for path in chapters:
        source = nbgrader_notebook(nbformat.read(path, as_version=4))
        nbformat.validate(source)
        target = out / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source, target)
        written.append(target)
    return written


def nbgrader_notebook(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The master chapter with nbgrader's metadata: answer, test and locked cells."""
    nb = copy.deepcopy(master)
    found = exercises(nb)
    answers = {ex.stubs[0]: ex for ex in found if ex.stubs}
    tests = {ex.check.cell_index: ex for ex in found if ex.check}
    dropped = {index for ex in found for index in (*ex.solution_cells, *ex.stubs[1:])}
    cells = []
    for index, cell in enumerate(nb.cells):
        if index in dropped:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if index in answers:
            exercise = answers[index]
            cell.source = _answer_source(nb, exercise)
            cell.metadata["nbgrader"] = _metadata(f"answer-{exercise.check_id}", solution=True)
        elif index in tests:
            exercise = tests[index]
            cell.source = _test_source(exercise)
            cell.metadata["nbgrader"] = _metadata(
                f"check-{exercise.check_id}", grade=True, locked=True, points=exercise.points
            )
        else:
            cell.metadata["nbgrader"] = _metadata(f"cell-{index}", locked=True)
        cells.append(cell)
    nb.cells = cells
    return nb


def _metadata(grade_id: str, solution=False, grade=False, locked=False, points=None) -> dict:
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "grade_id": grade_id.replace(".", "-"),  # nbgrader ids: letters, digits, - and _
        "solution": solution,
        "grade": grade,
        "locked": locked,
    }
    if grade:
        metadata["points"] = points
    return metadata


def _answer_source(nb: nbformat.NotebookNode, exercise: Exercise) -> str:
    """The stub, commented, then the master's solution between nbgrader's markers."""
    stub_lines = nb.cells[exercise.stubs[0]].source.split("\n")
    stub = "\n".join(f"# {line}".rstrip() for line in stub_lines)
    solution = "\n\n".join(
        nb.cells[index].source.removeprefix(SOLUTION_TITLE).strip("\n")
        for index in exercise.solution_code
    )
    check = f"from mingrok.checks import {exercise.check.function}\n" if exercise.check else ""
    return (
        f"# Exercise {exercise.title}: replace the line below with your code. The stub:\n"
        f"{stub}\n{check}### BEGIN SOLUTION\n{solution}\n### END SOLUTION"
    )


def _test_source(exercise: Exercise) -> str:
    """Import the check afresh (a student's own check_*, or one they patched into mingrok.checks,
    is not it) and raise unless it passed."""
    call = exercise.check
    arguments = ", ".join(call.arguments)
    return fresh_import(call.function) + f"\n{call.function}.evaluate({arguments}).assert_passed()"
