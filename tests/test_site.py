"""The published site as a reader sees it, offline, in headless Chromium at phone size.

The book is built as `make book` builds it and served on 127.0.0.1; every request to any other host
is refused and reported. Each page is opened at 390 × 844 (a phone) and must: make no request
outside the site, raise no JavaScript error, load every file it asks for, typeset every maths
element, show every image, not scroll sideways, and have no critical or serious axe-core violation.
On every page with an explorer (mingrok/explorer.py), moving each control must change the figure.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright;
never `playwright install`. Without it these tests fail: they are the only check of the site's
behaviour in a browser.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import load_script
from tests.test_book import ROOT, build, pages

# One browser set-up for every offline check (the widget script's): where Chromium is, its flags.
_offline = load_script("check_widgets_offline")
CHROMIUM, CHROMIUM_ARGS = _offline.CHROMIUM, _offline.CHROMIUM_ARGS
PHONE = {"width": 390, "height": 844}
SEARCH_TIMEOUT_MS = 30_000
SERIOUS = ("critical", "serious")
EXPLORER = ".mingrok-explorer"


@dataclass
class Visit:
    """What one page did in the browser."""

    page: str
    outside: list[str] = field(default_factory=list)  # requests to other hosts (refused)
    errors: list[str] = field(default_factory=list)  # JavaScript errors
    missing: list[str] = field(default_factory=list)  # the site's own files that failed
    raw_maths: list[str] = field(default_factory=list)  # maths elements left as TeX
    broken_images: list[str] = field(default_factory=list)
    overflow_px: int = 0  # how far the page scrolls sideways
    violations: list[str] = field(default_factory=list)  # critical/serious axe-core rules
    inert_controls: list[str] = field(default_factory=list)  # explorer controls that change nothing
    explorers: int = 0
    links: set[str] = field(default_factory=set)  # the site's own URLs the page links to


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build(ROOT, tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def origin(site: Path) -> Iterator[str]:
    yield from serve(site)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def visits(site: Path, origin: str, browser) -> list[Visit]:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    return [visit(browser, axe, origin, page.relative_to(site).as_posix()) for page in pages(site)]


def visit(browser, axe, origin: str, relative: str) -> Visit:
    result = Visit(relative)
    context = browser.new_context(viewport=PHONE)

    def route(request_route) -> None:
        if request_route.request.url.startswith(origin + "/"):
            request_route.continue_()
        else:
            result.outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: result.errors.append(str(error)))

    def on_response(response) -> None:
        if response.url.startswith(origin) and response.status >= 400:
            result.missing.append(response.url)

    page.on("response", on_response)
    page.goto(f"{origin}/{relative}", wait_until="load")
    page.wait_for_load_state("networkidle")
    # MathJax's first typesetting pass (if MathJax did not load, the maths stays raw: see below)
    page.evaluate("async () => { if (window.MathJax?.startup) await MathJax.startup.promise; }")
    result.raw_maths = page.eval_on_selector_all(
        ".math", "els => els.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent)"
    )
    result.broken_images = page.eval_on_selector_all(
        "img",
        "els => els.filter(e => e.style.display !== 'none' && !(e.complete && e.naturalWidth > 0))"
        ".map(e => e.getAttribute('src'))",
    )
    result.overflow_px = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    result.links = set(
        page.eval_on_selector_all(
            "a[href]",
            f"els => els.map(e => e.href.split('#')[0]).filter(h => h.startsWith('{origin}/'))",
        )
    )
    # axe-core re-fetches stylesheets for its own use (and resolves their @imports against the
    # site's root): the page's requests are the ones made before it runs.
    page.remove_listener("response", on_response)
    report = axe.run(page).response
    result.violations = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in report["violations"]
        if v["impact"] in SERIOUS
    ]
    result.explorers = page.locator(EXPLORER).count()
    for index in range(result.explorers):
        result.inert_controls += inert_controls(page.locator(EXPLORER).nth(index))
    context.close()
    return result


def inert_controls(explorer) -> list[str]:
    """Controls of `explorer` that never change the figure shown when moved through their values.

    Controls are moved in page order, each left on its last value: a toggle that enables the
    controls after it (router noise → its kind and strength) comes first and ends switched on.
    """
    inert = []
    for field_ in explorer.locator("[data-control]").all():
        shown = {figure_shown(explorer)}
        kind = field_.evaluate("e => e.type")
        if kind == "checkbox":
            for _ in range(2):
                field_.click()
                shown.add(figure_shown(explorer))
            field_.click()  # end on: enabled
            shown.add(figure_shown(explorer))
        elif kind == "range":
            top = int(field_.get_attribute("max"))
            for value in range(top + 1):
                field_.fill(str(value))
                shown.add(figure_shown(explorer))
        else:
            for value in field_.evaluate("e => [...e.options].map(o => o.value)"):
                field_.select_option(value)
                shown.add(figure_shown(explorer))
        if len(shown) < 2:
            inert.append(field_.get_attribute("id"))
    return inert


def figure_shown(explorer) -> str:
    """The src of the one image the explorer shows (fails if it shows none or several)."""
    sources = explorer.evaluate(
        """root => {
          const cell = root.closest('.cell_output') || document.body;
          return [...cell.querySelectorAll('img')]
            .filter(img => img.style.display !== 'none' && img.offsetParent !== null)
            .map(img => img.getAttribute('src'));
        }"""
    )
    assert len(sources) == 1, f"an explorer shows {len(sources)} images: {sources}"
    return sources[0]


def failures(visits: list[Visit], attribute: str) -> list[str]:
    return [f"{v.page}: {getattr(v, attribute)}" for v in visits if getattr(v, attribute)]


# ----------------------------------------------------------------------------- the assertions


def test_no_page_requests_anything_outside_the_site(visits) -> None:
    assert not failures(visits, "outside")


def test_no_page_raises_a_javascript_error(visits) -> None:
    assert not failures(visits, "errors")


def test_every_file_a_page_loads_exists(visits) -> None:
    assert not failures(visits, "missing")


def test_every_maths_element_is_typeset_offline(visits) -> None:
    assert not failures(visits, "raw_maths")
    assert sum(v.page.startswith("chapters/") for v in visits) > 0


def test_every_image_shows(visits) -> None:
    assert not failures(visits, "broken_images")


def test_every_link_to_the_site_resolves(site: Path, visits) -> None:
    from urllib.request import urlopen

    links = sorted(set().union(*(v.links for v in visits)))
    assert links, "no page links to another page of the site"
    broken = []
    for link in links:
        try:
            with urlopen(link) as response:
                response.read(1)
        except OSError as error:
            broken.append(f"{link}: {error}")
    assert not broken, "\n".join(broken)


def test_no_page_scrolls_sideways_on_a_phone(visits) -> None:
    assert not [f"{v.page}: {v.overflow_px} px" for v in visits if v.overflow_px > 0]


def test_no_page_has_a_critical_or_serious_accessibility_violation(visits) -> None:
    assert not failures(visits, "violations")


def test_every_explorer_control_changes_its_figure(visits) -> None:
    assert not failures(visits, "inert_controls")


def test_every_chapter_with_a_live_widget_has_an_explorer_on_its_page(visits) -> None:
    """A chapter's ipywidgets need a kernel; on the site its explorer is what responds."""
    with_widgets = {
        f"chapters/{path.stem}.html"
        for path in (ROOT / "chapters").glob("*.ipynb")
        if "ipywidgets"
        in "".join("".join(cell["source"]) for cell in json.loads(path.read_text("utf-8"))["cells"])
    }
    explored = {v.page for v in visits if v.explorers}
    assert with_widgets <= explored, f"no explorer on {sorted(with_widgets - explored)}"


def test_search_finds_pages_offline(origin: str, browser) -> None:
    context = browser.new_context(viewport=PHONE)
    context.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(origin + "/") else r.abort(),
    )
    page = context.new_page()
    page.goto(f"{origin}/search.html?q=router", wait_until="load")
    page.wait_for_selector("#search-results li", timeout=SEARCH_TIMEOUT_MS)
    found = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.href)")
    context.close()
    assert any("05_router" in href for href in found), found
