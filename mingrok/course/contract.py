"""What a chapter is, written once: its tags, its exercise blocks and the checks it calls.

CONTRIBUTING.md describes the template; this module is the one place that reads it from a
notebook. The template tests (tests/test_notebooks.py), `course student`, `course grade`, the
instructors' parameter table and the nbgrader exporter all ask it, so a change to the template
is a change here. One exercise is, in order::

    markdown  :::{exercise} 3.1 Grok-1's soft-cap     (directive, with :label: ex-NN-name)
    code      tag `exercise`: the stub the reader edits; it binds the names the check reads
    code      tag `check`: `check_soft_cap(cap_logits)`, a mingrok.checks call
    markdown  ```{solution-start} ex-03-soft-cap      (or a prose :::{solution} block)
    code      tag `solution`, `# @title Solution` first (hidden in JupyterLab and Colab)
    markdown  ```{solution-end}

It reads notebooks as plain nbformat nodes and imports nothing of Jupyter's, so that anything
may use it. A check id (``3.1``) comes from ``mingrok.checks`` itself, imported when asked for.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

BOOTSTRAP, PARAMETERS, EXERCISE, CHECK, SOLUTION = (
    "bootstrap",
    "parameters",
    "exercise",
    "check",
    "solution",
)
EXERCISE_DIRECTIVES = ("exercise", "exercise-start")
SOLUTION_DIRECTIVES = ("solution", "solution-start", "solution-end")
CHECKS_MODULE = "mingrok.checks"
DEFAULT_POINTS = 1
# A MyST directive's opening line, in backtick or colon fences: ```{solution-start} ex-03-cap
DIRECTIVE = re.compile(r"^(?:`{3,}|:{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<argument>.*?)[ \t]*$", re.M)
OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")


def tags(cell: Mapping) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def has_tag(cell: Mapping, tag: str) -> bool:
    return tag in tags(cell)


def python_source(source: str) -> str:
    """Cell source with IPython magics and shell escapes blanked, so that `ast` can parse it."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )


def parse_cell(cell: Mapping) -> ast.Module | None:
    """The code cell's syntax tree, or None for a markdown cell or code that does not parse."""
    if cell.get("cell_type") != "code":
        return None
    try:
        return ast.parse(python_source(cell.get("source", "")))
    except SyntaxError:
        return None


@dataclass(frozen=True)
class Directive:
    name: str  # exercise, solution-start, ...
    argument: str  # the rest of the opening line: "3.1 Grok-1's soft-cap", "ex-03-soft-cap"
    options: dict[str, str]  # the `:key: value` lines right after it


def directives(cell: Mapping) -> list[Directive]:
    """Each MyST directive a markdown cell opens, with its argument and options."""
    if cell.get("cell_type") != "markdown":
        return []
    source = cell.get("source", "")
    lines = source.split("\n")
    found = []
    for match in DIRECTIVE.finditer(source):
        line_number = source.count("\n", 0, match.start())
        options = {}
        for line in lines[line_number + 1 :]:
            option = OPTION.match(line.strip())
            if not option:
                break
            options[option["key"]] = option["value"].strip()
        found.append(Directive(match["name"], match["argument"], options))
    return found


def is_solution(cell: Mapping) -> bool:
    """A cell of a solution block: its code (tag `solution`) or a markdown cell opening,
    closing or holding it (`solution-start`, `solution-end`, a prose `{solution}`)."""
    if has_tag(cell, SOLUTION):
        return True
    if cell.get("cell_type") != "markdown":
        return False
    opening = DIRECTIVE.match(cell.get("source", "").lstrip())  # the cell starts with it
    return bool(opening) and opening["name"] in SOLUTION_DIRECTIVES


# ----------------------------------------------------------------------------- check calls


@dataclass(frozen=True)
class CheckCall:
    cell_index: int
    function: str  # check_soft_cap
    arguments: tuple[str, ...]  # the source of each positional argument: ("cap_logits",)

    @property
    def check_id(self) -> str | None:
        """``3.1``: the id the check prints (None for a name mingrok.checks does not export)."""
        from mingrok import checks

        return getattr(getattr(checks, self.function, None), "check_id", None)

    @property
    def source(self) -> str:
        return f"{self.function}({', '.join(self.arguments)})"


def check_calls(nb: Mapping) -> list[CheckCall]:
    """Every call of a ``check_*`` function imported from mingrok.checks, in notebook order.

    Both ``from mingrok.checks import check_x; check_x(f)`` and ``from mingrok import checks;
    checks.check_x(f)`` (or ``import mingrok.checks``) count; an import anywhere before the call
    binds the name for the cells that follow, as it does in the kernel.
    """
    imported: set[str] = set()  # check_* names imported from mingrok.checks
    modules: set[str] = set()  # names bound to the mingrok.checks module
    calls = []
    for index, cell in enumerate(nb["cells"]):
        tree = parse_cell(cell)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == CHECKS_MODULE:
                imported |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module == "mingrok":
                modules |= {a.asname or a.name for a in node.names if a.name == "checks"}
            elif isinstance(node, ast.Import):
                modules |= {a.asname or a.name for a in node.names if a.name == CHECKS_MODULE}
        for node in ast.walk(tree):
            function = _check_function(node, imported, modules)
            if function:
                arguments = tuple(ast.unparse(argument) for argument in node.args)
                calls.append(CheckCall(index, function, arguments))
    return calls


def _check_function(node: ast.AST, imported: set[str], modules: set[str]) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id.startswith("check_") and func.id in imported:
        return func.id
    if isinstance(func, ast.Attribute) and func.attr.startswith("check_"):
        return func.attr if ast.unparse(func.value) in modules else None
    return None


def bound_names(cell: Mapping) -> set[str]:
    """The names a code cell binds at its top level (functions, classes, assignments, imports)."""
    tree = parse_cell(cell)
    names: set[str] = set()
    for statement in tree.body if tree else []:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


# ----------------------------------------------------------------------------- exercises


@dataclass
class Exercise:
    """One exercise block of a chapter, by cell index."""

    label: str  # ex-03-soft-cap
    title: str  # 3.1 Grok-1's soft-cap
    statement: int  # the markdown cell of the {exercise} directive
    stubs: list[int] = field(default_factory=list)  # cells tagged `exercise`
    checks: list[CheckCall] = field(default_factory=list)  # calls in the cells tagged `check`
    solution_cells: list[int] = field(default_factory=list)  # the whole block, markdown too
    solution_code: list[int] = field(default_factory=list)  # its code cells (tag `solution`)
    points: int = DEFAULT_POINTS  # metadata mingrok.points of its check cell, else 1

    @property
    def check(self) -> CheckCall | None:
        """The check that grades it: the first one its check cell calls."""
        return self.checks[0] if self.checks else None

    @property
    def check_id(self) -> str:
        """The id its check prints (``3.1``), else the first word of its title."""
        found = self.check.check_id if self.check else None
        return found or (self.title.split() or [self.label])[0]


def exercises(nb: Mapping) -> list[Exercise]:
    """The chapter's exercises in order; cells outside any exercise block are teaching cells."""
    calls_by_cell: dict[int, list[CheckCall]] = {}
    for call in check_calls(nb):
        calls_by_cell.setdefault(call.cell_index, []).append(call)
    found: list[Exercise] = []
    by_label: dict[str, Exercise] = {}
    open_solution: Exercise | None = None
    for index, cell in enumerate(nb["cells"]):
        for directive in directives(cell):
            if directive.name in EXERCISE_DIRECTIVES:
                label = directive.options.get("label", "")
                exercise = Exercise(label, directive.argument, index)
                found.append(exercise)
                by_label.setdefault(label, exercise)
            elif directive.name in ("solution", "solution-start"):
                target = by_label.get(directive.argument)
                if target is not None:
                    target.solution_cells.append(index)
                open_solution = target if directive.name == "solution-start" else None
            elif directive.name == "solution-end":
                if open_solution is not None:
                    open_solution.solution_cells.append(index)
                open_solution = None
        current = found[-1] if found else None
        if cell.get("cell_type") != "code" or current is None:
            continue
        if has_tag(cell, SOLUTION) and open_solution is not None:
            open_solution.solution_cells.append(index)
            open_solution.solution_code.append(index)
        elif has_tag(cell, EXERCISE):
            current.stubs.append(index)
        elif has_tag(cell, CHECK):
            current.checks += calls_by_cell.get(index, [])
            points = cell.get("metadata", {}).get("mingrok", {}).get("points")
            if points is not None:
                current.points = points
    return found


def parameters_cell(nb: Mapping) -> Mapping | None:
    """The first code cell tagged `parameters` (papermill injects its values right after it)."""
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and has_tag(cell, PARAMETERS):
            return cell
    return None
