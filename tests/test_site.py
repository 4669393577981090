"""The published site as a reader sees it, offline, in headless Chromium on a phone and a laptop.

The book is built as `make book` builds it and served on 127.0.0.1; every request to any other host
is refused and reported. Each page is opened at 390 × 844 (a phone) and at 1280 × 800 (a laptop)
and must: make no request outside the site, raise no JavaScript error and log no error or warning,
load every file it asks for, stay under its weight at first load, typeset every maths element,
show every image, not scroll sideways, show every wide equation as continuing, link every figure it
shrinks to its full-size image, and name every fold button after what it folds. On the phone it
must have no critical or serious axe-core violation, and on every page with an explorer
(mingrok/explorer.py) moving each control must change the figure, whose image loads only then. On
the laptop nothing may cover the sidebar, which must fit the screen.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright;
never `playwright install`. Without it these tests fail: they are the only check of the site's
behaviour in a browser.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import threading
import unicodedata
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
LAPTOP = {"width": 1280, "height": 800}
# Bytes a page may fetch before the reader does anything (issue 22): chapters carry figures.
MAX_PAGE_BYTES = 2_500_000
MAX_CHAPTER_BYTES = 4_000_000
SEARCH_TIMEOUT_MS = 30_000
SERIOUS = ("critical", "serious")
EXPLORER = ".mingrok-explorer"
PRINTED_CHAPTER = "chapters/05_router.html"  # code cells, solutions, an explorer, wide maths


@dataclass
class Visit:
    """What one page did in the browser."""

    page: str
    width: int = PHONE["width"]
    outside: list[str] = field(default_factory=list)  # requests to other hosts (refused)
    errors: list[str] = field(default_factory=list)  # JavaScript errors
    console: list[str] = field(default_factory=list)  # every console message, of any level
    first_load_bytes: int = 0  # what the page fetched before the reader did anything
    hidden_states: int = 0  # explorer images not shown at first
    hidden_states_fetched: list[str] = field(default_factory=list)  # ... and fetched all the same
    mute_wide_equations: list[str] = field(default_factory=list)  # cut off with no cue
    unlinked_figures: list[str] = field(default_factory=list)  # shrunk, no way to full size
    unnamed_toggles: list[str] = field(default_factory=list)  # fold buttons named generically
    covered_sidebar: list[str] = field(default_factory=list)  # laptop: what hides the sidebar
    missing: list[str] = field(default_factory=list)  # the site's own files that failed
    raw_maths: list[str] = field(default_factory=list)  # maths elements left as TeX
    broken_images: list[str] = field(default_factory=list)
    overflow_px: int = 0  # how far the page scrolls sideways
    violations: list[str] = field(default_factory=list)  # critical/serious axe-core rules
    inert_controls: list[str] = field(default_factory=list)  # explorer controls that change nothing
    misleading_controls: list[str] = field(default_factory=list)  # enabled but inert, or reverse
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


@pytest.fixture(scope="module")
def laptop_visits(site: Path, origin: str, browser) -> list[Visit]:
    return [
        visit(browser, None, origin, page.relative_to(site).as_posix(), LAPTOP)
        for page in pages(site)
    ]


@pytest.fixture(scope="module", params=["phone", "laptop"])
def both(request, visits, laptop_visits) -> list[Visit]:
    """The visits at one width, then the other: a check that holds for readers on both."""
    return visits if request.param == "phone" else laptop_visits


def visit(browser, axe, origin: str, relative: str, viewport: dict = PHONE) -> Visit:
    """Open `relative` at `viewport`; axe-core and the explorers' controls run on the phone only."""
    result = Visit(relative, viewport["width"])
    context = browser.new_context(viewport=viewport)

    def route(request_route) -> None:
        if request_route.request.url.startswith(origin + "/"):
            request_route.continue_()
        else:
            result.outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: result.errors.append(str(error)))

    def on_console(message) -> None:
        result.console.append(f"{message.type}: {message.text}")

    page.on("console", on_console)

    def on_response(response) -> None:
        if response.url.startswith(origin) and response.status >= 400:
            result.missing.append(response.url)

    fetched: dict[str, int] = {}

    def on_finished(request) -> None:
        fetched.setdefault(request.url, request.sizes()["responseBodySize"])

    page.on("response", on_response)
    page.on("requestfinished", on_finished)
    page.goto(f"{origin}/{relative}", wait_until="load")
    page.wait_for_load_state("networkidle")
    page.remove_listener("requestfinished", on_finished)
    result.first_load_bytes = sum(fetched.values())
    hidden_states = page.eval_on_selector_all(
        f".cell_output:has({EXPLORER}) img",
        "els => els.filter(e => e.style.display === 'none').map(e => e.src)",
    )
    result.hidden_states = len(hidden_states)
    result.hidden_states_fetched = [src for src in hidden_states if src in fetched]
    # A lazy image is fetched when it nears the screen: bring each shown one there, as a reader
    # scrolling down would, and wait for it.
    page.evaluate(
        """async () => {
          for (const img of document.querySelectorAll('img[loading=lazy]')) {
            if (img.style.display === 'none') continue;
            img.scrollIntoView();
            await img.decode().catch(() => {});
          }
          window.scrollTo(0, 0);
        }"""
    )
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
    result.mute_wide_equations = page.evaluate(MUTE_WIDE_EQUATIONS)
    result.unlinked_figures = page.evaluate(UNLINKED_FIGURES)
    result.unnamed_toggles = page.eval_on_selector_all(
        ".toggle-button",
        "els => els.filter(e => !e.getAttribute('aria-label') "
        "|| e.getAttribute('aria-label') === 'Toggle hidden content').map(e => e.id)",
    )
    if viewport["width"] >= LAPTOP["width"]:
        result.covered_sidebar = page.evaluate(COVERED_SIDEBAR)
    result.links = set(
        page.eval_on_selector_all(
            "a[href]",
            f"els => els.map(e => e.href.split('#')[0]).filter(h => h.startsWith('{origin}/'))",
        )
    )
    # axe-core re-fetches stylesheets for its own use (and resolves their @imports against the
    # site's root): the page's requests are the ones made before it runs.
    page.remove_listener("response", on_response)
    page.remove_listener("console", on_console)
    if axe is None:
        context.close()
        return result
    report = axe.run(page).response
    result.violations = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in report["violations"]
        if v["impact"] in SERIOUS
    ]
    result.explorers = page.locator(EXPLORER).count()
    for index in range(result.explorers):
        result.misleading_controls += misleading_controls(page.locator(EXPLORER).nth(index))
    for index in range(result.explorers):
        result.inert_controls += inert_controls(page.locator(EXPLORER).nth(index))
    context.close()
    return result


# Display equations wider than their box: each must be reachable by keyboard (tabindex) and show
# that it continues (the scroll shadows of static/book.css). A wide box with neither reads as cut.
MUTE_WIDE_EQUATIONS = """() => [...document.querySelectorAll('mjx-container[display=true]')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .filter(e => {
    const style = getComputedStyle(e);
    const shadows = (style.backgroundImage.match(/radial-gradient/g) || []).length;
    return !(e.tabIndex >= 0 && ['auto', 'scroll'].includes(style.overflowX) && shadows >= 2
             && style.backgroundAttachment.includes('scroll'));
  })
  .map(e => e.textContent.slice(0, 60))"""

# Images shown smaller than they are drawn (a figure squeezed into a phone's column) must be a link
# to their own file, which the reader can open and zoom. Explorer images are drawn for the phone.
UNLINKED_FIGURES = """() => [...document.querySelectorAll('article img')]
  .filter(img => img.offsetParent !== null && img.naturalWidth > img.clientWidth * 1.05)
  .filter(img => !img.closest('.cell_output')?.querySelector('.mingrok-explorer'))
  .filter(img => { const a = img.closest('a[href]'); return !a || a.href !== img.src; })
  .map(img => img.getAttribute('src'))"""

# On a laptop the sidebar starts at the top of the screen and ends inside it, and at the top of the
# sidebar (its title, or the first link once scrolled) the point a reader looks at is the sidebar's.
COVERED_SIDEBAR = """() => {
  const sidebar = document.querySelector('.bd-sidebar-primary');
  if (!sidebar) return [];
  const box = sidebar.getBoundingClientRect(), problems = [];
  if (box.top > 1) problems.push(`it starts ${box.top}px down`);
  if (box.bottom > innerHeight + 1) problems.push(`it ends ${box.bottom - innerHeight}px below`);
  for (const y of [8, 24, 48]) {
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + y);
    if (hit && !sidebar.contains(hit)) problems.push(`${hit.className} over it at +${y}px`);
  }
  return problems;
}"""


def misleading_controls(explorer) -> list[str]:
    """Controls of `explorer`, in the state the page opens in, that are enabled although no value
    of theirs changes the figure, or disabled although one does, or disabled and not said so in the
    image's alt text. Values are set by script, as a disabled control takes no input."""
    problems = []
    for field_ in explorer.locator("[data-control]").all():
        figures = field_.evaluate(
            """field => {
              const root = field.closest('.mingrok-explorer'), seen = new Set();
              const values = field.type === 'checkbox' ? [false, true]
                : field.type === 'range' ? [...Array(Number(field.max) + 1).keys()].map(String)
                : [...field.options].map(o => o.value);
              const start = field.type === 'checkbox' ? field.checked : field.value;
              const set = v => {
                if (field.type === 'checkbox') field.checked = v; else field.value = v;
                field.dispatchEvent(new Event('change'));
              };
              for (const v of values) { set(v); seen.add(root.getAttribute('data-figure')); }
              set(start);
              return seen.size;
            }"""
        )
        name = field_.get_attribute("id")
        disabled = field_.is_disabled()
        if disabled != (figures < 2):
            problems.append(f"{name}: {figures} figures, {'disabled' if disabled else 'enabled'}")
        label = explorer.locator(f'label[for="{name}"]').inner_text()
        if disabled and label not in figure_alt(explorer):
            problems.append(f"{name}: disabled, and the alt text does not say so")
    return problems


def figure_alt(explorer) -> str:
    return explorer.evaluate(
        """root => [...(root.closest('.cell_output') || document.body).querySelectorAll('img')]
          .filter(img => img.style.display !== 'none').map(img => img.alt).join(' ')"""
    )


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
    """The src of the one image the explorer shows, once loaded (it loads only when shown)."""
    sources = explorer.evaluate(
        """async root => {
          const cell = root.closest('.cell_output') || document.body;
          const shown = [...cell.querySelectorAll('img')]
            .filter(img => img.style.display !== 'none' && img.offsetParent !== null);
          for (const img of shown) { img.scrollIntoView(); await img.decode().catch(() => {}); }
          return shown.map(img => [img.getAttribute('src'), img.naturalWidth]);
        }"""
    )
    assert len(sources) == 1, f"an explorer shows {len(sources)} images: {sources}"
    ((src, width),) = sources
    assert width > 0, f"the explorer's image {src} did not load when shown"
    return src


def failures(visits: list[Visit], attribute: str) -> list[str]:
    found = ((v, getattr(v, attribute)) for v in visits)
    return [f"{v.page} @{v.width}: {value}" for v, value in found if value]


# ----------------------------------------------------------------------------- the assertions


def test_no_page_requests_anything_outside_the_site(both) -> None:
    assert not failures(both, "outside")


def test_no_page_raises_a_javascript_error(both) -> None:
    assert not failures(both, "errors")


def test_every_file_a_page_loads_exists(both) -> None:
    assert not failures(both, "missing")


def test_every_maths_element_is_typeset_offline(both) -> None:
    assert not failures(both, "raw_maths")
    assert sum(v.page.startswith("chapters/") for v in both) > 0


def test_no_page_logs_anything_to_the_console(both) -> None:
    """Not even the theme's debugging lines (book/_ext/quiet_console.py)."""
    assert not failures(both, "console")


def test_every_page_is_light_at_first_load(both) -> None:
    """Icons come from an inline sprite (book/_ext/icon_sprite.py), not 1.5 MB of fontawesome.js."""
    heavy = [
        f"{v.page} @{v.width}: {v.first_load_bytes:,} bytes"
        for v in both
        if v.first_load_bytes
        > (MAX_CHAPTER_BYTES if v.page.startswith("chapters/") else MAX_PAGE_BYTES)
    ]
    assert not heavy
    assert all(v.first_load_bytes > 0 for v in both)


def test_an_explorer_fetches_only_the_state_it_shows(both) -> None:
    assert not failures(both, "hidden_states_fetched")
    assert sum(v.hidden_states for v in both) > 0, "no explorer with hidden states was seen"


def test_every_wide_equation_shows_it_continues(both) -> None:
    assert not failures(both, "mute_wide_equations")


def test_every_shrunk_figure_opens_full_size(both) -> None:
    assert not failures(both, "unlinked_figures")


def test_every_fold_button_is_named_after_its_content(both) -> None:
    assert not failures(both, "unnamed_toggles")


def test_nothing_covers_the_sidebar_on_a_laptop(laptop_visits) -> None:
    assert not failures(laptop_visits, "covered_sidebar")


def test_every_image_shows(both) -> None:
    assert not failures(both, "broken_images")


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


def test_an_explorer_disables_and_names_the_controls_that_cannot_change_its_figure(
    visits,
) -> None:
    assert not failures(visits, "misleading_controls")


def test_the_router_explorer_shows_the_jitter_strength_that_ran(origin: str, browser) -> None:
    """Jitter's ε stays below 1 (chapter 5): σ = 2 asks for more, and 0.95 is what ran."""
    context = browser.new_context(viewport=PHONE)
    context.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(origin + "/") else r.abort(),
    )
    page = context.new_page()
    page.goto(f"{origin}/chapters/05_router.html", wait_until="networkidle")
    page.check("#explorer-router-noise_on")
    page.select_option("#explorer-router-kind", label="jitter")
    page.fill("#explorer-router-strength", "2")
    readout = page.locator("#explorer-router-strength + output").inner_text()
    alt = figure_alt(page.locator("#explorer-router"))
    context.close()
    assert readout == "2.0 \u2192 0.95", readout
    assert "noise strength σ 2.0 \u2192 0.95" in alt, alt


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


def test_a_chapter_prints_to_a4_with_every_code_line_whole(origin: str, browser) -> None:
    """Chromium prints a chapter to PDF: every code line the printed page shows is in the PDF's
    text whole (a line cut at the column's edge, or a box clipped at the page's foot, loses its
    end), and no fold button's "Click to hide" or "Click to show" is printed. The text is read in
    layout mode, in the order it stands on the page (the content stream's order differs)."""
    from pypdf import PdfReader

    context = browser.new_context()
    context.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(origin + "/") else r.abort(),
    )
    page = context.new_page()
    page.goto(f"{origin}/{PRINTED_CHAPTER}", wait_until="networkidle")
    page.evaluate("async () => { if (window.MathJax?.startup) await MathJax.startup.promise; }")
    page.emulate_media(media="print")
    code_lines = page.evaluate(
        """() => [...document.querySelectorAll('pre')]
          .filter(pre => pre.checkVisibility({visibilityProperty: true}))
          .flatMap(pre => pre.innerText.split('\\n'))
          .filter(line => line.trim())"""
    )
    pdf = PdfReader(io.BytesIO(page.pdf(format="A4")))
    context.close()
    pages = (sheet.extract_text(extraction_mode="layout") for sheet in pdf.pages)
    text = unicodedata.normalize("NFKC", "\n".join(pages))

    def squeeze(line: str) -> str:  # a wrapped line comes back with a line break inside
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", line))

    printed = squeeze(text)
    cut = [line for line in code_lines if squeeze(line) not in printed]
    assert len(code_lines) > 50, f"only {len(code_lines)} code lines printed"
    assert not cut, f"{len(cut)} of {len(code_lines)} code lines cut on paper: {cut[:5]}"
    assert "Click to" not in text


def test_search_snippets_show_maths_as_text(origin: str, browser) -> None:
    """A result's snippet quotes the page's text, where maths is TeX until typeset: "bfloat16"
    finds chapter 10's KV-cache sum, which read "\\[ 64 \\text{ layers} \\times 2 ..." before
    static/book.js rewrote it as "64 layers × 2 ..."."""
    context = browser.new_context(viewport=PHONE)
    context.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(origin + "/") else r.abort(),
    )
    page = context.new_page()
    page.goto(f"{origin}/search.html?q=bfloat16", wait_until="load")
    page.wait_for_function(
        "() => { const items = document.querySelectorAll('#search-results li');"
        " return items.length && [...items].every(li => li.querySelector('p.context')); }",
        timeout=SEARCH_TIMEOUT_MS,
    )
    snippets = page.eval_on_selector_all(
        "#search-results p.context", "paragraphs => paragraphs.map(p => p.innerText)"
    )
    context.close()
    assert any("×" in snippet for snippet in snippets), snippets
    assert not [snippet for snippet in snippets if "\\" in snippet]


def test_icons_are_inline_svgs_as_font_awesome_draws_them(site: Path) -> None:
    """book/_ext/icon_sprite.py: no page loads fontawesome.js or keeps an `<i class="fa-...">`,
    and each icon's SVG has the classes Font Awesome's script gives it: the icon's name but no
    style class (the theme places `.fa-solid.fa-magnifying-glass` absolutely in the search form,
    over the placeholder, a rule meant for the `<i>` before the swap)."""
    from bs4 import BeautifulSoup

    styles = {"fa-solid", "fas", "fa-regular", "far", "fa-brands", "fab"}
    problems, icons = [], 0
    for path in pages(site):
        page = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        name = path.relative_to(site).as_posix()
        if page.select('script[src*="fontawesome"], link[href*="fontawesome"]'):
            problems.append(f"{name}: loads fontawesome.js")
        problems += [f"{name}: {e}" for e in page.select('i[class*="fa-"], span[class*="fa-"]')]
        for svg in page.select("svg.svg-inline--fa"):
            icons += 1
            use = svg.find("use")
            if styles & set(svg["class"]) or not (use and page.select_one(use["href"])):
                problems.append(f"{name}: {svg['class']} {use}")
    assert icons > 0 and not problems, problems[:5]
