"""The chapters follow the course's template (CONTRIBUTING.md), and the notebook tooling works.

The structure checks run once per chapters/*.ipynb. Each check returns the problems it found, so a
failing chapter gets one readable list; the same checks are tested on a throwaway chapter below.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from mingrok.course.contract import (
    CHECK,
    EXERCISE,
    PARAMETERS,
    SOLUTION,
    bound_names,
    check_calls,
    directives,
    exercises,
    has_tag,
)
from mingrok.course.parameters import read_parameters

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
SCRIPTS = ROOT / "scripts"


def load_script(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


bootstrap = load_script("colab_bootstrap")
chapter_parameters = load_script("chapter_parameters")

FILE_NAME = re.compile(r"^(\d{2})_[a-z0-9_]+\.ipynb$")
TITLE = re.compile(r"\A#\s+(\d+)\.\s+\S")
OBJECTIVES = re.compile(r"^#{2,4}\s+(learning objectives|what you will learn)\b", re.I | re.M)
REQUIRED_PARAMETERS = {"SEED", "DEVICE"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


# ----------------------------------------------------------------------------- structure checks


def check_title(nb: nbformat.NotebookNode, path: Path) -> list[str]:
    match = FILE_NAME.match(path.name)
    if not match:
        return [f"file name {path.name!r} is not NN_slug.ipynb (two digits, lower-case slug)"]
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown":
        return ["the first cell is not a markdown cell with the title"]
    title = TITLE.match(first.source)
    if not title:
        return [f"the first cell does not start with '# N. Title': {first.source[:60]!r}"]
    if int(title.group(1)) != int(match.group(1)):
        return [f"title number {title.group(1)} does not match the file number {match.group(1)}"]
    return []


def check_learning_objectives(nb: nbformat.NotebookNode) -> list[str]:
    if any(c.cell_type == "markdown" and OBJECTIVES.search(c.source) for c in nb.cells):
        return []
    return ["no '## Learning objectives' section"]


def check_bootstrap(nb: nbformat.NotebookNode) -> list[str]:
    if bootstrap.has_bootstrap(nb):
        return []
    return ["the first code cell is not the bootstrap cell: run scripts/colab_bootstrap.py --write"]


def check_executed(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    cells = code_cells(nb)
    for index, cell in enumerate(cells):
        if not cell.source.strip():
            problems.append(f"code cell {index} is empty")
        if cell.execution_count is None:
            problems.append(f"code cell {index} has no stored execution (outputs missing)")
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"code cell {index} stored an error: {output.get('ename')}")
    counts = [c.execution_count for c in cells]
    if not problems and counts != list(range(1, len(cells) + 1)):
        problems.append(
            f"execution counts {counts} are not 1..{len(cells)}: re-run `make notebooks` "
            "(one fresh kernel, top to bottom)"
        )
    return problems


def check_parameters(nb: nbformat.NotebookNode) -> list[str]:
    cells = [c for c in code_cells(nb) if has_tag(c, PARAMETERS)]
    if len(cells) != 1:
        return [f"{len(cells)} cells are tagged 'parameters' (exactly one is needed)"]
    try:
        statements = ast.parse(cells[0].source).body
    except SyntaxError as error:
        return [f"the parameters cell does not parse: {error}"]
    problems, names = [], set()
    for statement in statements:
        line = ast.unparse(statement)
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            problems.append(f"not a `NAME = literal` assignment: {line!r}")
            continue
        try:
            ast.literal_eval(statement.value)
        except ValueError:
            problems.append(f"not a literal value: {line!r}")
        names.add(statement.targets[0].id)
    missing = REQUIRED_PARAMETERS - names
    if missing:
        problems.append(f"the parameters cell lacks {sorted(missing)}")
    undescribed = [p.name for p in read_parameters(cells[0].source) if not p.meaning]
    if undescribed:
        problems.append(f"parameters without a describing comment: {undescribed}")
    return problems


def check_exercises(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    labels: list[str] = []
    stubs: dict[str, int] = {}  # exercise label -> code cells tagged `exercise` before its solution
    solutions: dict[str, dict[str, str]] = {}
    inside_solution = False
    calls = {call.cell_index for call in check_calls(nb)}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for directive in directives(cell):
                name, argument, options = directive.name, directive.argument, directive.options
                if name in ("exercise", "exercise-start"):
                    if not options.get("label", "").startswith("ex-"):
                        problems.append(f"cell {index}: an exercise needs `:label: ex-NN-name`")
                    labels.append(options.get("label", ""))
                    stubs[labels[-1]] = 0
                elif name in ("solution", "solution-start"):
                    if argument in solutions:
                        problems.append(f"cell {index}: a second solution to {argument!r}")
                    solutions[argument] = options
                    if name == "solution-start":
                        if inside_solution:
                            problems.append(f"cell {index}: solution-start inside a solution")
                        inside_solution = True
                elif name == "solution-end":
                    if not inside_solution:
                        problems.append(f"cell {index}: solution-end without solution-start")
                    inside_solution = False
        elif cell.cell_type == "code":
            problems += [
                f"cell {index}: {p}" for p in solution_cell_problems(cell, inside_solution)
            ]
            if has_tag(cell, EXERCISE) and labels and labels[-1] not in solutions:
                stubs[labels[-1]] += 1
            if index in calls and not inside_solution and not has_tag(cell, CHECK):
                problems.append(f"cell {index}: a cell calling a check is not tagged 'check'")
    if inside_solution:
        problems.append("a solution-start is never closed by solution-end")
    if len(labels) < 2:
        problems.append(f"{len(labels)} exercise(s); every chapter has at least 2")
    for label in labels:
        if not stubs[label]:
            problems.append(f"exercise {label!r} has no stub cell tagged 'exercise'")
        options = solutions.get(label)
        if options is None:
            problems.append(f"exercise {label!r} has no solution")
            continue
        if not options.get("label", "").startswith("sol-"):
            problems.append(f"the solution to {label!r} needs `:label: sol-NN-name`")
        if "dropdown" not in options.get("class", "").split():
            problems.append(f"the solution to {label!r} needs `:class: dropdown`")
    problems += [
        f"solution to unknown exercise {label!r}" for label in solutions.keys() - set(labels)
    ]
    if len(calls) < 2:
        problems.append(
            f"{len(calls)} cell(s) call a mingrok.checks.check_* function; at least 2 are needed"
        )
    return problems


def solution_cell_problems(cell: nbformat.NotebookNode, inside_solution: bool) -> list[str]:
    tagged = has_tag(cell, SOLUTION)
    if not inside_solution:
        return ["a cell tagged 'solution' outside solution-start/end"] if tagged else []
    problems = []
    if not tagged:
        problems.append("a code cell inside a solution is not tagged 'solution'")
    if cell.metadata.get("jupyter", {}).get("source_hidden") is not True:
        problems.append("a solution cell lacks metadata jupyter.source_hidden: true")
    if cell.metadata.get("cellView") != "form":
        problems.append('a solution cell lacks metadata cellView: "form"')
    if not re.match(r"#\s?@title\b", cell.source):
        problems.append("a solution cell does not start with '# @title'")
    return problems


def check_figures(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    for index, cell in enumerate(code_cells(nb)):
        outputs = cell.get("outputs", [])
        if any(mime.startswith("image/") for o in outputs for mime in o.get("data", {})):
            mystnb = cell.metadata.get("mystnb", {})
            if not str(mystnb.get("image", {}).get("alt", "")).strip():
                problems.append(f"code cell {index} shows an image without mystnb.image.alt")
            if not str(mystnb.get("figure", {}).get("caption", "")).strip():
                problems.append(f"code cell {index} shows an image without mystnb.figure.caption")
        widget = any(WIDGET_VIEW in o.get("data", {}) for o in outputs)
        if widget and not has_tag(cell, "nbval-ignore-output"):
            problems.append(f"code cell {index} shows a widget but is not nbval-ignore-output")
    return problems


def check_answer_names(nb: nbformat.NotebookNode) -> list[str]:
    """The names a check reads are bound only by its exercise's stub and solution: `course grade`
    reads them from the student's kernel, so a teaching cell that binds one would answer it."""
    problems = []
    for exercise in exercises(nb):
        own = {*exercise.stubs, *exercise.solution_code}
        for call in exercise.checks:
            for name in call.arguments:
                elsewhere = [
                    i for i, c in enumerate(nb.cells) if i not in own and name in bound_names(c)
                ]
                if elsewhere:
                    problems.append(
                        f"{exercise.label}: cell {elsewhere[0]} binds {name!r}, which its check "
                        "reads: only the stub and the solution may"
                    )
    return problems


def structure_problems(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [
        *check_title(nb, path),
        *check_learning_objectives(nb),
        *check_bootstrap(nb),
        *check_parameters(nb),
        *check_executed(nb),
        *check_exercises(nb),
        *check_answer_names(nb),
        *check_figures(nb),
    ]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_follows_the_template(chapter: Path) -> None:
    problems = structure_problems(chapter)
    assert not problems, f"{chapter.name}:\n  " + "\n  ".join(problems)


def test_instructors_parameter_table_matches_the_chapters() -> None:
    assert chapter_parameters.main(["--check"]) == 0, (
        "book/generated/chapter_parameters.md is stale: "
        ".venv/bin/python scripts/chapter_parameters.py --write"
    )


# ----------------------------------------------------------------------------- a throwaway chapter


def solution_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update({"tags": ["solution"], "jupyter": {"source_hidden": True}})
    cell.metadata["cellView"] = "form"
    return cell


def exercise_cells(label: str, function: str, check: str) -> list[nbformat.NotebookNode]:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return [
        md(f":::{{exercise}}\n:label: ex-99-{label}\n\nWrite `{function}`.\n:::"),
        code(
            f"def {function}(x):\n    raise NotImplementedError  # your code here",
            metadata={"tags": ["exercise"]},
        ),
        code(f"{check}({function})", metadata={"tags": ["check"]}),
        md(f"```{{solution-start}} ex-99-{label}\n:label: sol-99-{label}\n:class: dropdown\n```"),
        solution_cell(
            f"# @title Solution\ndef {function}(x):\n    return x\n\n\n{check}({function})"
        ),
        md("```{solution-end}\n```"),
    ]


def throwaway_chapter() -> nbformat.NotebookNode:
    """A chapter that follows every rule, with made-up outputs (it is never executed)."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    parameters = code('SEED = 0  # seed\nDEVICE = "auto"  # device\nSTEPS = -1  # steps')
    parameters.metadata["tags"] = ["parameters"]
    figure = code("plot()")
    figure.outputs = [nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo="})]
    figure.metadata["mystnb"] = {
        "image": {"alt": "A line going up."},
        "figure": {"caption": "Up.", "name": "fig-99-up"},
    }
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# 99. Throwaway\n\nWhy.\n\n## Learning objectives\n\n- one"),
        bootstrap.bootstrap_cell(),
        parameters,
        code("from mingrok.checks import check_first\nfrom mingrok import checks"),
        figure,
        *exercise_cells("first", "first", "check_first"),
        *exercise_cells("second", "second", "checks.check_second"),
        md("## Summary"),
    ]
    for count, cell in enumerate(code_cells(nb), start=1):
        cell.execution_count = count
    return nb


def problems_of(nb: nbformat.NotebookNode, tmp_path: Path, name: str = "99_throwaway.ipynb") -> str:
    path = tmp_path / name
    nbformat.write(nb, path)
    return "\n".join(structure_problems(path))


def test_a_chapter_that_follows_the_template_passes(tmp_path: Path) -> None:
    assert problems_of(throwaway_chapter(), tmp_path) == ""


def find(nb: nbformat.NotebookNode, predicate) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if predicate(c))


def is_solution_code(cell: nbformat.NotebookNode) -> bool:
    return has_tag(cell, SOLUTION)


def is_parameters(cell: nbformat.NotebookNode) -> bool:
    return has_tag(cell, PARAMETERS)


def break_outputs(nb):
    for cell in code_cells(nb):
        cell.execution_count = None


def break_error(nb):
    code_cells(nb)[2].outputs = [
        nbformat.v4.new_output("error", ename="ValueError", evalue="", traceback=[])
    ]


def break_order(nb):
    code_cells(nb)[1].execution_count = 7


def break_title(nb):
    nb.cells[0].source = "Throwaway\n\n## Learning objectives"


def break_title_number(nb):
    nb.cells[0].source = nb.cells[0].source.replace("# 99.", "# 3.")


def break_objectives(nb):
    nb.cells[0].source = "# 99. Throwaway"


def break_bootstrap(nb):
    del nb.cells[1]


def break_parameters_computed(nb):
    find(nb, is_parameters).source += "\nHALF = STEPS // 2"


def break_parameters_missing(nb):
    find(nb, is_parameters).source = "SEED = 0"


def break_parameter_description(nb):
    find(nb, is_parameters).source += "\nEXTRA = 1"


def break_parameters_twice(nb):
    nb.cells.insert(3, nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}))


def break_hidden(nb):
    del find(nb, is_solution_code).metadata["jupyter"]


def break_form(nb):
    del find(nb, is_solution_code).metadata["cellView"]


def break_title_line(nb):
    cell = find(nb, is_solution_code)
    cell.source = cell.source.replace("# @title Solution\n", "")


def break_solution_tag(nb):
    find(nb, is_solution_code).metadata["tags"] = []


def break_dropdown(nb):
    cell = find(nb, lambda c: "solution-start" in c.source)
    cell.source = cell.source.replace(":class: dropdown\n", "")


def break_solution_label(nb):
    cell = find(nb, lambda c: "solution-start" in c.source)
    cell.source = cell.source.replace(":label: sol-99-first\n", "")


def break_one_exercise(nb):
    start = next(i for i, c in enumerate(nb.cells) if "ex-99-second" in c.source)
    del nb.cells[start : start + 6]


def break_checks(nb):
    for cell in code_cells(nb):
        cell.source = cell.source.replace("check_", "verify_")


def break_stub_tag(nb):
    find(nb, lambda c: has_tag(c, EXERCISE)).metadata["tags"] = []


def break_check_tag(nb):
    find(nb, lambda c: has_tag(c, CHECK)).metadata["tags"] = []


def break_answer_name(nb):
    code_cells(nb)[2].source += "\n\n\ndef first(x):\n    return x"


def break_alt_text(nb):
    del find(nb, lambda c: "mystnb" in c.metadata).metadata["mystnb"]["image"]


def break_widget(nb):
    cell = code_cells(nb)[3]
    cell.outputs = [nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "x"}})]


BREAKAGES = {
    break_outputs: "has no stored execution",
    break_error: "stored an error",
    break_order: "are not 1..",
    break_title: "does not start with '# N. Title'",
    break_title_number: "does not match the file number",
    break_objectives: "Learning objectives",
    break_bootstrap: "not the bootstrap cell",
    break_parameters_computed: "not a literal value",
    break_parameters_missing: "lacks ['DEVICE']",
    break_parameters_twice: "2 cells are tagged 'parameters'",
    break_parameter_description: "without a describing comment: ['EXTRA']",
    break_hidden: "source_hidden",
    break_form: "cellView",
    break_title_line: "# @title",
    break_solution_tag: "not tagged 'solution'",
    break_dropdown: ":class: dropdown",
    break_solution_label: ":label: sol-NN-name",
    break_one_exercise: "at least 2",
    break_checks: "call a mingrok.checks.check_* function",
    break_stub_tag: "no stub cell tagged 'exercise'",
    break_check_tag: "not tagged 'check'",
    break_answer_name: "binds 'first', which its check reads",
    break_alt_text: "mystnb.image.alt",
    break_widget: "nbval-ignore-output",
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__ for b in BREAKAGES])
def test_each_rule_catches_its_breakage(breakage, tmp_path: Path) -> None:
    nb = throwaway_chapter()
    breakage(nb)
    assert BREAKAGES[breakage] in problems_of(nb, tmp_path)


def test_a_badly_named_chapter_is_caught(tmp_path: Path) -> None:
    assert "is not NN_slug.ipynb" in problems_of(throwaway_chapter(), tmp_path, "Throwaway.ipynb")


def test_parameter_table_reads_names_literals_and_comments() -> None:
    source = (
        '# the seed\nSEED = 0\nDEVICE = "auto"  # where to run\nNOISE = 0.1\n'
        'SIZE = (\n    "tiny"  # wrapped by ruff: the comment sits inside the parentheses\n)\n'
    )
    parameters = chapter_parameters.read_parameters(source)
    assert [(p.name, p.default, p.meaning) for p in parameters] == [
        ("SEED", "0", "the seed"),
        ("DEVICE", '"auto"', "where to run"),
        ("NOISE", "0.1", ""),
        ("SIZE", '"tiny"', "wrapped by ruff: the comment sits inside the parentheses"),
    ]


def test_parameter_table_lists_each_chapter(tmp_path: Path) -> None:
    path = tmp_path / "99_throwaway.ipynb"
    nbformat.write(throwaway_chapter(), path)
    table = chapter_parameters.markdown_table([path])
    assert "| 99. Throwaway (`99_throwaway.ipynb`) | `SEED` | `0` | seed |" in table
    assert "|  | `STEPS` | `-1` | steps |" in table


# ----------------------------------------------------------------------------- the bootstrap cell


def test_bootstrap_outside_colab_finds_the_repository_root(tmp_path: Path) -> None:
    """Without site-packages (python -S) mingrok is not installed: the cell must find the clone."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "mingrok").mkdir()
    (tmp_path / "mingrok" / "__init__.py").write_text("WHERE = 'clone'\n")
    (tmp_path / "chapters").mkdir()
    program = bootstrap.CELL_SOURCE + "\nimport mingrok\nprint(mingrok.WHERE)\n"
    result = subprocess.run(
        [sys.executable, "-S", "-c", program],
        cwd=tmp_path / "chapters",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "clone\n"  # and nothing else: the cell itself is silent


def test_bootstrap_is_silent_when_mingrok_is_installed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", bootstrap.CELL_SOURCE + "\nimport mingrok"],
        cwd=tmp_path,  # no pyproject.toml above: only the installed package can answer
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bootstrap_in_colab_installs_the_release_without_touching_torch(monkeypatch) -> None:
    commands = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    exec(bootstrap.CELL_SOURCE, {})
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", bootstrap.PACKAGE_SPEC]]
    assert bootstrap.PACKAGE_SPEC.endswith(f"mingrok-book@{load_script('release').release_tag()}")


def test_how_to_run_names_the_current_release() -> None:
    assert bootstrap.PACKAGE_SPEC in (ROOT / "book" / "how_to_run.md").read_text(encoding="utf-8")


def test_bootstrap_write_inserts_then_updates(tmp_path: Path) -> None:
    path = tmp_path / "99_throwaway.ipynb"
    nb = throwaway_chapter()
    del nb.cells[1]
    nbformat.write(nb, path)
    assert bootstrap.write_bootstrap(path)
    assert bootstrap.has_bootstrap(nbformat.read(path, as_version=4))
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "# an older bootstrap"
    nbformat.write(nb, path)
    assert bootstrap.write_bootstrap(path)
    nb = nbformat.read(path, as_version=4)
    assert bootstrap.has_bootstrap(nb) and len(nb.cells) == len(throwaway_chapter().cells)
    assert not bootstrap.write_bootstrap(path)


# ----------------------------------------------------------------------------- make notebooks


def run_execute_script(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "execute_notebooks.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_execute_script_stores_outputs_and_widget_state_without_timings(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint(os.getcwd())"),
        nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)"),
    ]
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2024-03-17T00:00:00Z"}
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    result = run_execute_script(path)
    assert result.returncode == 0, result.stderr
    stored = nbformat.read(path, as_version=4)
    cells = stored.cells
    assert [c.execution_count for c in cells] == [1, 2]
    assert cells[0].outputs[0].text == f"{tmp_path.resolve()}\n", "cwd is the notebook's folder"
    assert all("execution" not in c.metadata for c in cells)
    assert "application/vnd.jupyter.widget-state+json" in stored.metadata.widgets
    assert stored.metadata.kernelspec.name == "python3"


def test_execute_script_fails_loudly_and_keeps_the_notebook(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 / 0")]
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_text(encoding="utf-8")
    result = run_execute_script(path)
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr and "99_broken.ipynb" in result.stderr
    assert path.read_text(encoding="utf-8") == before


# ----------------------------------------------------------------------------- nbval sanitizers


def sanitize(text: str) -> str:
    config = configparser.ConfigParser()
    config.read(ROOT / "tests" / "nbval_sanitize.cfg", encoding="utf-8")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


@pytest.mark.parametrize(
    ("printed", "sanitized"),
    [
        ("prefill took 12.3 ms, decode 0.8 s", "prefill took DURATION, decode DURATION"),
        ("CPU times: user 1.2 s, sys: 30 µs", "CPU times: user DURATION, sys: DURATION"),
        ("generated 1234.5 tokens/s", "generated THROUGHPUT"),
        ("int8:     1301 tokens/s", "int8: THROUGHPUT"),  # right-aligned rates of 4 digits
        ("int8:      861 tokens/s", "int8: THROUGHPUT"),  # and of 3 compare equal
        ("the cache is 3.1× faster", "the cache is RATIO faster"),
        ("<Linear object at 0x7f3a2c1b9e50>", "<Linear object at 0xADDRESS>"),
        (
            "(mean ± std. dev. of 7 runs, 1,000 loops each)",
            "(mean ± std. dev. of 7 runs, N loops each)",
        ),
        (
            "loss 4.8520 after 200 steps with 4 experts",
            "loss 4.8520 after 200 steps with 4 experts",
        ),
        ("torch.Size([2, 16, 128])", "torch.Size([2, 16, 128])"),
    ],
)
def test_nbval_sanitizers_hide_timings_and_addresses_only(printed: str, sanitized: str) -> None:
    assert sanitize(printed) == sanitized


def test_nbval_reads_every_sanitizer() -> None:
    """nbval pairs each `regex:` line with the `replace:` line right after it, and nothing else."""
    from nbval.plugin import get_sanitize_patterns

    text = (ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    config = configparser.ConfigParser()
    config.read_string(text)
    assert len(get_sanitize_patterns(text)) == len(config.sections())
