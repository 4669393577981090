"""A chapter's papermill parameters, read from its `parameters` cell without running it.

The cell holds only `NAME = literal  # what it controls` lines (CONTRIBUTING.md), so `ast` gives
each name, its default and its type, and the tokenizer gives the comment. Everything that needs to
know what a chapter accepts reads it here: the instructors' table (scripts/chapter_parameters.py)
and `python -m mingrok course run`, which refuses an unknown name or a value of the wrong type
before anything runs.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .contract import parameters_cell

TITLE = re.compile(r"^#\s+(\d+)\.\s+(.+?)\s*$", re.MULTILINE)
TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")


class ParameterError(ValueError):
    """A parameter value that a chapter would not accept: an unknown name or a wrong type."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: str  # the literal exactly as written in the notebook
    meaning: str  # the comment on the same line, or on the line just above

    @property
    def value(self) -> object:
        """The default as a Python value."""
        return ast.literal_eval(self.default)

    @property
    def type_name(self) -> str:
        return type(self.value).__name__

    def describe(self) -> str:
        """`NAME (type, default literal)`, as error messages list what a chapter accepts."""
        return f"{self.name} ({self.type_name}, default {self.default})"


def read_parameters(source: str) -> list[Parameter]:
    """The `NAME = literal` assignments of a parameters cell, with their comments."""
    comments: dict[int, str] = {}
    lines_with_code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER):
            lines_with_code.add(token.start[0])
    parameters = []
    for statement in ast.parse(source).body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
            continue
        target = statement.targets[0]
        if not isinstance(target, ast.Name):
            continue
        # The comment on the statement's own lines (ruff may wrap a long one into parentheses),
        # else a comment alone on the line above.
        lines = range(statement.lineno, statement.end_lineno + 1)
        own = [comments[n] for n in lines if n in comments]
        above = statement.lineno - 1
        meaning = own[0] if own else comments.get(above, "") if above not in lines_with_code else ""
        default = ast.get_source_segment(source, statement.value) or ast.unparse(statement.value)
        parameters.append(Parameter(target.id, default, meaning))
    return parameters


def notebook_parameters(nb: nbformat.NotebookNode) -> list[Parameter]:
    cell = parameters_cell(nb)
    return read_parameters(cell.source) if cell is not None else []


def chapter_title(nb: nbformat.NotebookNode, path: Path) -> str:
    """`N. Title` from the first markdown cell, else the file name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = TITLE.search(cell.source)
            return f"{match.group(1)}. {match.group(2)}" if match else path.stem
    return path.stem


def markdown_table(chapters: list[Path], header: str = "") -> str:
    """One row per parameter of every chapter: the table on the instructors' page."""
    if not chapters:
        return header + "\n*No chapter has been published yet: this table fills in as they land.*\n"
    rows = ["| Chapter | Parameter | Default | What it controls |", "|---|---|---|---|"]
    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        title = f"{chapter_title(nb, path)} (`{path.name}`)"
        parameters = notebook_parameters(nb)
        if not parameters:
            rows.append(f"| {title} | (none) | | |")
            continue
        for parameter in parameters:
            default = parameter.default.replace("|", r"\|")
            meaning = parameter.meaning.replace("|", r"\|")
            rows.append(f"| {title} | `{parameter.name}` | `{default}` | {meaning} |")
            title = ""  # name the chapter on its first row only
    return header + "\n" + "\n".join(rows) + "\n"


def coerce(parameter: Parameter, value: object, chapter: str) -> object:
    """`value` converted to the type of the parameter's default, or a ParameterError.

    Text (from `-p NAME VALUE`, or a YAML value PyYAML left as a string, such as `1e-3`) is read
    as that type; other values must already have it, except that an int is a valid float.
    """
    default = parameter.value
    expected = type(default)
    if default is None:  # no type to check against: take the literal as written
        return _literal(value) if isinstance(value, str) else value
    if isinstance(value, str) and expected is not str:
        converted = _from_text(value, expected)
        if converted is not None:
            return converted
    elif expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    elif type(value) is expected:
        return value
    raise ParameterError(
        f"{chapter}: {parameter.name} = {value!r} is not a valid {expected.__name__} "
        f"(the default is {parameter.default})"
    )


def _from_text(text: str, expected: type) -> object | None:
    """`text` read as `expected`, or None when it is not one."""
    word = text.strip()
    if expected is bool:
        if word.lower() in TRUE_WORDS:
            return True
        return False if word.lower() in FALSE_WORDS else None
    try:
        if expected is int:
            return int(word)
        if expected is float:
            return float(word)
    except ValueError:
        return None
    value = _literal(word)  # a list, tuple or dict written as a Python literal
    return value if type(value) is expected else None


def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
