"""A Sphinx extension that keeps the theme's debugging lines out of the reader's browser console.

pydata-sphinx-theme and sphinx-togglebutton log what they do on every page ("[PST]: Changed to
auto mode using the light theme.", "[togglebutton]: Adding toggle buttons to 12 items", and the
search page's inline script: "[PST]: Set focus on search field."): lines for their developers
that a reader who opens the console takes for a problem. After the build, each ``console.log(``
in those files becomes ``(()=>{})(``, a call of a function that does nothing: its arguments are
still evaluated, so the code around it is unchanged, and this holds anywhere a call may stand,
minified or not. Errors and warnings (``console.error``, ``console.warn``) are left as they are:
tests/test_site.py requires that no page logs any message at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

CHATTY_FILES = (
    Path("_static") / "scripts" / "pydata-sphinx-theme.js",
    Path("_static") / "togglebutton.js",
    Path("search.html"),  # the theme's search page focuses its field in an inline script
)
LOG_CALL = "console.log("
SILENT_CALL = "(()=>{})("


def silence_debug_logs(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for relative in CHATTY_FILES:
        path = Path(app.outdir) / relative
        if not path.is_file():
            raise ExtensionError(f"quiet_console: {relative} is missing; did the theme change?")
        script = path.read_text(encoding="utf-8")
        path.write_text(script.replace(LOG_CALL, SILENT_CALL), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", silence_debug_logs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
