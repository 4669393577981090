"""`course grade`: run students' notebooks, then grade them with the master chapter's own checks.

Each submission is copied into a fresh temporary folder and runs there (its working directory),
in its own kernel, cell by cell, under a time limit for all its cells: a cell that raises does not
stop the notebook, and a notebook that fails does not stop the others. Then, in the same kernel,
the grader runs each exercise's check as the MASTER chapter (``chapters/NN_x.ipynb``) calls it,
with ``mingrok`` imported afresh, each check under its own time limit (grading_kernel.py), and
reads the result from a file it named for this run, carrying a secret it made for it. So what a
submission prints, how it edited, moved or deleted its check cells, and what it did to
``mingrok.checks`` change nothing; an exercise whose answer is not defined is "not attempted",
and what did not run because the kernel died is "no result".

It is not a security sandbox: the submission's code runs as you, can reach absolute paths, and
code written to attack the grader inside its own kernel (hooks on the cells that follow, patches
to torch or Python itself) is out of its reach. Run untrusted work in a container.
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .contract import Exercise, exercises
from .execute import (
    CRASHED,
    ERROR,
    KERNEL_NAME,
    OK,
    TIMEOUT,
    Execution,
    ThisInterpretersKernel,
    first_error,
    run_parallel,
)
from .grading_kernel import grading_cell
from .notebooks import ChapterError, resolve_chapters
from .tables import write_tables

PASSED, FAILED, NOT_ATTEMPTED, TIMED_OUT, NO_RESULT = (
    "passed",
    "failed",
    "not attempted",
    "timed out",
    "no result",
)
RESULT_WORDS = {"PASS": PASSED, "FAIL": FAILED, "NOT ATTEMPTED YET": NOT_ATTEMPTED}


class SubmissionError(ValueError):
    """A submission path that does not exist, holds no notebook, or matches no chapter."""


@dataclass(frozen=True)
class Submission:
    path: Path  # absolute
    name: str  # as the table shows it: relative to the folder given, e.g. alice/03_attention.ipynb
    chapter: Path  # the master notebook whose checks grade it

    @property
    def student(self) -> str:
        """The folder the notebook sits in (alice/03_attention.ipynb), else its file name."""
        parts = Path(self.name).parts
        return parts[0] if len(parts) > 1 else Path(self.name).stem


@dataclass(frozen=True)
class Outcome:
    status: str  # passed, failed, not attempted, timed out, no result
    message: str  # the check's message (its hint), or why there is no result


@dataclass(frozen=True)
class Grade:
    submission: Submission
    execution: Execution  # the submission's own cells
    exercises: list[Exercise]  # the master's
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # check id -> outcome

    @property
    def points(self) -> int:
        passed = [e.points for e in self.exercises if self.outcome(e).status == PASSED]
        return sum(passed)

    @property
    def possible(self) -> int:
        return sum(e.points for e in self.exercises)

    def outcome(self, exercise: Exercise) -> Outcome:
        return self.outcomes.get(exercise.check_id, Outcome(NO_RESULT, "the check did not run"))


def find_submissions(
    paths: Sequence[Path], chapters_folder: Path = Path("chapters"), chapter: str | None = None
) -> list[Submission]:
    """The notebooks given, and those in the folders given (recursively), named for the table.

    Each is graded by the chapter ``chapter`` when given, else by the chapter of the same file
    name (``03_attention.ipynb``) in ``chapters_folder``.
    """
    fixed = resolve_chapters([chapter], chapters_folder)[0] if chapter else None
    found: dict[str, Submission] = {}
    for path in paths:
        if not path.exists():
            raise SubmissionError(f"submission {str(path)!r} does not exist")
        if path.is_dir():
            notebooks = [
                p
                for p in sorted(path.rglob("*.ipynb"))
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            names = [p.relative_to(path).as_posix() for p in notebooks]
        elif path.suffix == ".ipynb":
            notebooks, names = [path], [path.name]
        else:
            raise SubmissionError(f"submission {str(path)!r} is not a notebook (*.ipynb)")
        if not notebooks:
            raise SubmissionError(f"{path} holds no notebook (*.ipynb)")
        for notebook, name in zip(notebooks, names, strict=True):
            if name in found and found[name].path != notebook.resolve():
                name = f"{path.name}/{name}"  # two folders given with the same file inside
            master = fixed or _chapter_of(notebook, chapters_folder)
            found[name] = Submission(notebook.resolve(), name, master.resolve())
    return list(found.values())


def _chapter_of(notebook: Path, chapters_folder: Path) -> Path:
    try:
        return resolve_chapters([notebook.stem], chapters_folder)[0]
    except ChapterError as error:
        raise SubmissionError(
            f"{notebook}: no chapter is named {notebook.stem!r} ({error}); name submissions "
            "after their chapter (03_attention.ipynb) or pass --chapter"
        ) from None


def grade(
    submissions: Sequence[Submission],
    out: Path,
    jobs: int = 1,
    timeout_s: float = 600,
    cell_timeout_s: float = 120,
) -> list[Grade]:
    """Run and grade every submission; executed copies go to OUT/executed/<name>.

    ``timeout_s`` bounds all of a submission's own cells together, ``cell_timeout_s`` each one of
    them and each check: a cell or a check that runs past it is interrupted, and the next runs.
    """
    tasks = [
        (s, (out / "executed" / s.name).resolve(), timeout_s, cell_timeout_s) for s in submissions
    ]
    return run_parallel(_grade_one, tasks, jobs, _describe)


def _grade_one(task: tuple[Submission, Path, float, float]) -> Grade:
    submission, executed_copy, timeout_s, cell_timeout_s = task
    master = exercises(nbformat.read(submission.chapter, as_version=4))
    try:
        nb = nbformat.read(submission.path, as_version=4)
    except Exception as error:  # not a notebook at all
        return Grade(submission, Execution(CRASHED, f"{type(error).__name__}: {error}", 0), master)
    with (
        tempfile.TemporaryDirectory(prefix="mingrok-grade-") as folder,
        tempfile.TemporaryDirectory(prefix="mingrok-results-") as results,
    ):
        execution, outcomes = _run_and_check(
            nb, Path(folder), Path(results), master, timeout_s, cell_timeout_s
        )
    executed_copy.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed_copy)
    return Grade(submission, execution, master, outcomes)


def _run_and_check(
    nb: nbformat.NotebookNode,
    cwd: Path,
    results: Path,
    master: list[Exercise],
    timeout_s: float,
    cell_timeout_s: float,
) -> tuple[Execution, dict[str, Outcome]]:
    """Execute ``nb``'s cells in place (errors kept), then the master's checks; never raises."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=ThisInterpretersKernel,
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=True,
        interrupt_on_timeout=True,  # a cell out of time is interrupted, the kernel lives on
        error_on_timeout={"ename": "TimeoutError", "evalue": "the grader's time limit"},
        record_timing=False,
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )
    started = time.monotonic()
    status, message, dead = OK, "", False
    outcomes: dict[str, Outcome] = {}
    try:
        with client.setup_kernel():
            status, message, dead = _run_cells(client, nb, started + timeout_s, cell_timeout_s)
            if status == OK and first_error(nb):
                status, message = ERROR, first_error(nb)
            for exercise in master:
                if dead:
                    break
                outcome, dead = _run_check(client, nb, exercise, results, cell_timeout_s)
                outcomes[exercise.check_id] = outcome
    except DeadKernelError:  # while starting or stopping the kernel
        status, message, dead = CRASHED, "the kernel died", True
    except Exception as error:  # a kernel that cannot start, ...
        status, message = CRASHED, f"{type(error).__name__}: {error}".strip()
    for exercise in master:
        reason = "the kernel died before this check ran" if dead else "the check did not run"
        outcomes.setdefault(exercise.check_id, Outcome(NO_RESULT, reason))
    return Execution(status, message, time.monotonic() - started), outcomes


def _run_cells(
    client, nb: nbformat.NotebookNode, deadline: float, cell_timeout_s: float
) -> tuple[str, str, bool]:
    """The submission's own cells, each within its limit and what is left of the notebook's
    time: (status, message, whether the kernel died)."""
    from nbclient.exceptions import DeadKernelError

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return TIMEOUT, f"out of time before cell {index}; the later cells did not run", False
        client.timeout = math.ceil(min(left, cell_timeout_s))
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            return CRASHED, f"the kernel died in cell {index}", True
    if time.monotonic() >= deadline:
        return TIMEOUT, "the notebook ran out of time", False
    return OK, "", False


def _run_check(
    client, nb: nbformat.NotebookNode, exercise: Exercise, results: Path, timeout_s: float
) -> tuple[Outcome, bool]:
    """One master check in the submission's kernel: (its outcome, whether the kernel died)."""
    from nbclient.exceptions import DeadKernelError

    if exercise.check is None:
        return Outcome(NO_RESULT, "the master chapter calls no check for it"), False
    secret = secrets.token_hex(16)
    result_path = results / f"{secrets.token_hex(8)}.json"
    cell = nbformat.v4.new_code_cell(
        grading_cell(exercise.check.function, exercise.check.arguments, result_path, secret)
    )
    nb.cells.append(cell)
    client.timeout = math.ceil(timeout_s)
    started = time.monotonic()
    try:
        client.execute_cell(cell, len(nb.cells) - 1)
    except DeadKernelError:
        return Outcome(NO_RESULT, "the kernel died while the check ran"), True
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    if result.get("secret") != secret or result.get("check_id") != exercise.check_id:
        if time.monotonic() - started >= timeout_s:
            return Outcome(TIMED_OUT, f"the check did not finish within {timeout_s:g} s"), False
        return Outcome(NO_RESULT, "the check gave no result"), False
    return Outcome(RESULT_WORDS[result["status"]], result["message"]), False


def _describe(task: tuple[Submission, Path, float, float], result: Grade) -> str:
    execution = result.execution
    error = f": {execution.error}" if execution.error else ""
    return (
        f"{execution.status:<7} {result.submission.name} ({result.points}/{result.possible} "
        f"points, {execution.wall_s:.1f} s){error}"
    )


def write_grades(grades: Sequence[Grade], out: Path) -> str:
    """OUT/grades, OUT/students and OUT/chapters (.md and .csv), and OUT/feedback/<name>.md.

    Returns the Markdown of the three tables.
    """
    check_ids = sorted({e.check_id for g in grades for e in g.exercises}, key=_check_order)
    rows = []
    for result in grades:
        outcomes = {e.check_id: result.outcome(e).status for e in result.exercises}
        rows.append(
            {
                "submission": result.submission.name,
                "chapter": result.submission.chapter.stem,
                **outcomes,
                "points": f"{result.points}/{result.possible}",
                "status": result.execution.status,
                "error": result.execution.error,
            }
        )
        _write_feedback(result, out / "feedback" / Path(result.submission.name).with_suffix(".md"))
    columns = ["submission", "chapter", *check_ids, "points", "status", "error"]
    markdown = write_tables(rows, columns, out / "grades")
    markdown += "\n" + _students_table(grades, out) + "\n" + _chapters_table(grades, out)
    return markdown


def _students_table(grades: Sequence[Grade], out: Path) -> str:
    chapters = sorted({g.submission.chapter.stem for g in grades})
    rows = {}
    for result in grades:
        row = rows.setdefault(result.submission.student, {"student": result.submission.student})
        row[result.submission.chapter.stem] = f"{result.points}/{result.possible}"
        points, possible = row.get("_total", (0, 0))
        row["_total"] = (points + result.points, possible + result.possible)
    for row in rows.values():
        row["total"] = "{}/{}".format(*row.pop("_total"))
    return write_tables(list(rows.values()), ["student", *chapters, "total"], out / "students")


def _chapters_table(grades: Sequence[Grade], out: Path) -> str:
    rows = []
    for chapter in sorted({g.submission.chapter.stem for g in grades}):
        graded = [g for g in grades if g.submission.chapter.stem == chapter]
        rows.append(
            {
                "chapter": chapter,
                "submissions": len(graded),
                "points possible": graded[0].possible,
                "mean points": round(sum(g.points for g in graded) / len(graded), 2),
                "full marks": sum(g.points == g.possible for g in graded),
            }
        )
    columns = ["chapter", "submissions", "points possible", "mean points", "full marks"]
    return write_tables(rows, columns, out / "chapters")


def _write_feedback(result: Grade, path: Path) -> None:
    """What passed, each failing check's hint, and the cells that raised."""
    lines = [
        f"# {result.submission.name}: {result.points}/{result.possible} points",
        "",
        f"Graded with the checks of `{result.submission.chapter.name}`.",
        "",
    ]
    for exercise in result.exercises:
        outcome = result.outcome(exercise)
        points = f"{exercise.points} point{'s' if exercise.points != 1 else ''}"
        lines.append(f"- **{exercise.title}** ({points}): {outcome.status} — {outcome.message}")
    if result.execution.error:
        lines += ["", f"Your notebook: {result.execution.status}, {result.execution.error}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _check_order(check_id: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in check_id.split(".")]
