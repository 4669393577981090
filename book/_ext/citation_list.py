"""A Sphinx extension that makes the bibliography valid ARIA: its list is no `role="list"`.

Docutils writes the citations of a page as `<div role="list" class="citation-list">` whose children
are `<div role="doc-biblioentry">` holding a backlink `<a role="doc-backlink">`. A `list` may only
contain `listitem`s, so axe-core reports a critical violation (aria-required-children) on the
references page, and screen readers announce a list with no items. Without the role, the container
is a plain group of the citations, which is what it is.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

CITATION_LIST = '<div role="list" class="citation-list">'


def drop_the_list_role(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    if "body" in context:
        context["body"] = context["body"].replace(CITATION_LIST, '<div class="citation-list">')


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", drop_the_list_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
