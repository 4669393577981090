"""A Sphinx extension that links every figure to its image file, so a reader can open it full size.

A chapter's figures are drawn 700 to 1300 px wide; on a 390 px phone the page shrinks them to the
column, where axis labels end up a few pixels high. Sphinx links an image to its file only when the
source gives it a size; this does it for every image that is not already a link, so a tap opens the
PNG on its own, where the phone's zoom works. An explorer's images (book/_ext/explorer_figures.py)
are drawn to be read at phone width and swap under the controls: they are left as they are.
"""

from __future__ import annotations

import posixpath
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.osutil import relative_uri

FULL_SIZE = "figure-full-size"


def link_images(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html":
        return
    images = relative_uri(app.builder.get_target_uri(docname), "_images")
    for image in list(doctree.findall(nodes.image)):
        source = image.get("candidates", {}).get("*", image["uri"])
        if (
            isinstance(image.parent, nodes.reference)
            or image.get("loading") == "lazy"  # an explorer's
            or source not in app.env.images
        ):
            continue
        link = nodes.reference("", "", internal=True, classes=[FULL_SIZE])
        link["refuri"] = posixpath.join(images, app.env.images[source][1])
        image.replace_self(link)
        link.append(image)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", link_images)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
