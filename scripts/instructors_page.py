"""The sample outputs on the instructors' page, made by running the commands the page shows.

Every example runs `python -m mingrok course ...` in a scratch folder holding a copy of the
chapters (so nothing is written into the repository but the outputs), and its output goes to
book/generated/instructors/<name>.txt, which book/for_instructors.md includes: the page shows
what the commands print today. Examples without timings are `fast`: tests/test_instructors_page.py
runs them again and compares.

Usage (from the repository root):
    python scripts/instructors_page.py            # run every example, write the outputs
    python scripts/instructors_page.py --check    # exit 1 when a fast example prints otherwise
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mingrok.course.contract import exercises
from mingrok.course.student import student_copy

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
OUTPUT = ROOT / "book" / "generated" / "instructors"
PROMPT = "$ .venv/bin/python -m mingrok "
GRID = """\
# runs/soft-cap-grid.yaml
chapters:
  03_attention:
    grid:
      SOFT_CAP: [10.0, 30.0]
      NUM_KEYS: [16, 64]
"""
# Chapter 3's student copy as four students hand it in: exercise id -> their code.
WRONG_KV = "def kv_head_for_query(n, num_q_heads, num_kv_heads):\n    return n % num_kv_heads"
CLAMP = "def cap_logits(logits, cap):\n    return logits.clamp(-cap, cap)"
QUERY_MASK = (
    "def build_mask(input_mask):\n"
    "    causal = torch.ones(input_mask.shape[1], input_mask.shape[1], dtype=torch.bool).tril()\n"
    "    return causal & input_mask[:, None, :] & input_mask[:, :, None]"
)
TYPO = "def kv_head_for_query(n, num_q_heads, num_kv_heads)\n    return n // 6"
SOLVED = "solved"  # the chapter's own solution
STUDENTS = {
    "alice": {"3.1": SOLVED, "3.2": SOLVED, "3.3": SOLVED},
    "bob": {"3.1": SOLVED, "3.2": WRONG_KV},
    "carol": {},
    "dave": {"3.1": CLAMP, "3.2": TYPO, "3.3": QUERY_MASK},
}


@dataclass(frozen=True)
class Example:
    name: str  # its output file: book/generated/instructors/<name>.txt
    arguments: str  # after `python -m mingrok `
    fast: bool  # no timings in its output: the test runs it again


EXAMPLES = (
    Example("run", "course run 3 -p SOFT_CAP 20 --out runs/soft-cap", fast=False),
    Example("run-unknown-name", "course run 3 -p SOFT_CAPP 20", fast=True),
    Example("run-bad-value", "course run 3 4 -p NUM_KEYS many", fast=True),
    Example("run-grid", "course run -f runs/soft-cap-grid.yaml --jobs 2 --out runs/grid", False),
    Example("student", "course student --out runs/student", fast=True),
    Example("grade", "course grade runs/submissions/ --jobs 2 --out runs/grades", fast=False),
    Example("grade-missing", "course grade runs/submision/", fast=True),
    Example("nbgrader", "course nbgrader --out runs/nbgrader-course 3 5", fast=True),
)


def prepare(folder: Path) -> None:
    """The scratch folder: the chapters, the grid file and four submissions of chapter 3."""
    shutil.copytree(CHAPTERS, folder / "chapters")
    (folder / "runs").mkdir()
    (folder / "runs" / "soft-cap-grid.yaml").write_text(GRID, encoding="utf-8")
    master = nbformat.read(CHAPTERS / "03_attention.ipynb", as_version=4)
    for student, answers in STUDENTS.items():
        nb = student_copy(master)
        for exercise, copied in zip(exercises(master), exercises(nb), strict=True):
            answer = answers.get(exercise.check_id)
            if answer == SOLVED:  # it calls the check, which the student's check cell imports
                answer = f"from mingrok.checks import {exercise.check.function}\n\n" + "\n\n".join(
                    master.cells[i].source for i in exercise.solution_code
                )
            if answer is not None:
                nb.cells[copied.stubs[0]].source = answer
        path = folder / "runs" / "submissions" / student / "03_attention.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)


def run(example: Example, folder: Path) -> str:
    """``$ command`` and what it printed (stdout and stderr, in the order printed)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mingrok", *shlex.split(example.arguments)],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return f"{PROMPT}{example.arguments}\n{result.stdout.rstrip()}\n"


def outputs(examples: tuple[Example, ...]) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="mingrok-page-") as scratch:
        prepare(Path(scratch))
        return {example.name: run(example, Path(scratch)) for example in examples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare the fast examples only")
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            name
            for name, text in outputs(tuple(e for e in EXAMPLES if e.fast)).items()
            if (OUTPUT / f"{name}.txt").read_text(encoding="utf-8") != text
        ]
        for name in stale:
            print(f"{OUTPUT / name}.txt is out of date: run {Path(__file__).name}")
        return 1 if stale else 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "soft-cap-grid.yaml").write_text(GRID, encoding="utf-8")
    for name, text in outputs(EXAMPLES).items():
        (OUTPUT / f"{name}.txt").write_text(text, encoding="utf-8")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
