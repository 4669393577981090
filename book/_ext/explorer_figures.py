"""A Sphinx extension that makes an explorer (mingrok/explorer.py) one numbered figure.

An explorer's cell displays its controls, then one image per state. With a caption in the cell's
metadata, MyST-NB wraps every one of those outputs in a figure of its own, each numbered: the page
would count 37 figures where the reader sees one, and the number under the picture would change as
the controls move. After each page is read (before Sphinx numbers the figures), this merges the
outputs of such a cell into its first figure: one caption, one number, every image inside.

Its images load lazily (`loading="lazy"`): the explorer's script hides every state but the one
chosen before the reader scrolls to it, and a hidden lazy image is never fetched, so a state's
figure is downloaded only when it is shown (chapter 5 has 27 of them).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

MARK = 'class="mingrok-explorer"'


def _is_explorer(figure: nodes.figure) -> bool:
    return any(MARK in raw.astext() for raw in figure.findall(nodes.raw))


def merge_explorer_figures(app: Sphinx, doctree: nodes.document) -> None:
    for outputs in list(doctree.findall(nodes.container)):
        if outputs.get("nb_element") != "cell_code_output":
            continue
        figures = [child for child in outputs.children if isinstance(child, nodes.figure)]
        if not figures or not _is_explorer(figures[0]):
            continue
        first = figures[0]
        captions = [child for child in first.children if isinstance(child, nodes.caption)]
        for caption in captions:
            first.remove(caption)
        for figure in figures[1:]:
            first.extend(c for c in figure.children if not isinstance(c, nodes.caption))
            outputs.remove(figure)
        first.extend(captions)
        for image in first.findall(nodes.image):
            image["loading"] = "lazy"


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", merge_explorer_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
