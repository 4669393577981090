"""Check that the built site renders its embedded widgets with no network, in headless Chromium.

The site is served from a local HTTP server; every request to any other host is refused (and
reported). A page passes when each embedded widget view (a `<script>` of type
application/vnd.jupyter.widget-view+json) has been rendered, the page logged no JavaScript error,
and no request for one of the site's own files failed.

Usage (from the repository root, after `make book`):
    .venv/bin/python scripts/check_widgets_offline.py [--site _build/html] [PAGE.html ...]
With no page named, it checks every page of the site that carries widget state. Chromium comes from
Debian (`apt-get install chromium`, /usr/bin/chromium) or CHROMIUM=/path/to/chrome.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RENDER_TIMEOUT_MS = 30_000


@dataclass
class PageReport:
    page: str
    views: int = 0
    rendered: int = 0
    blocked: list[str] = field(default_factory=list)  # requests to other hosts (refused)
    failed: list[str] = field(default_factory=list)  # the site's own files that did not load
    errors: list[str] = field(default_factory=list)  # JavaScript errors

    @property
    def ok(self) -> bool:
        return (
            self.views > 0 and self.rendered == self.views and not self.failed and not self.errors
        )


def pages_with_widgets(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if WIDGET_STATE in p.read_text(encoding="utf-8"))


@contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def check_pages(site: Path, pages: list[Path]) -> list[PageReport]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium`, or set CHROMIUM=/path"
        )
    reports = []
    with serve(site) as origin, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for page_path in pages:
                reports.append(_check_page(browser, origin, site, page_path))
        finally:
            browser.close()
    return reports


def _check_page(browser, origin: str, site: Path, page_path: Path) -> PageReport:
    relative = page_path.resolve().relative_to(site.resolve()).as_posix()
    report = PageReport(relative)
    context = browser.new_context()
    page = context.new_page()

    def route(request_route) -> None:
        if request_route.request.url.startswith(origin + "/"):
            request_route.continue_()
        else:
            report.blocked.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    # No error is excused (book/_ext/unique_scripts.py ended the theme's THEBE_JS_URL one).
    page.on("pageerror", lambda error: report.errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            report.failed.append(f"{response.status} {response.url}")
            if response.url.startswith(origin) and response.status >= 400
            else None
        ),
    )
    page.on("requestfailed", lambda r: r.url.startswith(origin) and report.failed.append(r.url))
    page.goto(f"{origin}/{relative}", wait_until="load")
    report.views = page.locator(f'script[type="{WIDGET_VIEW}"]').count()
    # html-manager inserts each rendered view right before its script tag, in a .widget-subarea.
    rendered_views = f'.widget-subarea + script[type="{WIDGET_VIEW}"]'
    try:
        page.wait_for_function(
            f"document.querySelectorAll('{rendered_views}').length >= {report.views}",
            timeout=RENDER_TIMEOUT_MS,
        )
    except Exception as error:  # a timeout: report what did render
        report.errors.append(f"widgets did not all render within {RENDER_TIMEOUT_MS} ms: {error}")
    report.rendered = page.locator(rendered_views).count()
    page.wait_for_load_state("networkidle")  # late requests (icon fonts) are checked too
    context.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("_build/html"))
    parser.add_argument("pages", nargs="*", type=Path, help="default: every page with widget state")
    args = parser.parse_args(argv)

    pages = args.pages or pages_with_widgets(args.site)
    if not pages:
        print(f"no page of {args.site} carries widget state: nothing to check")
        return 0
    reports = check_pages(args.site, pages)
    for report in reports:
        status = "ok" if report.ok else "FAILED"
        print(f"{status}: {report.page}: {report.rendered}/{report.views} widget views rendered")
        for line in report.failed + report.errors:
            print(f"    {line}")
        if report.blocked:
            refused = len(report.blocked)
            print(f"    {refused} request(s) to other hosts refused, e.g. {report.blocked[0]}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
