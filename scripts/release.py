"""The release facts, stated once, and the places that repeat them kept in step.

- The **version** is `mingrok.__version__` (mingrok/__init__.py); pyproject.toml reads it there.
- The **release tag** is `v` + that version. It is what the chapters' first cell installs in Colab
  (`pip install "mingrok @ git+<repository>@<tag>"`), the ref that the book's Colab and Binder
  buttons open (`repository.branch` in _config.yml), and the tag whose push publishes the package
  (.github/workflows/release.yml) and the site (.github/workflows/pages.yml): the notebook a reader
  opens and the package it installs come from the same commit.
- The **repository URL** is `repository.url` in _config.yml.

Usage (from the repository root):
    python scripts/release.py check                # exit 1, naming each place that disagrees
    python scripts/release.py check --tag v0.2.0   # also: the pushed tag is the release tag
    python scripts/release.py bump 0.2.0           # set the version and bring every place along
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_INIT = ROOT / "mingrok" / "__init__.py"
BOOK_CONFIG = ROOT / "_config.yml"
VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?$")
# Prose that shows the install line a reader types: it must name the current tag.
DOCUMENTS_WITH_INSTALL_LINE = ("README.md", "book/how_to_run.md")
# Prose that links to the project's repository (clone commands, badges): it must name this one.
DOCUMENTS_WITH_REPOSITORY_LINKS = ("README.md", "CONTRIBUTING.md", "book/*.md")
GITHUB_REPOSITORY = re.compile(r"https://github\.com/([\w.\-]+)/([\w\-]+(?:\.(?!git\b)[\w\-]+)*)")


def version() -> str:
    """`mingrok.__version__`, read from the source without importing the package (no torch)."""
    tree = ast.parse(PACKAGE_INIT.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{PACKAGE_INIT} assigns no __version__")


def release_tag() -> str:
    return f"v{version()}"


def book_config() -> dict:
    return yaml.safe_load(BOOK_CONFIG.read_text(encoding="utf-8"))


def repository_url() -> str:
    return book_config()["repository"]["url"].rstrip("/")


def launch_ref() -> str:
    """The ref the book's launch buttons open (Jupyter Book 1 calls it `repository.branch`)."""
    return str(book_config()["repository"]["branch"])


def package_spec() -> str:
    """What a reader without a clone installs: this repository at the release tag."""
    return f"mingrok @ git+{repository_url()}@{release_tag()}"


def install_line() -> str:
    return f'pip install "{package_spec()}"'


def disagreements(tag: str | None = None) -> list[str]:
    """Every place that does not say what the release facts say, as a sentence each."""
    problems = []
    if not VERSION_PATTERN.match(version()):
        problems.append(f"mingrok.__version__ = {version()!r} is not a version like 1.2.3")
    if tag is not None and tag != release_tag():
        problems.append(f"the tag {tag!r} is not the release tag {release_tag()!r}")
    if launch_ref() != release_tag():
        problems.append(
            f"_config.yml repository.branch is {launch_ref()!r}: the launch buttons would open "
            f"other notebooks than the {release_tag()!r} package the chapters install"
        )
    for name in DOCUMENTS_WITH_INSTALL_LINE:
        text = (ROOT / name).read_text(encoding="utf-8")
        for spec in re.findall(r"mingrok @ git\+\S+?@[\w.\-]+", text):
            if spec != package_spec():
                problems.append(f"{name} installs {spec!r}, not {package_spec()!r}")
    our_owner, our_name = repository_url().removeprefix("https://github.com/").lower().split("/")
    documents = {path for pattern in DOCUMENTS_WITH_REPOSITORY_LINKS for path in ROOT.glob(pattern)}
    for path in sorted(documents):
        for owner, name in GITHUB_REPOSITORY.findall(path.read_text(encoding="utf-8")):
            link = f"https://github.com/{owner}/{name}"
            ours = our_owner == owner.lower() or our_name == name.lower()
            if ours and link != repository_url():
                where = path.relative_to(ROOT)
                problems.append(f"{where} links to {link}, not to {repository_url()}")
    return problems


def bump(new_version: str) -> None:
    """Set the version and rewrite what repeats it; the chapters' bootstrap cells included."""
    if not VERSION_PATTERN.match(new_version):
        raise SystemExit(f"version {new_version!r}: expected MAJOR.MINOR.PATCH, e.g. 0.2.0")
    old_spec = package_spec()
    source = PACKAGE_INIT.read_text(encoding="utf-8")
    PACKAGE_INIT.write_text(
        re.sub(r'^__version__ = ".*"$', f'__version__ = "{new_version}"', source, flags=re.M),
        encoding="utf-8",
    )
    config = BOOK_CONFIG.read_text(encoding="utf-8")
    BOOK_CONFIG.write_text(
        re.sub(r"^(  branch: )\S+", rf"\g<1>{release_tag()}", config, count=1, flags=re.M),
        encoding="utf-8",
    )
    for name in DOCUMENTS_WITH_INSTALL_LINE:
        path = ROOT / name
        path.write_text(path.read_text(encoding="utf-8").replace(old_spec, package_spec()))
    sys.path.insert(0, str(ROOT / "scripts"))
    import colab_bootstrap

    colab_bootstrap.main(["--write"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="exit 1 unless every place agrees")
    check.add_argument("--tag", help="the tag being released, e.g. $GITHUB_REF_NAME")
    bumped = commands.add_parser("bump", help="set the version everywhere")
    bumped.add_argument("version", help="the new version, MAJOR.MINOR.PATCH")
    args = parser.parse_args(argv)

    if args.command == "bump":
        bump(args.version)
        print(f"version {version()}, tag {release_tag()}: now `make notebooks` (the setup cells")
        print("print the version), `make test`, commit, then `git tag` and push the tag.")
        return 0
    problems = disagreements(args.tag)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"release {release_tag()}: package, tag, launch buttons and install lines agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
