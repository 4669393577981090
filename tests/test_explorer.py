"""mingrok.explorer: a grid of figures picked by controls, with no kernel.

What the script does in a browser is checked on the built site by tests/test_site.py; here, the
grid, the deduplication, the HTML's independence from computed values, and the errors.
"""

from __future__ import annotations

import json
import re

import pytest

from mingrok.explorer import Control, build_explorer

# matplotlib is a course extra (`pip install "mingrok[course]"`), absent from the package-only job
plt = pytest.importorskip("matplotlib.pyplot")


def line_figure(noise: bool, strength: float, scale: float = 1.0):
    figure, axes = plt.subplots(figsize=(2, 1.5))
    axes.plot([0, 1], [0, scale * (strength if noise else 0.0)])
    return figure


CONTROLS = (
    Control("noise", "router noise", (False, True), False, style="toggle"),
    Control("strength", "noise strength σ", (0.5, 1.0, 2.0), 1.0, style="slider"),
)


def config_of(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json">(.*?)</script>', page).group(1))


def test_every_grid_point_has_a_figure_and_equal_choices_share_one() -> None:
    drawn = []

    def draw(noise, strength):
        drawn.append((noise, strength))
        return line_figure(noise, strength)

    explorer = build_explorer(
        "demo",
        CONTROLS,
        draw,
        alt="A line.",
        same_figure=lambda c: c if c["noise"] else {**c, "strength": 0.5},
    )
    # row-major over (noise, strength): noise off → one figure for every strength
    assert explorer.figure_of == (0, 0, 0, 1, 2, 3)
    assert drawn == [(False, 0.5), (True, 0.5), (True, 1.0), (True, 2.0)]
    assert len(explorer.pngs) == 4 and all(p.startswith(b"\x89PNG") for p in explorer.pngs)


def test_the_html_names_the_grid_and_never_a_computed_value() -> None:
    small = build_explorer("demo", CONTROLS, line_figure, alt="A line.")
    large = build_explorer(
        "demo", CONTROLS, lambda **c: line_figure(**c, scale=1000.0), alt="A line."
    )
    assert small.pngs != large.pngs
    assert small.html() == large.html()  # what nbval compares is the same on every machine
    page = small.html()
    config = config_of(page)
    assert config["shape"] == [2, 3] and config["figureOf"] == list(range(6))
    assert config["labels"] == [["False", "True"], ["0.5", "1.0", "2.0"]]
    # every control has a visible label bound to it (its accessible name); the slider starts on 1.0
    for name in ("noise", "strength"):
        assert (
            f'<label for="explorer-demo-{name}">' in page and f'id="explorer-demo-{name}"' in page
        )
    assert 'value="1" aria-valuetext="1.0"' in page and 'data-control="0">' in page  # unchecked


def test_the_html_names_the_value_that_ran_where_same_figure_replaced_one() -> None:
    """Noise off: every strength ran as 0.5 (listed, the script disables the slider there); noise
    on: 2.0 ran capped at 0.95, a value the slider does not offer."""

    def same(choice):
        if not choice["noise"]:
            return {**choice, "strength": 0.5}
        return {**choice, "strength": min(choice["strength"], 0.95)}

    explorer = build_explorer("demo", CONTROLS, line_figure, alt="A line.", same_figure=same)
    assert explorer.figure_of == (0, 0, 0, 1, 2, 2)
    assert config_of(explorer.html())["ran"] == {
        "1": [None, "0.5"],
        "2": [None, "0.5"],
        "4": [None, "0.95"],
        "5": [None, "0.95"],
    }


def test_a_select_marks_its_initial_value() -> None:
    kind = Control("kind", "kind", ("gaussian", "jitter"), "jitter", labels=("Gaussian", "jitter"))
    page = build_explorer("kinds", [kind], lambda kind: line_figure(True, 1.0), alt="A.").html()
    assert '<option value="0">Gaussian</option><option value="1" selected>jitter</option>' in page


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(name="x y", label="x", values=(1, 2), value=1), "name='x y'"),
        (dict(name="x", label="x", values=(1, 2), value=1, style="knob"), "style='knob'"),
        (dict(name="x", label="x", values=(1,), value=1), "values=[1], need at least 2"),
        (dict(name="x", label="x", values=(1, 2, 3), value=1, style="toggle"), "(off, on)"),
        (dict(name="x", label="x", values=(1, 2), value=3), "value=3 is not one of [1, 2]"),
        (dict(name="x", label="x", values=(1, 2), value=1, labels=("a",)), "1 labels for 2"),
    ],
)
def test_a_bad_control_is_refused_with_a_clear_message(arguments, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Control(**arguments)


def test_a_bad_explorer_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=re.escape("name='Router grid'")):
        build_explorer("Router grid", CONTROLS, line_figure, alt="A.")
    with pytest.raises(ValueError, match="controls is empty"):
        build_explorer("demo", [], line_figure, alt="A.")
    with pytest.raises(ValueError, match=re.escape("repeat: ['noise', 'noise']")):
        build_explorer("demo", [CONTROLS[0], CONTROLS[0]], line_figure, alt="A.")


def test_figures_are_drawn_with_text_large_enough_for_a_phone() -> None:
    sizes = []

    def draw(noise, strength):
        sizes.append(plt.rcParams["font.size"])
        return line_figure(noise, strength)

    build_explorer("demo", CONTROLS, draw, alt="A line.")
    assert set(sizes) == {13} and plt.rcParams["font.size"] == 10  # and only inside the explorer
