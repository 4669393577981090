"""`course nbgrader` makes a course that the real nbgrader grades: chapter 3, three students.

nbgrader lives in its own venv (requirements-instructor.txt; `make instructor-test` makes it and
runs this file, so there it is never skipped). Its notebooks run in a kernel of the book's venv,
which has torch and mingrok, as a hub's kernel would. The round trip: `course nbgrader`,
`nbgrader generate_assignment`, three submissions in submitted/<student>/, `nbgrader autograde`,
then the scores read from nbgrader's sqlite gradebook through its own `Gradebook` API.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mingrok.course.cli import add_course_parser
from mingrok.course.contract import exercises

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "chapters" / "03_attention.ipynb"
ASSIGNMENT = CHAPTER.stem
VENV = Path(os.environ.get("MINGROK_NBGRADER_VENV", REPO / "_build" / "instructor-venv")).resolve()
if not (VENV / "bin" / "nbgrader").is_file():
    if os.environ.get("MINGROK_NBGRADER_VENV"):
        raise RuntimeError(f"no nbgrader in {VENV}: run `make instructor-venv`")
    pytest.skip("nbgrader's venv is missing: `make instructor-test`", allow_module_level=True)

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
READ_GRADEBOOK = """
import json
from nbgrader.api import Gradebook

with Gradebook("sqlite:///gradebook.db") as gradebook:
    scores = {}
    for student in gradebook.students:
        submission = gradebook.find_submission_notebook("03_attention", "03_attention", student.id)
        scores[student.id] = [submission.score, submission.max_score]
print(json.dumps(scores))
"""


def nbgrader(course: Path, *argv: str) -> str:
    """Run nbgrader in ``course`` with the kernel of the book's venv; its output."""
    kernels = course.parent / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    (kernels / "kernel.json").write_text(json.dumps({**spec, "language": "python"}))
    env = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",  # nbgrader runs alembic
        "JUPYTER_PATH": str(course.parent / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(course.parent / "jupyter-config"),  # none of the user's
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [str(VENV / "bin" / argv[0]), *argv[1:]],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> None:
    """Each answer cell of the student version gets the source version's solution."""
    solutions = {
        c.metadata.nbgrader.grade_id: c.source for c in source.cells if "nbgrader" in c.metadata
    }
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = solutions[cell.metadata.nbgrader.grade_id].split("\n")
            cell.source = "\n".join(line for line in lines if line not in (BEGIN, END))


def cheats(release: nbformat.NotebookNode) -> None:
    """Unsolved, but the first answer redefines the check and patches mingrok.checks."""
    answer = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = (
        "import mingrok.checks\n\n\ndef check_soft_cap(f):\n"
        '    print("[mingrok check 3.1] PASS — looks right")\n\n\n'
        "mingrok.checks.check_soft_cap = check_soft_cap\n"
        'print("[mingrok check 3.1] PASS — looks right")'
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nbgrader course of chapter 3, generated, submitted by three students, autograded."""
    course = tmp_path_factory.mktemp("nbgrader") / "course"
    parser = argparse.ArgumentParser()
    add_course_parser(parser.add_subparsers())
    args = parser.parse_args(["course", "nbgrader", "--out", str(course), str(CHAPTER)])
    assert args.run(args) == 0
    nbgrader(course, "nbgrader", "generate_assignment", ASSIGNMENT)
    release = course / "release" / ASSIGNMENT / CHAPTER.name
    source = nbformat.read(course / "source" / ASSIGNMENT / CHAPTER.name, as_version=4)
    for student, change in (("solver", solved), ("idle", None), ("cheater", cheats)):
        nb = nbformat.read(release, as_version=4)
        if change is solved:
            solved(nb, source)
        elif change is not None:
            change(nb)
        path = course / "submitted" / student / ASSIGNMENT / CHAPTER.name
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    nbgrader(course, "nbgrader", "autograde", ASSIGNMENT)
    return course


def test_the_course_has_nbgrader_metadata_and_the_masters_solution() -> None:
    from mingrok.course.nbgrader import nbgrader_notebook

    master = nbformat.read(CHAPTER, as_version=4)
    nb = nbgrader_notebook(master)
    metadata = [c.metadata["nbgrader"] for c in nb.cells]
    assert all(m["schema_version"] == 3 for m in metadata)
    answers = [c for c in nb.cells if c.metadata.nbgrader["solution"]]
    tests = [c for c in nb.cells if c.metadata.nbgrader["grade"]]
    assert [m["grade_id"] for m in metadata if m["grade"]] == [
        "check-3-1",
        "check-3-2",
        "check-3-3",
    ]
    assert [m["points"] for m in metadata if m["grade"]] == [1, 1, 1]
    assert all(m["locked"] for m in metadata if not m["solution"])
    for cell, exercise in zip(answers, exercises(master), strict=True):
        solution = master.cells[exercise.solution_code[0]].source.removeprefix("# @title Solution")
        inside = cell.source.split(BEGIN + "\n")[1].split("\n" + END)[0]
        assert inside == solution.strip("\n")
    assert all(".evaluate(" in c.source and ".assert_passed()" in c.source for c in tests)
    assert not any("solution-start" in c.source for c in nb.cells)


def test_nbgrader_scores_the_three_submissions(course: Path) -> None:
    scores = json.loads(nbgrader(course, "python", "-c", READ_GRADEBOOK))
    assert scores == {"solver": [3.0, 3.0], "idle": [0.0, 3.0], "cheater": [0.0, 3.0]}


def test_the_course_config_names_the_course_and_a_cell_timeout(course: Path) -> None:
    config = (course / "nbgrader_config.py").read_text()
    assert "c.CourseDirectory.course_id = 'mingrok'" in config
    assert "c.Execute.timeout = 300" in config
    student = nbformat.read(course / "release" / ASSIGNMENT / CHAPTER.name, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert BEGIN not in text and "return cap * torch.tanh" not in text
    assert "#     raise NotImplementedError  # your code here" in text  # the stub, to start from
