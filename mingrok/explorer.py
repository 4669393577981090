"""Figures whose controls work with no kernel: every state precomputed, picked in the browser.

On the published book a chapter has no Python behind it, so an ipywidgets control can only show the
state it was saved in. An explorer instead draws the figure once for every point of a small grid of
control values when the chapter executes, and displays

- one HTML output: the controls (native `<select>`, `<input type="range">` and checkbox, each with a
  visible `<label>` that is also its accessible name) and a few lines of JavaScript, then
- one PNG output per distinct figure.

The script shows the PNG that matches the controls and hides the others, in the book's page (where
book/_ext/explorer_figures.py makes the outputs one figure), in JupyterLab and in Colab (all outputs
of a cell share one container there). A control that cannot change the figure in the current state
(every one of its values shows the same figure: the noise strength while the noise is off) is
disabled, and the image's alt text says so; a control whose value was replaced by another before
drawing (`same_figure`, e.g. a strength capped at 0.95) shows the value that ran beside its own.

The HTML names only the grid, never a computed number, so it is the same on every machine; the PNGs
carry the results, and nbval does not compare images. Without JavaScript the reader sees every
state, one after another.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

STYLES = ("select", "slider", "toggle")
# The element that holds every output of one cell, tried in this order: the book's page (whose
# `.output` is a single output), JupyterLab, classic Jupyter; else (Colab's output frame) the body.
CELL_OUTPUTS = (".cell_output", ".jp-OutputArea", ".output_wrapper")


@dataclass(frozen=True)
class Control:
    """One control of an explorer: the keyword it sets, what the reader reads, the values offered.

    `style` is "select" (a drop-down), "slider" (a range over the values in order) or "toggle" (a
    checkbox; `values` is then `(off, on)`). `labels` shows each value (default: `str(value)`).
    """

    name: str
    label: str
    values: Sequence[Any]
    value: Any
    style: str = "select"
    labels: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_]\w*", self.name):
            raise ValueError(f"Control name={self.name!r}: must be a Python identifier")
        if self.style not in STYLES:
            raise ValueError(f"Control {self.name}: style={self.style!r}, allowed: {STYLES}")
        if len(self.values) < 2:
            raise ValueError(f"Control {self.name}: values={list(self.values)}, need at least 2")
        if self.style == "toggle" and len(self.values) != 2:
            raise ValueError(f"Control {self.name}: a toggle takes (off, on), got {self.values}")
        if self.value not in self.values:
            raise ValueError(
                f"Control {self.name}: value={self.value!r} is not one of {list(self.values)}"
            )
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(
                f"Control {self.name}: {len(self.labels)} labels for {len(self.values)} values"
            )

    @property
    def shown(self) -> list[str]:
        return list(self.labels) if self.labels is not None else [str(v) for v in self.values]


@dataclass(frozen=True)
class Explorer:
    """A grid of figures: `figure_of[i]` is the figure shown for the i-th point of the grid.

    Grid points are numbered in row-major order over `controls` (the last control varies fastest).
    """

    name: str
    controls: tuple[Control, ...]
    pngs: tuple[bytes, ...]
    figure_of: tuple[int, ...]
    alt: str
    # grid point -> per control, the label of the value that ran where `same_figure` replaced it
    ran: tuple[tuple[str | None, ...] | None, ...] = ()

    def html(self) -> str:
        """The controls and the script; depends on the grid only, never on a computed value."""
        config = {
            "shape": [len(c.values) for c in self.controls],
            "figureOf": list(self.figure_of),
            "labels": [c.shown for c in self.controls],
            "names": [c.label for c in self.controls],
            "alt": self.alt,
            "outputs": list(CELL_OUTPUTS),
            "ran": {str(point): labels for point, labels in enumerate(self.ran) if labels},
        }
        rows = "\n".join(_control_html(self.name, i, c) for i, c in enumerate(self.controls))
        return (
            f'<div class="mingrok-explorer" id="explorer-{self.name}">\n'
            f'<style>{_CSS}</style>\n<div class="mingrok-explorer-controls">\n{rows}\n</div>\n'
            f'<script type="application/json">{html.escape(json.dumps(config), quote=False)}'
            f"</script>\n<script>{_SCRIPT}</script>\n</div>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, Image, display

        display(HTML(self.html()))
        for png in self.pngs:
            display(Image(data=png, format="png"))


def build_explorer(
    name: str,
    controls: Sequence[Control],
    draw: Callable[..., Any],
    *,
    alt: str,
    same_figure: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    dpi: int = 100,
    font_size: float = 13,
) -> Explorer:
    """Draw `draw(**choice)` (a matplotlib Figure) for every choice of the controls' values.

    `same_figure(choice)` maps a choice to the one whose figure it shares (for example, with the
    noise off, every noise strength shows the same figure), so each distinct figure is drawn and
    stored once. `alt` describes the figure; each image's alt text adds the values it shows.
    Figures are drawn with `font_size` points (matplotlib: 10): a figure 5 in wide is shown about
    60 % smaller on a phone, where 13 pt text is still about 10 px tall.
    """
    import matplotlib.pyplot as plt

    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"build_explorer: name={name!r}, use lower-case letters, digits and -")
    if not controls:
        raise ValueError("build_explorer: controls is empty; an explorer needs at least one")
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise ValueError(f"build_explorer: control names repeat: {names}")
    canonical = same_figure or (lambda choice: choice)
    pngs: list[bytes] = []
    index_of: dict[tuple, int] = {}
    figure_of = []
    ran = []
    for values in itertools.product(*(c.values for c in controls)):
        choice = canonical(dict(zip(names, values, strict=True)))
        key = tuple(choice[n] for n in names)
        replaced = tuple(
            None if choice[c.name] == value else _label_of(c, choice[c.name])
            for c, value in zip(controls, values, strict=True)
        )
        ran.append(replaced if any(label is not None for label in replaced) else None)
        if key not in index_of:
            with plt.rc_context({"font.size": font_size}):
                figure = draw(**choice)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=dpi)
            plt.close(figure)
            index_of[key] = len(pngs)
            pngs.append(buffer.getvalue())
        figure_of.append(index_of[key])
    return Explorer(name, tuple(controls), tuple(pngs), tuple(figure_of), alt, tuple(ran))


def _label_of(control: Control, value: Any) -> str:
    """How `control` shows `value`: its own label for one of its values, else the value."""
    if value in control.values:
        return control.shown[list(control.values).index(value)]
    return f"{value:g}" if isinstance(value, float) else str(value)


def _control_html(explorer: str, index: int, control: Control) -> str:
    ident = f"explorer-{explorer}-{control.name}"
    label = html.escape(control.label)
    start = list(control.values).index(control.value)
    if control.style == "toggle":
        checked = " checked" if start == 1 else ""
        field = f'<input type="checkbox" id="{ident}" data-control="{index}"{checked}>'
        return f'<div><label for="{ident}">{label}</label> {field}</div>'
    if control.style == "slider":
        shown = html.escape(control.shown[start])
        field = (
            f'<input type="range" id="{ident}" data-control="{index}" min="0" '
            f'max="{len(control.values) - 1}" step="1" value="{start}" aria-valuetext="{shown}">'
            f' <output for="{ident}">{shown}</output>'
        )
        return f'<div><label for="{ident}">{label}</label> {field}</div>'
    options = "".join(
        f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(text)}</option>'
        for i, text in enumerate(control.shown)
    )
    field = f'<select id="{ident}" data-control="{index}">{options}</select>'
    return f'<div><label for="{ident}">{label}</label> {field}</div>'


# Controls wrap on a phone; the images are scaled to the column by the page itself.
_CSS = (
    ".mingrok-explorer-controls{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.5em 0}"
    ".mingrok-explorer-controls>div{display:flex;align-items:center;gap:.4em;max-width:100%}"
    ".mingrok-explorer-controls input[type=range]{width:10em;max-width:50vw}"
    ".mingrok-explorer-controls output{min-width:3em}"
)

# Finds the images that follow the explorer in its cell's outputs, then shows the one the controls
# select. Grid point = row-major index over the controls; config.figureOf maps it to an image.
_SCRIPT = """
(function () {
  var script = document.currentScript;
  var root = script.parentNode;
  var config = JSON.parse(script.previousElementSibling.textContent);
  function start() {
    var cell = config.outputs.map(function (s) { return root.closest(s); }).filter(Boolean)[0];
    cell = cell || document.body;
    function images() {  // the cell's images after the controls (JupyterLab adds them one by one)
      return Array.prototype.filter.call(cell.querySelectorAll("img"), function (img) {
        return root.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING;
      });
    }
    var fields = root.querySelectorAll("[data-control]");
    function position(field) {
      return field.type === "checkbox" ? (field.checked ? 1 : 0) : Number(field.value);
    }
    function pointOf(positions) {
      return positions.reduce(function (point, at, i) { return point * config.shape[i] + at; }, 0);
    }
    function update() {
      var positions = Array.prototype.map.call(fields, position);
      var point = pointOf(positions), ran = config.ran[String(point)] || [];
      var words = [], idle = [];
      fields.forEach(function (field, i) {
        // Inert here when every value of this control, the others as they are, shows one figure.
        var figures = {};
        for (var v = 0; v < config.shape[i]; v++) {
          var other = positions.slice();
          other[i] = v;
          figures[config.figureOf[pointOf(other)]] = true;
        }
        field.disabled = Object.keys(figures).length < 2;
        var text = config.labels[i][positions[i]];
        if (ran[i] && !field.disabled) text += " \u2192 " + ran[i];  // the value that ran
        if (field.disabled) idle.push(config.names[i]);
        else words.push(config.names[i] + " " + text);
        if (field.type === "range") {
          field.setAttribute("aria-valuetext", text);
          var readout = field.nextElementSibling;  // changed only when it differs: see observer
          if (readout.textContent !== text) readout.textContent = text;
        }
      });
      var alt = config.alt + " Showing: " + words.join(", ") + ".";
      if (idle.length) {
        alt += " " + idle.join(" and ") + (idle.length > 1 ? " have" : " has") +
          " no effect in this setting and " + (idle.length > 1 ? "are" : "is") + " disabled.";
      }
      var shown = config.figureOf[point];
      images().forEach(function (img, i) {  // style, not `hidden`: a theme may style img display
        img.style.display = i === shown ? "" : "none";
        if (i === shown && img.alt !== alt) img.alt = alt;
      });
      root.setAttribute("data-figure", String(shown));
    }
    fields.forEach(function (field) {
      field.addEventListener("input", update);
      field.addEventListener("change", update);
    });
    update();
    new MutationObserver(update).observe(cell, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else setTimeout(start, 0);
})();
"""
