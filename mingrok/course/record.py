"""Metrics a chapter records (`record("val_nats_per_char", 1.87)`) and the runner reads back.

A recorded value is a display output in the executed notebook itself, so a run leaves no side
files and a copy of the notebook carries its results. The output follows the papermill/scrapbook
"glue" convention that MyST-NB understands: the data sits under the
``application/papermill.record/`` MIME prefix with ``metadata.scrapbook.name``, which MyST-NB
removes from the page (and offers to ``{glue:text}`` roles), while the empty ``text/plain`` beside
it makes Jupyter, Colab and VS Code show nothing rather than "no renderer for this MIME type".
The value is stored as its ``repr``, a Python literal that :func:`read_records` turns back into
the same value.
"""

from __future__ import annotations

import ast
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # chapters import this module in Colab, where only IPython is certain
    import nbformat

RECORD_PREFIX = "application/papermill.record/"
RECORD_MIME = RECORD_PREFIX + "text/plain"
NAME_PATTERN = re.compile(r"^[A-Za-z_][\w.-]*$")
LITERAL_TYPES = (bool, int, float, str, type(None))


def record(name: str, value: object) -> None:
    """Store ``value`` under ``name`` in this notebook's outputs, invisibly, for `course run`.

    ``value`` is a number, string, bool or None, or a list, tuple or dict of those (a 0-d tensor
    or NumPy scalar is converted with ``.item()``). Record each name once per chapter: the book
    build treats a repeated name as an error. Outside IPython this does nothing.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"record name {name!r} is not valid: use letters, digits, '_', '.' or '-', "
            "starting with a letter or '_'"
        )
    value = _plain(value)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    display(
        {RECORD_MIME: repr(value), "text/plain": ""},
        metadata={"scrapbook": {"name": name, "mime_prefix": RECORD_PREFIX}},
        raw=True,
    )


def read_records(nb: nbformat.NotebookNode) -> dict[str, object]:
    """Every value an executed notebook recorded, by name (a name recorded twice: the last)."""
    records: dict[str, object] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook", {})
            if output.get("output_type") != "display_data" or RECORD_MIME not in output.data:
                continue
            if scrap.get("mime_prefix") == RECORD_PREFIX and "name" in scrap:
                records[scrap["name"]] = _from_repr(output.data[RECORD_MIME])
    return records


def _plain(value: object) -> object:
    """``value`` as plain Python literals, or a TypeError naming what is accepted."""
    if hasattr(value, "item") and getattr(value, "ndim", getattr(value, "shape", None)) in (0, ()):
        value = value.item()  # a 0-d tensor or a NumPy scalar
    if isinstance(value, LITERAL_TYPES):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(item) for key, item in value.items()}
    raise TypeError(
        f"cannot record a {type(value).__name__}: record a number, string, bool or None, or a "
        "list, tuple or dict (with string keys) of those"
    )


def _from_repr(text: str) -> object:
    """The value whose ``repr`` is ``text`` (``nan`` and ``inf`` included)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isnan(value) or math.isinf(value) else text
