"""Re-execute chapters in place, storing the outputs that the book publishes (`make notebooks`).

Each notebook runs top to bottom in a fresh kernel of this interpreter (the virtual environment's
Python, whatever other kernels the machine has), with the chapters folder as working directory, as
nbval and the book assume. Widget state is stored, so the static site can render widgets, unless no
widget is shown there (every cell that displays one is tagged `remove-output`: a chapter whose site
version is an explorer, mingrok/explorer.py); then the page need not load 4 MB of widget JavaScript
for nothing. Per-cell timing metadata is not stored. Running it twice on one machine writes
byte-identical notebooks, so a diff shows only what the code changed:
- consecutive stream outputs are merged (the kernel splits printed text at arbitrary points);
- widget model ids, random UUIDs, are renamed after the notebook and their order;
- a cell whose new outputs differ from its stored ones only where nbval's sanitizers blank them
  (durations, throughputs, speed-ups, addresses: tests/nbval_sanitize.cfg) keeps the stored ones.
  In a cell tagged `timing`, values it records for course runs (a measured speed-up) are ignored
  in that comparison too. `--fresh-timings` stores every new measurement instead: use it when a
  change makes code faster or slower.
A cell error stops everything, names the notebook and cell, and leaves that notebook untouched.

Usage (from the repository root):
    .venv/bin/python scripts/execute_notebooks.py                      # every chapters/*.ipynb
    .venv/bin/python scripts/execute_notebooks.py chapters/03_attention.ipynb ...
    .venv/bin/python scripts/execute_notebooks.py --fresh-timings chapters/06_experts.ipynb
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbval.plugin import get_sanitize_patterns

from mingrok.course.execute import KERNEL_NAME, ThisInterpretersKernel

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT_S = 600
# Metadata that records when or how long a run took, or which tool ran it: never committed.
VOLATILE_CELL_METADATA = ("execution", "papermill", "ExecuteTime", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_METADATA = ("papermill",)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RECORD_PREFIX = "application/papermill.record/"  # mingrok.course.record's outputs
TIMING_TAG = "timing"  # a cell whose outputs measure speed, records included
SANITIZERS = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text("utf-8"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    for key in VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)


def merge_consecutive_streams(nb: nbformat.NotebookNode) -> None:
    """One stream output per run of printed text: how the kernel chunked it is not reproducible."""
    for cell in nb.cells:
        merged: list[nbformat.NotebookNode] = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and output.output_type == previous.output_type == "stream"
                and output.name == previous.name
            ):
                previous.text += output.text
            else:
                merged.append(output)
        if cell.cell_type == "code":
            cell.outputs = merged


def stable_widget_ids(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The notebook with each widget model id replaced by a UUID derived from `name` and its rank.

    Ids appear as state keys, as `IPY_MODEL_<id>` references between widgets and as the `model_id`
    of outputs; replacing the 32-hex strings everywhere in the JSON renames all three at once.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    text = json.dumps(nb)
    for rank, model_id in enumerate(list(state)):
        text = text.replace(model_id, uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{rank}").hex)
    return nbformat.from_dict(json.loads(text))


def sanitized(output: nbformat.NotebookNode, timing: bool = False) -> dict:
    """An output as nbval compares it: text with timings and addresses blanked, images as is."""

    def clean(value):
        if not isinstance(value, str):
            return value
        for pattern, replacement in SANITIZERS:
            value = re.sub(pattern, replacement, value)
        return value

    data = {
        key: clean(value)
        for key, value in output.get("data", {}).items()
        if not (timing and key.startswith(RECORD_PREFIX))
    }
    return {
        "type": output.output_type,
        "name": output.get("name"),
        "text": clean(output.get("text")),
        "data": data,
    }


def keep_unchanged_measurements(stored: nbformat.NotebookNode, new: nbformat.NotebookNode) -> None:
    """Give back a cell's stored outputs when the new ones differ only in sanitized measurements."""
    for old_cell, cell in zip(stored.cells, new.cells, strict=False):
        if cell.cell_type != "code" or old_cell.get("source") != cell.source:
            continue
        old_outputs = old_cell.get("outputs", [])
        timing = TIMING_TAG in cell.metadata.get("tags", [])
        if len(old_outputs) == len(cell.outputs) and all(
            sanitized(a, timing) == sanitized(b, timing)
            for a, b in zip(old_outputs, cell.outputs, strict=True)
        ):
            cell.outputs = old_outputs


def shows_a_widget_on_the_site(nb: nbformat.NotebookNode) -> bool:
    """Whether a cell the book renders with its outputs displays a widget."""
    return any(
        WIDGET_VIEW in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code" and "remove-output" not in cell.metadata.get("tags", [])
        for output in cell.get("outputs", [])
    )


def execute(path: Path, fresh_timings: bool = False) -> float:
    """Execute `path` in place; returns the wall time in seconds. Raises CellExecutionError."""
    nb = nbformat.read(path, as_version=4)
    stored = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_manager_class=ThisInterpretersKernel,  # the client owns it, so shuts it down
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        record_timing=False,
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    strip_volatile_metadata(nb)
    merge_consecutive_streams(nb)
    nb = stable_widget_ids(nb, path.name)  # before dropping the state that lists the ids
    if not shows_a_widget_on_the_site(nb):
        nb.metadata.pop("widgets", None)
    if not fresh_timings:
        keep_unchanged_measurements(stored, nb)
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    parser.add_argument(
        "--fresh-timings",
        action="store_true",
        help="store new timings even where nothing else in a cell's output changed",
    )
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    if not paths:
        print("no chapters to execute (chapters/*.ipynb is empty)")
        return 0
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    total = 0.0
    for path in paths:
        try:
            elapsed = execute(path, args.fresh_timings)
        except CellExecutionError as error:
            print(
                f"\n{path}: a cell failed; the notebook was not written.\n{error}", file=sys.stderr
            )
            return 1
        total += elapsed
        print(f"{path}: executed in {elapsed:.1f} s")
    print(f"{len(paths)} notebook(s) in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
