"""`make notebooks` writes the same bytes twice: what varies from run to run is normalised away."""

from __future__ import annotations

import uuid

import nbformat

from .conftest import load_script

execute_notebooks = load_script("execute_notebooks")


def widget_notebook(model_ids: list[str]) -> nbformat.NotebookNode:
    """A notebook as nbclient stores one with a box holding a slider: ids are random per run."""
    box, slider = model_ids
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(box)", id="widget-cell")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": box, "version_major": 2},
                "text/plain": "VBox(...)",
            },
        )
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {
        execute_notebooks.WIDGET_STATE: {
            "state": {
                box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{slider}"]}},
                slider: {"model_name": "FloatSliderModel", "state": {"value": 1.0}},
            },
            "version_major": 2,
            "version_minor": 0,
        }
    }
    return nb


def test_widget_ids_depend_only_on_the_notebook_and_their_order():
    first = [uuid.uuid4().hex, uuid.uuid4().hex]
    second = [uuid.uuid4().hex, uuid.uuid4().hex]
    a = execute_notebooks.stable_widget_ids(widget_notebook(first), "05_router.ipynb")
    b = execute_notebooks.stable_widget_ids(widget_notebook(second), "05_router.ipynb")
    assert nbformat.writes(a) == nbformat.writes(b)
    text = nbformat.writes(a)
    assert not any(model_id in text for model_id in first)
    # every reference is renamed consistently: the view, the state key, the child link
    state = a.metadata["widgets"][execute_notebooks.WIDGET_STATE]["state"]
    box, slider = state
    assert a.cells[0].outputs[0].data["application/vnd.jupyter.widget-view+json"]["model_id"] == box
    assert state[box]["state"]["children"] == [f"IPY_MODEL_{slider}"]
    other = execute_notebooks.stable_widget_ids(widget_notebook(first), "09_sampling.ipynb")
    assert set(other.metadata["widgets"][execute_notebooks.WIDGET_STATE]["state"]) != set(state)


def test_printed_text_is_one_stream_per_run_and_keeps_its_place():
    cell = nbformat.v4.new_code_cell("...")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="first line"),
        nbformat.v4.new_output("stream", name="stdout", text="\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"}),
        nbformat.v4.new_output("stream", name="stdout", text="after the figure\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    execute_notebooks.merge_consecutive_streams(nb)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] == [
        ("stream", "stdout", "first line\n"),
        ("stream", "stderr", "a warning\n"),
        ("display_data", None, None),
        ("stream", "stdout", "after the figure\n"),
    ]


def printed(source: str, text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, id="timing-cell")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nbformat.v4.new_notebook(cells=[cell])


def test_a_new_timing_alone_keeps_the_stored_output_and_anything_else_is_stored():
    stored = printed("time_it()", "trained in 30.3 s, 6,754 tokens/s, speed-up: 6.2×\n")
    keep = execute_notebooks.keep_unchanged_measurements
    timing_only = printed("time_it()", "trained in 277.5 s, 738 tokens/s, speed-up: 5.3×\n")
    keep(stored, timing_only)
    assert timing_only.cells[0].outputs == stored.cells[0].outputs
    real_change = printed("time_it()", "trained in 31.0 s, 6,700 tokens/s, loss 2.14\n")
    keep(stored, real_change)
    assert "loss 2.14" in real_change.cells[0].outputs[0].text
    new_source = printed("time_it(steps=10)", "trained in 3.1 s, 6,754 tokens/s, speed-up: 6.2×\n")
    keep(stored, new_source)
    assert "3.1 s" in new_source.cells[0].outputs[0].text


def test_a_timing_cell_keeps_its_stored_speed_up_record_and_other_cells_do_not():
    def measured(speed_up: str, tags: list[str]) -> nbformat.NotebookNode:
        nb = printed("time_it()", f"speed-up: {speed_up}×\n")
        record = {"application/papermill.record/text/plain": speed_up, "text/plain": ""}
        nb.cells[0].outputs.append(nbformat.v4.new_output("display_data", data=record))
        nb.cells[0].metadata["tags"] = tags
        return nb

    keep = execute_notebooks.keep_unchanged_measurements
    for tags, kept in ((["nbval-ignore-output", "timing"], True), (["nbval-ignore-output"], False)):
        stored, new = measured("6.2", tags), measured("5.3", tags)
        keep(stored, new)
        assert (new.cells[0].outputs == stored.cells[0].outputs) is kept
