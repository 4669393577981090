"""The instructors' page shows what the course commands print (scripts/instructors_page.py)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from mingrok.course.record import read_records
from tests.test_notebooks import load_script

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "for_instructors.md"
GENERATED = ROOT / "book" / "generated" / "instructors"
INCLUDE = re.compile(r"^```\{literalinclude\} (?P<path>\S+)$", re.M)
page_script = load_script("instructors_page")


def header(name: str) -> list[str]:
    """The columns of the first Markdown table in an example's output."""
    text = (GENERATED / f"{name}.txt").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("| "))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_page_includes_every_generated_output_and_nothing_else() -> None:
    included = {PAGE.parent / m["path"] for m in INCLUDE.finditer(PAGE.read_text("utf-8"))}
    assert included == set(GENERATED.iterdir())
    assert {f"{e.name}.txt" for e in page_script.EXAMPLES} <= {p.name for p in included}


def test_the_fast_examples_print_what_the_page_shows() -> None:
    assert page_script.main(["--check"]) == 0, "run scripts/instructors_page.py"


def test_each_output_starts_with_its_command() -> None:
    for example in page_script.EXAMPLES:
        text = (GENERATED / f"{example.name}.txt").read_text(encoding="utf-8")
        assert text.startswith(page_script.PROMPT + example.arguments + "\n")


def test_the_slow_outputs_have_todays_columns() -> None:
    chapter = nbformat.read(ROOT / "chapters" / "03_attention.ipynb", as_version=4)
    metrics = list(read_records(chapter))
    summary = ["chapter", "run", "parameters", "status", "wall time (s)", *metrics, "error"]
    assert header("run") == summary and header("run-grid") == summary
    checks = ["3.1", "3.2", "3.3"]
    assert header("grade") == ["submission", "chapter", *checks, "points", "status", "error"]
