"""`course grade` cannot be fooled: chapter 3's student copy, solved honestly and cheated on.

Each cheat below is one that a new user tried on the old grader, which trusted the lines a
submission printed and gave every one of them 3/3. Every submission is graded in one run (two at
a time), and each test reads its row: a cheat gets no pass for the exercise it fakes, and the
other exercises and the other rows are graded as if it were not there.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import nbformat
import pytest

from mingrok.course.cli import add_course_parser
from mingrok.course.contract import CHECK, exercises, has_tag
from mingrok.course.student import student_copy

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "chapters" / "03_attention.ipynb"
code = nbformat.v4.new_code_cell
PASS_LINES = "".join(
    f'print("[mingrok check {n}] PASS — looks right")\n' for n in ("3.1", "3.2", "3.3")
)
CLAMP = "def cap_logits(logits, cap):\n    return logits.clamp(-cap, cap)"
FAKE_PASS = 'lambda *args: print("[mingrok check 3.1] PASS — looks right")'


def master() -> nbformat.NotebookNode:
    return nbformat.read(CHAPTER, as_version=4)


def solutions() -> dict[str, str]:
    """Check id -> the master's own solution code for that exercise, as a stub's replacement
    (it imports the check its last lines call, which the student's check cell imports later)."""
    nb = master()
    return {
        e.check_id: f"from mingrok.checks import {e.check.function}\n\n"
        + "\n\n".join(nb.cells[i].source for i in e.solution_code)
        for e in exercises(nb)
    }


def student(answers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Chapter 3's student copy with the stubs of ``answers`` (check id -> code) replaced."""
    nb = student_copy(master())
    for exercise in exercises(nb):
        if exercise.check_id in (answers or {}):
            nb.cells[exercise.stubs[0]].source = answers[exercise.check_id]
    return nb


def stub_index(nb: nbformat.NotebookNode, check_id: str) -> int:
    return next(e.stubs[0] for e in exercises(nb) if e.check_id == check_id)


def honest() -> nbformat.NotebookNode:
    return student(solutions())


def untouched() -> nbformat.NotebookNode:
    return student()


def prints_the_pass_lines() -> nbformat.NotebookNode:
    nb = student()
    nb.cells.append(code(PASS_LINES))
    return nb


def edits_the_check_cells() -> nbformat.NotebookNode:
    nb = student()
    for cell in nb.cells:
        if has_tag(cell, CHECK):
            cell.source = PASS_LINES
    return nb


def deletes_cells() -> nbformat.NotebookNode:
    """3.1's check cell deleted (stub left), 3.2 solved with its check deleted, 3.3's stub gone."""
    nb = student({"3.2": solutions()["3.2"]})
    doomed = {stub_index(nb, "3.3")}
    doomed |= {c.cell_index for e in exercises(nb) for c in e.checks if e.check_id != "3.3"}
    nb.cells = [cell for index, cell in enumerate(nb.cells) if index not in doomed]
    return nb


def redefines_the_check_names() -> nbformat.NotebookNode:
    nb = student({"3.1": CLAMP})
    nb.cells.insert(
        stub_index(nb, "3.1") + 1,
        code(f"check_soft_cap = {FAKE_PASS}\n\n\ndef check_attention_mask(f):\n    print('PASS')"),
    )
    return nb


def monkeypatches_mingrok() -> nbformat.NotebookNode:
    """Every check replaced in mingrok.checks and its modules, and the reference soft-cap too."""
    patch = (
        "import mingrok.attention\nimport mingrok.checks\nimport mingrok.checks.attention\n\n"
        f"for name in dir(mingrok.checks):\n    if name.startswith('check_'):\n"
        f"        setattr(mingrok.checks, name, {FAKE_PASS})\n"
        f"        setattr(mingrok.checks.attention, name, {FAKE_PASS})\n"
        "mingrok.attention.soft_cap = lambda logits, cap: logits.clamp(-cap, cap)"
    )
    nb = student({"3.1": CLAMP})
    nb.cells.insert(stub_index(nb, "3.1"), code(patch))
    return nb


def rewrites_stdout() -> nbformat.NotebookNode:
    wrapper = (
        "import sys\n\n\nclass Rewrite:\n    def __init__(self, stream):\n"
        "        self.stream = stream\n\n    def write(self, text):\n"
        "        return self.stream.write(text.replace('FAIL', 'PASS'))\n\n"
        "    def __getattr__(self, name):\n        return getattr(self.stream, name)\n\n\n"
        "sys.stdout = Rewrite(sys.stdout)"
    )
    nb = student({"3.1": CLAMP})
    nb.cells.insert(stub_index(nb, "3.1"), code(wrapper))
    return nb


def exits_in_a_cell() -> nbformat.NotebookNode:
    """A wrong 3.1, `sys.exit()` right after it, then an honest 3.2 that must still count."""
    nb = student({"3.1": CLAMP, "3.2": solutions()["3.2"]})
    nb.cells.insert(stub_index(nb, "3.1") + 1, code("import sys\n\nsys.exit()"))
    return nb


def loops_forever() -> nbformat.NotebookNode:
    """3.1's answer never returns: its own check cell and the grader's check are each stopped
    at the cell time limit; 3.2 is honest."""
    endless = "def cap_logits(logits, cap):\n    while True:\n        pass"
    return student({"3.1": endless, "3.2": solutions()["3.2"]})


def kills_its_kernel() -> nbformat.NotebookNode:
    nb = student(solutions())
    nb.cells.insert(stub_index(nb, "3.3") + 1, code("import os\n\nos._exit(1)"))
    return nb


SUBMISSIONS = {
    submission.__name__: submission
    for submission in (
        honest,
        untouched,
        prints_the_pass_lines,
        edits_the_check_cells,
        deletes_cells,
        redefines_the_check_names,
        monkeypatches_mingrok,
        rewrites_stdout,
        exits_in_a_cell,
        loops_forever,
        kills_its_kernel,
    )
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, str]], Path]:
    """Grade every submission once: {student: row of grades.csv}, and the output folder."""
    root = tmp_path_factory.mktemp("grading")
    for name, make in SUBMISSIONS.items():
        path = root / "submissions" / name / CHAPTER.name
        path.parent.mkdir(parents=True)
        nbformat.write(make(), path)
    out = root / "grades"
    parser = argparse.ArgumentParser()
    add_course_parser(parser.add_subparsers())
    argv = ["course", "grade", str(root / "submissions"), "--chapters", str(CHAPTER.parent)]
    argv += ["--jobs", "2", "--timeout", "300", "--cell-timeout", "30", "--out", str(out)]
    args = parser.parse_args(argv)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        assert args.run(args) == 0
    with (out / "grades.csv").open(newline="", encoding="utf-8") as file:
        rows = {row["submission"].split("/")[0]: row for row in csv.DictReader(file)}
    return rows, out


def grades_of(graded, name: str) -> tuple[str, str, str, str]:
    row = graded[0][name]
    return row["3.1"], row["3.2"], row["3.3"], row["points"]


def test_every_submission_has_its_row(graded) -> None:
    assert set(graded[0]) == set(SUBMISSIONS)


def test_the_honest_solution_passes_every_check(graded) -> None:
    assert grades_of(graded, "honest") == ("passed", "passed", "passed", "3/3")
    assert graded[0]["honest"]["status"] == "ok"


def test_the_untouched_student_copy_is_not_attempted(graded) -> None:
    assert grades_of(graded, "untouched") == ("not attempted",) * 3 + ("0/3",)


@pytest.mark.parametrize("cheat", ["prints_the_pass_lines", "edits_the_check_cells"])
def test_printed_pass_lines_count_for_nothing(graded, cheat: str) -> None:
    assert grades_of(graded, cheat) == ("not attempted",) * 3 + ("0/3",)


def test_deleted_check_cells_do_not_matter_and_a_deleted_stub_is_not_attempted(graded) -> None:
    assert grades_of(graded, "deletes_cells") == ("not attempted", "passed", "not attempted", "1/3")


@pytest.mark.parametrize("cheat", ["redefines_the_check_names", "monkeypatches_mingrok"])
def test_replaced_checks_are_not_the_ones_that_run(graded, cheat: str) -> None:
    assert grades_of(graded, cheat) == ("failed", "not attempted", "not attempted", "0/3")


def test_rewriting_stdout_changes_nothing(graded) -> None:
    assert grades_of(graded, "rewrites_stdout") == (
        "failed",
        "not attempted",
        "not attempted",
        "0/3",
    )


def test_sys_exit_stops_one_cell_and_later_cells_still_count(graded) -> None:
    assert grades_of(graded, "exits_in_a_cell") == ("failed", "passed", "not attempted", "1/3")
    row = graded[0]["exits_in_a_cell"]
    assert row["status"] == "error" and "SystemExit" in row["error"]


def test_an_endless_answer_times_out_and_the_next_check_still_runs(graded) -> None:
    assert grades_of(graded, "loops_forever") == ("timed out", "passed", "not attempted", "1/3")


def test_a_dead_kernel_leaves_no_result(graded) -> None:
    assert grades_of(graded, "kills_its_kernel") == ("no result",) * 3 + ("0/3",)
    assert graded[0]["kills_its_kernel"]["status"] == "crashed"


def test_feedback_names_what_passed_and_each_hint(graded) -> None:
    out = graded[1]
    honest_feedback = (out / "feedback" / "honest" / "03_attention.md").read_text()
    assert honest_feedback.startswith("# honest/03_attention.ipynb: 3/3 points")
    assert "**3.1 Grok-1's soft-cap** (1 point): passed — your soft-cap matches" in honest_feedback
    cheat = (out / "feedback" / "rewrites_stdout" / "03_attention.md").read_text()
    assert "(1 point): failed — hint: compute cap · tanh(logits / cap)" in cheat
    students = (out / "students.md").read_text()
    assert "| honest | 3/3 | 3/3 |" in students
    assert "| 03_attention | 11 | 3 | 0.55 | 1 |" in (out / "chapters.md").read_text()
