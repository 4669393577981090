"""`python -m mingrok course`: runs with other parameters and grids, student copies, grading.

The notebooks here are tiny chapters written into tmp_path, so the tests do not depend on the real
chapters (a few static checks at the end run over whichever chapters exist). Every kernel they
start is limited to one thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mingrok.checks import parse_line
from mingrok.course import record
from mingrok.course.cli import add_course_parser
from mingrok.course.contract import exercises, is_solution
from mingrok.course.grade import SubmissionError
from mingrok.course.parameters import Parameter, ParameterError, coerce, notebook_parameters
from mingrok.course.record import RECORD_MIME, RECORD_PREFIX, read_records
from mingrok.course.student import student_copy

REPO = Path(__file__).resolve().parents[1]
REAL_CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))
md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell

PARAMETERS = (
    "SEED = 0  # seed\n"
    "NOISE = 0.5  # router noise\n"
    'LABEL = "base"  # a name for the run\n'
    "FAST = False  # shorter run"
)
KV_SOLUTION = "return n // (num_q_heads // num_kv_heads)  # distinctive-solution-line"
KV_WRONG = "return n % num_kv_heads"
CAP_RIGHT = "return cap * torch.tanh(logits / cap)"
CAP_WRONG = "return logits.clamp(-cap, cap)"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch) -> None:
    """Kernels inherit the environment: one thread each, beside whatever else the machine runs."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


def course(*argv: object) -> int:
    """`python -m mingrok course ...`, raising instead of exiting on bad input."""
    parser = argparse.ArgumentParser()
    add_course_parser(parser.add_subparsers())
    args = parser.parse_args(["course", *map(str, argv)])
    return args.run(args)


def exercise(
    label: str, title: str, stub: str, check: str, solution: str, points: int | None = None
) -> list[nbformat.NotebookNode]:
    """The five cells of an exercise with a gated solution (CONTRIBUTING.md), plus its closing."""
    solution_cell = code(f"# @title Solution\n{solution}\n\n\n{check}")
    solution_cell.metadata.update(
        {"tags": ["solution"], "jupyter": {"source_hidden": True}, "cellView": "form"}
    )
    check_metadata = {"tags": ["check"], **({"mingrok": {"points": points}} if points else {})}
    return [
        md(f":::{{exercise}} {title}\n:label: ex-03-{label}\n\nDo it.\n:::"),
        code(stub, metadata={"tags": ["exercise"]}),
        code(check, metadata=check_metadata),
        md(f"```{{solution-start}} ex-03-{label}\n:label: sol-03-{label}\n:class: dropdown\n```"),
        solution_cell,
        md("```{solution-end}\n```"),
    ]


def kv_function(body: str) -> str:
    return f"def kv_head_for_query(n, num_q_heads, num_kv_heads):\n    {body}"


def cap_function(body: str) -> str:
    return f"def cap_logits(logits, cap):\n    {body}"


def demo_chapter() -> nbformat.NotebookNode:
    """A chapter with parameters, recorded metrics and two exercises checked by mingrok.checks."""
    parameters = code(PARAMETERS, metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# 3. Demo\n\n## Learning objectives\n\n- run"),
        parameters,
        code(
            "import os\n\nimport torch\n\nfrom mingrok.checks import check_kv_head_for_query, "
            "check_soft_cap\nfrom mingrok.course import record\n\n"
            'print(f"NOISE={NOISE!r} LABEL={LABEL!r} FAST={FAST!r}")\n'
            'record("double_noise", NOISE * 2)\n'
            'record("folder", os.path.basename(os.getcwd()))'
        ),
        *exercise(
            "kv",
            "3.2 Which KV head?",
            kv_function("raise NotImplementedError  # your code here"),
            "check_kv_head_for_query(kv_head_for_query)",
            kv_function(KV_SOLUTION),
        ),
        *exercise(
            "cap",
            "3.1 The soft-cap",
            cap_function("raise NotImplementedError  # your code here"),
            "check_soft_cap(cap_logits)",
            cap_function(CAP_RIGHT),
            points=2,
        ),
        md("## Summary"),
    ]
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


# ----------------------------------------------------------------------------- course run


def test_grid_runs_each_combination_with_its_values(tmp_path: Path) -> None:
    chapter = write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    before = chapter.read_bytes()
    settings = tmp_path / "grid.yaml"
    settings.write_text("grid:\n  NOISE: [0, 1.5]\n  FAST: [true, false]\n")
    out = tmp_path / "out"
    status = course(
        "run", "3", "--chapters", tmp_path / "chapters", "-p", "LABEL", "changed",
        "--params-file", settings, "--jobs", 2, "--out", out,
    )  # fmt: skip
    assert status == 0
    rows = read_csv(out / "summary.csv")
    assert len(rows) == 4 and len((out / "summary.md").read_text().splitlines()) == 2 + 4
    combinations = {(row["parameters"], row["status"], row["double_noise"]) for row in rows}
    assert combinations == {
        (f"LABEL='changed', NOISE={noise}, FAST={fast}", "ok", str(2 * noise))
        for noise in (0.0, 1.5)
        for fast in (True, False)
    }
    assert {row["folder"] for row in rows} == {"chapters"}  # the chapter folder was the cwd
    executed = out / "03_demo" / "LABEL=changed,NOISE=1.5,FAST=True" / "03_demo.ipynb"
    assert "NOISE=1.5 LABEL='changed' FAST=True" in printed(executed)
    assert "injected-parameters" in json.dumps(nbformat.read(executed, as_version=4).cells[2])
    assert sorted(p.name for p in (tmp_path / "chapters").iterdir()) == ["03_demo.ipynb"]
    assert chapter.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "ROUTER_NOIZE", "0.1"], "03_demo has no parameter ROUTER_NOIZE; it accepts: SEED"),
        (["-p", "NOISE", "lots"], "NOISE = 'lots' is not a valid float"),
        (["-p", "SEED", "1.5"], "SEED = '1.5' is not a valid int"),
        (["-p", "FAST", "maybe"], "FAST = 'maybe' is not a valid bool"),
        (["--params-file", "{grid}"], "LABEL = 3 is not a valid str"),
        (["7"], "unknown chapter(s) '7'; chapters: 03_demo"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    settings = tmp_path / "grid.yaml"
    settings.write_text("grid:\n  LABEL: [a, 3]\n")
    argv = [a.format(grid=settings) for a in argv]
    out = tmp_path / "out"
    chapter = [] if argv[0] == "7" else ["03_demo"]
    with pytest.raises(ValueError) as error:
        course("run", *chapter, *argv, "--chapters", tmp_path / "chapters", "--out", out)
    assert message in str(error.value)
    if "accepts" in message:
        assert 'NOISE (float, default 0.5), LABEL (str, default "base")' in str(error.value)
    assert not out.exists()


def test_the_command_line_reports_a_refusal_without_a_traceback(tmp_path: Path, capsys) -> None:
    from mingrok.__main__ import main

    write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    argv = ["course", "run", "3", "--chapters", str(tmp_path / "chapters"), "-p", "NOPE", "1"]
    with pytest.raises(SystemExit) as exit_status:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exit_status.value.code == 2
    assert "error: 03_demo has no parameter NOPE; it accepts: SEED" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_values_are_read_as_the_default_type() -> None:
    noise, seed = Parameter("NOISE", "0.5", ""), Parameter("SEED", "0", "")
    fast = Parameter("FAST", "False", "")
    assert coerce(noise, "1e-3", "ch") == 0.001  # -p text, or YAML's unquoted 1e-3
    assert coerce(noise, 2, "ch") == 2.0 and isinstance(coerce(noise, 2, "ch"), float)
    assert coerce(seed, "7", "ch") == 7
    assert coerce(fast, "true", "ch") is True and coerce(fast, False, "ch") is False
    with pytest.raises(ParameterError, match="SEED = True is not a valid int"):
        coerce(seed, True, "ch")
    with pytest.raises(ParameterError, match="NOISE = True is not a valid float"):
        coerce(noise, True, "ch")


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code("FAIL = False  # raise on purpose", metadata={"tags": ["parameters"]}),
        code('from mingrok.course import record\n\nrecord("status", "recorded")'),
        code('if FAIL:\n    raise RuntimeError("asked to fail")\nprint("done")'),
    ]
    write(nb, tmp_path / "chapters" / "01_tiny.ipynb")
    settings = tmp_path / "grid.yaml"
    settings.write_text("chapters:\n  '1':\n    grid:\n      FAIL: [true, false]\n")
    out = tmp_path / "out"
    chapters = tmp_path / "chapters"
    assert course("run", "--chapters", chapters, "-f", settings, "--jobs", 2, "--out", out) == 1
    rows = {row["run"]: row for row in read_csv(out / "summary.csv")}
    assert rows["FAIL=True"]["metric status"] == "recorded"  # a metric never hides a column
    assert rows["FAIL=True"]["status"] == "error"
    assert "RuntimeError: asked to fail" in rows["FAIL=True"]["error"]
    assert rows["FAIL=False"]["status"] == "ok" and rows["FAIL=False"]["error"] == ""


# ----------------------------------------------------------------------------- record


def test_recorded_values_are_hidden_from_the_book_and_read_back() -> None:
    from myst_nb.ext.glue import extract_glue_data_cell

    cell = code("record(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            {RECORD_MIME: repr({"loss": 1.25, "experts": [3, 1]}), "text/plain": ""},
            metadata={"scrapbook": {"name": "stats", "mime_prefix": RECORD_PREFIX}},
        )
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    assert read_records(nb) == {"stats": {"loss": 1.25, "experts": [3, 1]}}
    [(name, glued)] = extract_glue_data_cell(cell)  # what MyST-NB does when it builds the page
    assert (name, glued.data["text/plain"]) == ("stats", "{'loss': 1.25, 'experts': [3, 1]}")
    assert cell.outputs == []  # glued for {glue:text}, shown nowhere


def test_record_checks_its_arguments_and_is_silent_outside_ipython(capsys) -> None:
    record("fine", [1, 2.5, "x", None])
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="record name 'has space'"):
        record("has space", 1)
    with pytest.raises(TypeError, match="cannot record a set"):
        record("nope", {1, 2})


# ----------------------------------------------------------------------------- course student


def test_student_copies_drop_solutions_and_still_run(tmp_path: Path) -> None:
    instructor = demo_chapter()
    check_cell = next(c for c in instructor.cells if "check" in c.metadata.get("tags", []))
    check_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[stored]\n")]
    chapter = write(instructor, tmp_path / "chapters" / "03_demo.ipynb")
    before = chapter.read_bytes()
    assert course("student", "--chapters", tmp_path / "chapters", "--out", tmp_path / "st") == 0
    copy = tmp_path / "st" / "03_demo.ipynb"
    text = copy.read_text()
    assert "distinctive-solution-line" not in text and CAP_RIGHT not in text
    assert "solution-start" not in text and "solution-end" not in text
    student = nbformat.read(copy, as_version=4)
    kept = [c for c in instructor.cells if not is_solution(c)]
    assert [c.source for c in student.cells] == [c.source for c in kept]
    assert len(student.cells) == len(instructor.cells) - 6
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")
    assert chapter.read_bytes() == before

    out = tmp_path / "run"
    assert course("run", copy, "--out", out) == 0
    executed = out / "03_demo" / "defaults" / "03_demo.ipynb"
    results = [parse_line(line) for line in printed(executed).splitlines()]
    assert [r for r in results if r] == [("3.2", "NOT ATTEMPTED YET"), ("3.1", "NOT ATTEMPTED YET")]


# ----------------------------------------------------------------------------- course grade


def submission(stubs: dict[str, str], extra: str | None = None) -> nbformat.NotebookNode:
    """The student copy with the stubs replaced (by function name), and an optional extra cell."""
    nb = student_copy(demo_chapter())
    for cell in nb.cells:
        for function, body in stubs.items():
            if "exercise" in cell.metadata.get("tags", []) and function in cell.source:
                cell.source = body
    if extra is not None:
        index = next(i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", []))
        nb.cells.insert(index + 1, code(extra))
    return nb


def test_grading_a_folder_of_submissions(tmp_path: Path) -> None:
    write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    folder = tmp_path / "submissions"
    right = {"kv_head": kv_function(KV_SOLUTION), "cap_logits": cap_function(CAP_RIGHT)}
    write(submission(right), folder / "alice" / "03_demo.ipynb")
    write(submission({**right, "cap_logits": cap_function(CAP_WRONG)}), folder / "bob.ipynb")
    write(submission({}), folder / "carol.ipynb")
    write(submission({"kv_head": "def kv_head_for_query(:"}), folder / "dave.ipynb")
    write(demo_chapter(), folder / "instructor.ipynb")  # stub, then the solution re-checks
    before = files(folder)
    out = tmp_path / "grades"
    chapters = tmp_path / "chapters"
    argv = ["--chapter", "3", "--chapters", chapters, "--jobs", 2, "--timeout", 120, "--out", out]
    assert course("grade", folder, *argv) == 0

    rows = {row["submission"]: row for row in read_csv(out / "grades.csv")}
    table = {name: (r["3.1"], r["3.2"], r["points"], r["status"]) for name, r in rows.items()}
    assert table == {  # 3.1 is worth 2 points (its check cell's metadata), 3.2 the default 1
        "alice/03_demo.ipynb": ("passed", "passed", "3/3", "ok"),
        "bob.ipynb": ("failed", "passed", "1/3", "ok"),
        "carol.ipynb": ("not attempted", "not attempted", "0/3", "ok"),
        "dave.ipynb": ("not attempted", "not attempted", "0/3", "error"),
        "instructor.ipynb": ("passed", "passed", "3/3", "ok"),
    }
    assert rows["dave.ipynb"]["error"].startswith("In [3]: SyntaxError")
    markdown = (out / "grades.md").read_text()
    assert "| alice/03_demo.ipynb | 03_demo | passed | passed | 3/3 | ok |  |" in markdown
    students = {row["student"]: row["total"] for row in read_csv(out / "students.csv")}
    assert students == {
        "alice": "3/3",
        "bob": "1/3",
        "carol": "0/3",
        "dave": "0/3",
        "instructor": "3/3",
    }
    [chapter] = read_csv(out / "chapters.csv")
    assert (chapter["submissions"], chapter["mean points"], chapter["full marks"]) == (
        "5",
        "1.4",
        "2",
    )
    feedback = (out / "feedback" / "bob.md").read_text()
    assert "**3.1 The soft-cap** (2 points): failed — hint: compute cap · tanh" in feedback
    assert "**3.2 Which KV head?** (1 point): passed" in feedback
    assert (out / "executed" / "alice" / "03_demo.ipynb").is_file()
    assert files(folder) == before


def test_a_notebook_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [code("import time\n\ntime.sleep(600)"), code(cap_function(CAP_RIGHT))]
    out = tmp_path / "grades"
    path = write(nb, tmp_path / "slow" / "03_demo.ipynb")
    argv = ["--chapters", tmp_path / "chapters", "--timeout", 5, "--out", out]
    assert course("grade", path, *argv) == 0
    [row] = read_csv(out / "grades.csv")
    assert (row["3.1"], row["3.2"], row["status"]) == ("not attempted", "not attempted", "timeout")
    assert row["error"] == "out of time before cell 1; the later cells did not run"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.ipynb", "submission {path} does not exist"),
        ("notes.txt", "submission {path} is not a notebook (*.ipynb)"),
        ("homework.ipynb", "no chapter is named 'homework'"),
    ],
)
def test_a_bad_submission_path_says_what_is_wrong(tmp_path: Path, name: str, message: str) -> None:
    write(demo_chapter(), tmp_path / "chapters" / "03_demo.ipynb")
    path = tmp_path / name
    if name != "missing.ipynb":
        path.write_text("{}")
    with pytest.raises(SubmissionError) as error:
        course("grade", path, "--chapters", tmp_path / "chapters", "--out", tmp_path / "out")
    assert message.format(path=repr(str(path))) in str(error.value)
    assert not (tmp_path / "out").exists()


def files(folder: Path) -> list[tuple[Path, bytes]]:
    return sorted((p, p.read_bytes()) for p in folder.rglob("*") if p.is_file())


def test_the_contract_finds_each_exercise_its_check_and_points() -> None:
    found = [(e.check_id, e.title, e.check.source, e.points) for e in exercises(demo_chapter())]
    assert found == [
        ("3.2", "3.2 Which KV head?", "check_kv_head_for_query(kv_head_for_query)", 1),
        ("3.1", "3.1 The soft-cap", "check_soft_cap(cap_logits)", 2),
    ]


# ----------------------------------------------------------------------------- the real chapters


@pytest.mark.parametrize("chapter", REAL_CHAPTERS, ids=[p.name for p in REAL_CHAPTERS])
def test_real_chapters_work_with_the_course_tools(chapter: Path) -> None:
    nb = nbformat.read(chapter, as_version=4)
    for parameter in notebook_parameters(nb):  # `-p NAME VALUE` can give every default
        value = parameter.value
        text = value if isinstance(value, str) else repr(value)
        assert coerce(parameter, text, chapter.stem) == value
    student = student_copy(nb)
    assert not any(is_solution(c) or "# @title Solution" in c.source for c in student.cells)
    names = [
        o.metadata["scrapbook"]["name"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "scrapbook" in o.get("metadata", {})
    ]
    assert len(names) == len(set(names)), f"a name recorded twice (the book build fails): {names}"


def test_the_model_commands_do_not_load_the_course_tools() -> None:
    """The course tools are an optional layer: `python -m mingrok sample` runs without them."""
    program = (
        "import sys\n"
        "from mingrok.__main__ import main\n"
        "status = main(['sample', '--max-new-tokens', '3', '--prompt', 'ROMEO:'])\n"
        "heavy = ('papermill', 'nbformat', 'nbclient', 'jupyter_client', 'yaml')\n"
        "print(status, sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
