"""A Sphinx extension that writes each of a page's `<script>`s once.

sphinx-thebe and sphinx-togglebutton add their inline configuration in `env-before-read-docs`, after
the HTML builder has copied the registered scripts, so Sphinx lists those scripts twice. A repeated
`const THEBE_JS_URL = ...` is a page error on every page ("Identifier 'THEBE_JS_URL' has already
been declared"). Dropping exact repeats (same file, same attributes, same inline body) removes
it and changes nothing else: a script that runs twice with the same source has nothing to add.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _key(script: Any) -> tuple:
    """What makes two entries of `script_files` the same script: its file, attributes and body."""
    if isinstance(script, str):  # Sphinx still accepts bare file names
        return (script, ())
    attributes = tuple(sorted((name, str(value)) for name, value in script.attributes.items()))
    return (str(script.filename or ""), attributes)  # inline: None in one list, "" in the other


def drop_repeated_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    seen: set[tuple] = set()
    unique = []
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
