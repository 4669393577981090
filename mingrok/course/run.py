"""`course run`: chapters executed with other parameter values, one folder per run, one summary.

Values come from ``-p NAME VALUE`` and from a YAML file of this shape (every key optional)::

    parameters:          # fixed values, for every chapter run
      SEED: 1
    grid:                # lists: one run per combination (the cartesian product)
      ROUTER_NOISE: [0.0, 0.1]
    chapters:            # per chapter, the same two keys; they override the ones above
      05_router:
        grid:
          BALANCE_COEF: [0.0, 0.01]

Every value is checked against the chapter's ``parameters`` cell before anything runs: an
unknown chapter, an unknown name or a value of the wrong type stops the command with a message
that lists what the chapter accepts. Each run writes ``OUT/<chapter>/<run>/<chapter>.ipynb``
with the chapter folder as working directory, so nothing is written into ``chapters/``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .execute import Execution, execute_notebook, run_parallel
from .notebooks import resolve_chapters
from .parameters import Parameter, ParameterError, coerce, notebook_parameters
from .record import read_records
from .tables import write_tables

SETTINGS_KEYS = ("parameters", "grid", "chapters")
CHAPTER_KEYS = ("parameters", "grid")
SUMMARY_COLUMNS = ("chapter", "run", "parameters", "status", "wall time (s)")
RESERVED_COLUMNS = (*SUMMARY_COLUMNS, "error")  # a metric of the same name gets a prefix
UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9._=+,-]+")


@dataclass(frozen=True)
class Run:
    chapter: Path  # absolute path of the notebook
    run_id: str  # the run's folder name, made from its parameters
    parameters: dict[str, object] = field(default_factory=dict)  # given values; others default


@dataclass(frozen=True)
class RunResult:
    run: Run
    notebook: Path  # the executed copy
    execution: Execution
    metrics: dict[str, object]  # what the chapter recorded with mingrok.course.record


def load_settings(path: Path) -> dict:
    """The YAML file's ``parameters``, ``grid`` and ``chapters``, checked for shape."""
    import yaml

    settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    _check_keys(settings, SETTINGS_KEYS, str(path))
    chapters = settings.get("chapters") or {}
    if not isinstance(chapters, Mapping):
        raise ParameterError(f"{path}: chapters must map chapter names to `parameters`/`grid`")
    for chapter, section in chapters.items():
        chapters[chapter] = section or {}
        _check_keys(chapters[chapter], CHAPTER_KEYS, f"{path}: chapters: {chapter}")
    return settings


def _check_keys(section: object, allowed: Sequence[str], where: str) -> None:
    if not isinstance(section, Mapping):
        raise ParameterError(f"{where}: expected a mapping with keys {', '.join(allowed)}")
    unknown = [key for key in section if key not in allowed]
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
    for key in ("parameters", "grid"):
        if not isinstance(section.get(key) or {}, Mapping):
            raise ParameterError(f"{where}: {key} must map parameter names to values")
    for name, values in (section.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise ParameterError(f"{where}: grid: {name} must be a non-empty list, got {values!r}")


def plan_runs(
    names: Sequence[str],
    given: Mapping[str, object],
    settings: Mapping | None = None,
    chapters_folder: Path = Path("chapters"),
) -> list[Run]:
    """Every run to do, with checked values, or a ParameterError/ChapterError listing all problems.

    ``names`` choose the chapters (default: those under the settings' ``chapters``, else all);
    ``given`` (from ``-p``) overrides the settings' fixed values.
    """
    settings = settings or {}
    per_chapter = settings.get("chapters") or {}
    chapters = resolve_chapters(list(names) or list(map(str, per_chapter)), chapters_folder)
    sections = {}
    for name, section in per_chapter.items():
        for path in resolve_chapters([str(name)], chapters_folder):  # YAML reads `3:` as an int
            sections[path.resolve()] = section
    runs, problems = [], []
    for path in chapters:
        section = sections.get(path.resolve(), {})
        fixed = {**(settings.get("parameters") or {}), **(section.get("parameters") or {})}
        fixed.update(given)
        grid = {**(settings.get("grid") or {}), **(section.get("grid") or {})}
        chapter_runs, chapter_problems = _chapter_runs(path.resolve(), fixed, grid)
        runs += chapter_runs
        problems += chapter_problems
    if problems:
        raise ParameterError("\n".join(problems))
    return runs


def _chapter_runs(
    path: Path, fixed: Mapping[str, object], grid: Mapping[str, list]
) -> tuple[list[Run], list[str]]:
    accepted = {p.name: p for p in notebook_parameters(nbformat.read(path, as_version=4))}
    chapter = path.stem
    problems = [
        f"{chapter}: {name} is both a fixed value and a grid axis"
        for name in fixed.keys() & grid.keys()
    ]
    unknown = [name for name in [*fixed, *grid] if name not in accepted]
    if unknown:
        problems.append(
            f"{chapter} has no parameter {', '.join(unknown)}; it accepts: {_accepted(accepted)}"
        )
    checked_fixed, checked_grid = {}, {}
    for name, value in fixed.items():
        if name in accepted:
            checked_fixed[name] = _checked(accepted[name], value, chapter, problems)
    for name, values in grid.items():
        if name in accepted:
            checked_grid[name] = [_checked(accepted[name], v, chapter, problems) for v in values]
    if problems:
        return [], problems
    runs, seen = [], set()
    for combination in itertools.product(*checked_grid.values()):
        parameters = {**checked_fixed, **dict(zip(checked_grid, combination, strict=True))}
        run_id = _run_id(parameters, seen)
        seen.add(run_id)
        runs.append(Run(path, run_id, parameters))
    return runs, []


def _checked(parameter: Parameter, value: object, chapter: str, problems: list[str]) -> object:
    try:
        return coerce(parameter, value, chapter)
    except ParameterError as error:
        problems.append(str(error))
        return value


def _accepted(accepted: Mapping[str, Parameter]) -> str:
    return ", ".join(p.describe() for p in accepted.values()) or "no parameters"


def _run_id(parameters: Mapping[str, object], taken: set[str]) -> str:
    text = ",".join(f"{name}={value}" for name, value in parameters.items()) or "defaults"
    base = UNSAFE_IN_NAMES.sub("_", text)[:100]
    run_id, number = base, 1
    while run_id in taken:  # a grid that lists a value twice
        number += 1
        run_id = f"{base}-{number}"
    return run_id


def run_chapters(
    runs: Sequence[Run], out: Path, jobs: int = 1, timeout_s: float | None = None
) -> list[RunResult]:
    """Execute every run (``jobs`` at a time); a failed run is reported and the others go on."""
    tasks = [(run, (out / run.chapter.stem / run.run_id).resolve(), timeout_s) for run in runs]
    return run_parallel(_execute_run, tasks, jobs, _describe)


def _execute_run(task: tuple[Run, Path, float | None]) -> RunResult:
    run, folder, timeout_s = task
    notebook = folder / run.chapter.name
    execution = execute_notebook(
        run.chapter,
        notebook,
        cwd=run.chapter.parent,
        parameters=run.parameters,
        timeout_s=timeout_s,
    )
    metrics = read_records(nbformat.read(notebook, as_version=4)) if notebook.is_file() else {}
    return RunResult(run, notebook, execution, metrics)


def _describe(task: tuple[Run, Path, float | None], result: RunResult) -> str:
    run, execution = task[0], result.execution
    error = f": {execution.error}" if execution.error else ""
    return (
        f"{execution.status:<7} {run.chapter.stem}/{run.run_id} ({execution.wall_s:.1f} s){error}"
    )


def write_summary(results: Sequence[RunResult], out: Path) -> str:
    """OUT/summary.md and OUT/summary.csv, one row per run; returns the Markdown."""
    metric_names = list(dict.fromkeys(name for r in results for name in r.metrics))
    column_of = {
        name: f"metric {name}" if name in RESERVED_COLUMNS else name for name in metric_names
    }
    rows = []
    for result in results:
        run, execution = result.run, result.execution
        parameters = ", ".join(f"{name}={value!r}" for name, value in run.parameters.items())
        rows.append(
            {
                "chapter": run.chapter.stem,
                "run": run.run_id,
                "parameters": parameters or "(defaults)",
                "status": execution.status,
                "wall time (s)": round(execution.wall_s, 1),
                **{column_of[name]: value for name, value in result.metrics.items()},
                "error": execution.error,
            }
        )
    columns = [*SUMMARY_COLUMNS, *column_of.values(), "error"]
    return write_tables(rows, columns, out / "summary")
