"""The book builds with no warning, and the site it produces is whole.

The book is built once per session into a temporary folder, exactly as `make book` builds it. A
second, throwaway book (the real configuration plus one synthetic chapter with a figure, an exercise
and a widget, executed by scripts/execute_notebooks.py) checks the parts no published chapter
exercises yet: launch links, figure alt text, and widgets rendering offline in headless Chromium.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

from .conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


# The launch buttons open the notebooks at the release tag, the ref the bootstrap cell installs.
release = load_script("release")
REPOSITORY = release.repository_url()
OWNER_REPO = REPOSITORY.removeprefix("https://github.com/")
REF = release.release_tag()
COLAB = f"https://colab.research.google.com/github/{OWNER_REPO}/blob/{REF}/"
BINDER = f"https://mybinder.org/v2/gh/{OWNER_REPO}/{REF}?urlpath="
LAUNCH_SERVICES = ("https://colab.research.google.com/github/", "https://mybinder.org/v2/")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CDN_WIDGET_JS = re.compile(
    r"https?://[^\"'\s]*(?:require(?:\.min)?\.js|@jupyter-widgets/html-manager|embed-amd\.js)"
)
VENDORED = ROOT / "static" / "widgets" / "vendor"


def build(source: Path, output: Path) -> Path:
    """`make book`'s build of `source` into `output`; returns the HTML folder. Fails on warnings."""
    result = subprocess.run(
        [
            str(JUPYTER_BOOK),
            "build",
            str(source),
            "--builder",
            "html",
            "--all",
            "-W",
            "-n",
            "--keep-going",
            "--path-output",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0 and not warnings, "book build failed:\n" + "\n".join(
        warnings or log.splitlines()[-40:]
    )
    return output / "_build" / "html"


def toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return files


def source_of(entry: str, root: Path = ROOT) -> Path | None:
    candidates = [root / f"{entry}{suffix}" for suffix in (".md", ".ipynb")]
    return next((path for path in candidates if path.is_file()), None)


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def soup(page: Path) -> BeautifulSoup:
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")


# ----------------------------------------------------------------------------- the real book


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build(ROOT, tmp_path_factory.mktemp("book"))


def test_every_toc_entry_exists() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    missing = [entry for entry in toc_files(toc) if source_of(entry) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_chapter_is_in_the_toc() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = set(toc_files(toc))
    chapters = [f"chapters/{p.stem}" for p in sorted((ROOT / "chapters").glob("*.ipynb"))]
    unlisted = [c for c in chapters if c not in listed]
    assert not unlisted, f"chapters missing from _toc.yml (the book would drop them): {unlisted}"


def test_every_toc_entry_has_a_page(site: Path) -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    missing = [entry for entry in toc_files(toc) if not (site / f"{entry}.html").is_file()]
    assert not missing


def test_launch_and_repository_links_point_at_files_on_main(site: Path) -> None:
    assert_launch_links_resolve(site, ROOT)


def test_internal_links_and_anchors_resolve(site: Path) -> None:
    assert_internal_links_resolve(site)


def test_vendored_widget_javascript_is_served_by_the_site(site: Path) -> None:
    sums = (VENDORED / "SHA256SUMS").read_text(encoding="utf-8").split("\n")
    expected = dict(reversed(line.split("  ", 1)) for line in sums if line)
    assert {"require.js", "embed-amd.js"} <= expected.keys()
    for name, digest in expected.items():
        served = site / "widgets" / "vendor" / name
        assert hashlib.sha256(served.read_bytes()).hexdigest() == digest, name
    assert (site / "widgets" / "require-config.js").is_file()


def test_no_page_loads_widget_javascript_from_a_cdn(site: Path) -> None:
    offenders = [
        f"{page.relative_to(site)}: {match}"
        for page in pages(site)
        for match in CDN_WIDGET_JS.findall(page.read_text(encoding="utf-8"))
    ]
    assert not offenders


def test_only_pages_with_widgets_load_the_widget_javascript(site: Path) -> None:
    """Guards the `_static` trap: JB1 would inject every .js of the static paths into every page."""
    for page in pages(site):
        text = page.read_text(encoding="utf-8")
        if WIDGET_STATE not in text:
            assert "widgets/vendor/" not in text, page.relative_to(site)


def test_widgets_of_published_chapters_render_offline(site: Path) -> None:
    checker = load_script("check_widgets_offline")
    widget_pages = checker.pages_with_widgets(site)
    if not widget_pages:
        pytest.skip("no published chapter has widgets yet (the mechanism is tested below)")
    require_chromium(checker)
    assert_widgets_render(checker, site, widget_pages)


def pins(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def test_binder_installs_a_cpu_torch_and_the_package() -> None:
    binder = ROOT / "binder"
    requirements = pins(binder / "requirements.txt")
    assert requirements["torch"].endswith("+cpu")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in (
        binder / "requirements.txt"
    ).read_text(encoding="utf-8")
    course = pins(ROOT / "requirements.txt")
    drifted = {
        name: (version, course[name])
        for name, version in requirements.items()
        if name in course and version.split("+")[0] != course[name].split("+")[0]
    }
    assert not drifted, f"binder/requirements.txt differs from requirements.txt: {drifted}"
    post_build = binder / "postBuild"
    assert os.access(post_build, os.X_OK)
    script = post_build.read_text(encoding="utf-8")
    assert "set -euo pipefail" in script and "pip install --no-cache-dir -e ." in script


# ----------------------------------------------------------------------------- assertions


def assert_launch_links_resolve(site: Path, repository: Path) -> None:
    problems = []
    for page in pages(site):
        for link in soup(page).find_all("a", href=True):
            href = link["href"]
            if href.startswith(COLAB):
                path = href[len(COLAB) :]
            elif href.startswith(BINDER):
                path = unquote(href[len(BINDER) :]).removeprefix("lab/tree/").removeprefix("tree/")
            elif href.startswith(f"{REPOSITORY}/blob/"):
                path = href.removeprefix(f"{REPOSITORY}/blob/{REF}/")
                if path == href:
                    problems.append(f"{page.name}: not at the release tag {REF}: {href}")
                    continue
            elif href.startswith(LAUNCH_SERVICES):
                problems.append(f"{page.name}: launch link not at the release tag {REF}: {href}")
                continue
            else:
                continue
            if not (repository / path).is_file():
                problems.append(f"{page.name}: {href} -> {path} does not exist in the repository")
    assert not problems, "\n".join(problems)


def assert_internal_links_resolve(site: Path) -> None:
    ids: dict[Path, set[str]] = {}

    def anchors(page: Path) -> set[str]:
        if page not in ids:
            tree = soup(page)
            ids[page] = {tag["id"] for tag in tree.find_all(id=True)}
            ids[page] |= {tag["name"] for tag in tree.find_all("a", attrs={"name": True})}
        return ids[page]

    problems = []
    for page in pages(site):
        for tag in soup(page).find_all(["a", "link", "script", "img", "source"]):
            reference = tag.get("href") or tag.get("src")
            if not reference or reference == "#":
                continue
            parts = urlsplit(reference)
            if parts.scheme or parts.netloc or reference.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{page.relative_to(site)}: {reference} (no such file)")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and parts.fragment not in anchors(target)
            ):
                problems.append(f"{page.relative_to(site)}: {reference} (no such anchor)")
    assert not problems, "\n".join(problems)


def require_chromium(checker) -> None:
    if not Path(checker.CHROMIUM).is_file():
        pytest.skip(
            f"Chromium not found at {checker.CHROMIUM}: widget rendering NOT checked "
            "(apt-get install chromium, or set CHROMIUM)"
        )


def assert_widgets_render(checker, site: Path, widget_pages: list[Path]) -> None:
    reports = checker.check_pages(site, widget_pages)
    failures = [
        f"{r.page}: {r.rendered}/{r.views} views rendered; {r.failed + r.errors}"
        for r in reports
        if not r.ok
    ]
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- a throwaway book


def widget_chapter() -> nbformat.NotebookNode:
    bootstrap = load_script("colab_bootstrap")
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    figure = code(
        "import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots(figsize=(3, 2))\n"
        "ax.plot([0, 1, 2], [0, 1, 4])\nplt.show()"
    )
    figure.metadata["mystnb"] = {
        "image": {"alt": "A parabola through three points."},
        "figure": {"caption": "A parabola.", "name": "fig-99-parabola"},
    }
    widget = code("import ipywidgets\n\nipywidgets.IntSlider(value=3, description='noise')")
    widget.metadata["tags"] = ["nbval-ignore-output"]
    solution = code("# @title Solution\nanswer = 42")
    solution.metadata.update({"tags": ["solution"], "jupyter": {"source_hidden": True}})
    solution.metadata["cellView"] = "form"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# 99. Widget demo\n\n## Learning objectives\n\n- see {numref}`fig-99-parabola`"),
        bootstrap.bootstrap_cell(),
        figure,
        widget,
        md(":::{exercise}\n:label: ex-99-answer\n\nFind the answer.\n:::"),
        md("```{solution-start} ex-99-answer\n:label: sol-99-answer\n:class: dropdown\n```"),
        solution,
        md("```{solution-end}\n```"),
    ]
    return nb


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """(repository copy, site) of the real book plus an executed widget chapter."""
    repository = tmp_path_factory.mktemp("demo-repository")
    for name in ("_config.yml", "book", "static", "chapters"):  # the real toc lists chapters
        source = ROOT / name
        if source.exists():
            (shutil.copytree if source.is_dir() else shutil.copy)(source, repository / name)
    (repository / "chapters").mkdir(exist_ok=True)
    chapter = repository / "chapters" / "99_widget_demo.ipynb"
    nbformat.write(widget_chapter(), chapter)
    executed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), str(chapter)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert executed.returncode == 0, executed.stderr
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    toc["parts"].insert(1, {"caption": "Demo", "chapters": [{"file": "chapters/99_widget_demo"}]})
    (repository / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    return repository, build(repository, tmp_path_factory.mktemp("demo-book"))


def test_a_chapter_gets_colab_and_binder_links_to_its_notebook_on_main(demo) -> None:
    repository, site = demo
    hrefs = {
        a["href"] for a in soup(site / "chapters" / "99_widget_demo.html").find_all("a", href=True)
    }
    assert f"{COLAB}chapters/99_widget_demo.ipynb" in hrefs
    assert f"{BINDER}lab/tree/chapters/99_widget_demo.ipynb" in hrefs
    assert_launch_links_resolve(site, repository)
    assert_internal_links_resolve(site)


def test_a_chapter_figure_carries_its_alt_text_and_the_solution_is_folded(demo) -> None:
    page = soup(demo[1] / "chapters" / "99_widget_demo.html")
    assert page.find("img", alt="A parabola through three points.") is not None
    solution = page.find(id="sol-99-answer")
    assert solution is not None and "dropdown" in solution.get("class", [])


def test_a_chapter_widget_renders_offline_from_the_vendored_javascript(demo) -> None:
    site = demo[1]
    page = site / "chapters" / "99_widget_demo.html"
    text = page.read_text(encoding="utf-8")
    assert "widgets/vendor/require.js" in text and "widgets/vendor/embed-amd.js" in text
    assert not CDN_WIDGET_JS.findall(text)
    checker = load_script("check_widgets_offline")
    require_chromium(checker)
    assert_widgets_render(checker, site, [page])


def test_a_chapter_that_shows_no_widget_on_the_site_stores_no_widget_state(tmp_path: Path) -> None:
    """Its live widget (tagged remove-output) is for Jupyter; the page then loads no widget JS."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    live = code("import ipywidgets\nipywidgets.IntSlider(value=3)")
    live.metadata["tags"] = ["nbval-ignore-output", "remove-output"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [md("# 98. Live widget only"), live]
    chapter = tmp_path / "98_live_widget.ipynb"
    nbformat.write(nb, chapter)
    executed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), str(chapter)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert executed.returncode == 0, executed.stderr
    stored = nbformat.read(chapter, as_version=4)
    view = "application/vnd.jupyter.widget-view+json"
    assert any(view in output.data for output in stored.cells[1].outputs)
    assert "widgets" not in stored.metadata
