"""A Sphinx extension that keeps pydata-sphinx-theme's top bar out of sphinx-book-theme's layout.

pydata-sphinx-theme 0.16+ puts a search button in a full-width bar across the top of every page
unless `navbar_persistent` is set; sphinx-book-theme 1.3.0 leaves it unset. On a wide screen that
bar, 64 px high, sits above the sidebar and pushes it down: the sidebar's bottom falls off the
screen, and on a chapter whose link is low in the list the theme scrolls the sidebar so that the
book's title hides behind the bar's search button. The sidebar has its own search field and the
article header its own search icon on a phone, so the bar has nothing to add. Jupyter Book writes
`html_theme_options` itself from `_config.yml` (launch buttons, repository), hence this hook rather
than a value in the configuration, which would replace Jupyter Book's.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config


def no_persistent_navbar(app: Sphinx, config: Config) -> None:
    config.html_theme_options = {**config.html_theme_options, "navbar_persistent": []}


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", no_persistent_navbar)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
