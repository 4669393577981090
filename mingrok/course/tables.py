"""The summary tables of `course run` and `course grade`: the same rows as Markdown and as CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    """A GitHub-style table; a missing value is an empty cell."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (_text(row.get(column, ""), short=True).replace("|", r"\|") for column in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[dict[str, object]], columns: Sequence[str], stem: Path) -> str:
    """Write ``stem``.md and ``stem``.csv; returns the Markdown."""
    markdown = markdown_table(rows, columns)
    stem.with_suffix(".md").write_text(markdown, encoding="utf-8")
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({column: _text(row.get(column, "")) for column in columns} for row in rows)
    return markdown


def _text(value: object, short: bool = False) -> str:
    """The CSV keeps every digit of a float; the Markdown table, six significant ones."""
    if isinstance(value, float) and short:
        text = f"{value:.6g}"
        return text if any(c in text for c in ".ein") else text + ".0"  # 3.0, not 3
    return "" if value is None else str(value).replace("\n", " ")
