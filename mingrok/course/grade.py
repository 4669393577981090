"""`course grade`: run students' notebooks and collect what every exercise check printed.

Each submission is copied into a fresh temporary folder and runs there (its working directory),
in its own kernel, under a time limit for the whole notebook; a cell that raises does not stop
the notebook (later exercises still count) and a notebook that fails does not stop the others.
This keeps a submission's relative paths away from the instructor's files; it is not a security
sandbox (code can still reach absolute paths), so run untrusted work in a container.

Results come from the one line each check prints (``mingrok.checks``); when a check runs more
than once in a notebook, the last line wins. A check that the notebook calls (in a cell tagged
``check``) but that printed nothing, because the notebook timed out or the call itself failed,
is reported as "no result".
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .execute import Execution, execute_notebook, run_parallel
from .notebooks import printed_lines, tags
from .tables import write_tables

RESULT_WORDS = {"PASS": "passed", "FAIL": "failed", "NOT ATTEMPTED YET": "not attempted"}
NO_RESULT = "no result"


class SubmissionError(ValueError):
    """A submission path that does not exist or holds no notebook."""


@dataclass(frozen=True)
class Submission:
    path: Path  # absolute
    name: str  # as the table shows it: relative to the folder given, e.g. alice/03_attention.ipynb


@dataclass(frozen=True)
class Grade:
    submission: Submission
    execution: Execution
    checks: dict[str, str]  # check id -> passed / failed / not attempted / no result


def find_submissions(paths: Sequence[Path]) -> list[Submission]:
    """The notebooks given, and those in the folders given (recursively), named for the table."""
    found: dict[str, Submission] = {}
    for path in paths:
        if path.is_dir():
            notebooks = [
                p
                for p in sorted(path.rglob("*.ipynb"))
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            names = [p.relative_to(path).as_posix() for p in notebooks]
        elif path.is_file() and path.suffix == ".ipynb":
            notebooks, names = [path], [path.name]
        else:
            raise SubmissionError(f"{path} is neither a notebook nor a folder")
        if not notebooks:
            raise SubmissionError(f"{path} holds no notebook (*.ipynb)")
        for notebook, name in zip(notebooks, names, strict=True):
            if name in found and found[name].path != notebook.resolve():
                name = f"{path.name}/{name}"  # two folders given with the same file inside
            found[name] = Submission(notebook.resolve(), name)
    return list(found.values())


def expected_checks(nb: nbformat.NotebookNode) -> list[str]:
    """The ids of the mingrok.checks functions that the cells tagged `check` call, in order."""
    from mingrok import checks

    ids = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "check" not in tags(cell):
            continue
        try:
            tree = ast.parse(_without_magics(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                check_id = getattr(getattr(checks, name, None), "check_id", None)
                if name.startswith("check_") and check_id:
                    ids.append(check_id)
    return list(dict.fromkeys(ids))


def check_results(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Check id -> PASS / FAIL / NOT ATTEMPTED YET, the last printed line of each check."""
    from mingrok.checks import parse_line

    results = {}
    for line in printed_lines(nb):
        parsed = parse_line(line)
        if parsed:
            check_id, status = parsed
            results.pop(check_id, None)  # keep the order of the last results
            results[check_id] = status
    return results


def grade(
    submissions: Sequence[Submission], out: Path, jobs: int = 1, timeout_s: float = 600
) -> list[Grade]:
    """Run every submission; executed copies go to OUT/executed/<name>."""
    tasks = [(s, (out / "executed" / s.name).resolve(), timeout_s) for s in submissions]
    return run_parallel(_grade_one, tasks, jobs, _describe)


def _grade_one(task: tuple[Submission, Path, float]) -> Grade:
    submission, executed_copy, timeout_s = task
    with tempfile.TemporaryDirectory(prefix="mingrok-grade-") as folder:
        notebook = Path(folder) / submission.path.name
        shutil.copyfile(submission.path, notebook)
        output = Path(folder) / ".executed.ipynb"
        execution = execute_notebook(
            notebook, output, cwd=Path(folder), timeout_s=timeout_s, allow_errors=True
        )
        printed = check_results(nbformat.read(output, as_version=4)) if output.is_file() else {}
        try:
            expected = expected_checks(nbformat.read(submission.path, as_version=4))
        except Exception:  # not a notebook: execute_notebook has reported it already
            expected = []
        if output.is_file():
            executed_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(output, executed_copy)
    checks = {check_id: NO_RESULT for check_id in expected}
    checks.update({check_id: RESULT_WORDS[status] for check_id, status in printed.items()})
    return Grade(submission, execution, checks)


def _describe(task: tuple[Submission, Path, float], result: Grade) -> str:
    execution = result.execution
    error = f": {execution.error}" if execution.error else ""
    passed = sum(word == "passed" for word in result.checks.values())
    return (
        f"{execution.status:<7} {result.submission.name} ({passed}/{len(result.checks)} checks "
        f"passed, {execution.wall_s:.1f} s){error}"
    )


def write_grades(grades: Sequence[Grade], out: Path) -> str:
    """OUT/grades.md and OUT/grades.csv: one row per submission, one column per check."""
    check_ids = sorted({c for g in grades for c in g.checks}, key=_check_order)
    rows = []
    for result in grades:
        passed = sum(word == "passed" for word in result.checks.values())
        rows.append(
            {
                "submission": result.submission.name,
                **result.checks,
                "passed": f"{passed}/{len(result.checks)}",
                "status": result.execution.status,
                "error": result.execution.error,
            }
        )
    return write_tables(
        rows, ["submission", *check_ids, "passed", "status", "error"], out / "grades"
    )


def _check_order(check_id: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in check_id.split(".")]


def _without_magics(source: str) -> str:
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )
