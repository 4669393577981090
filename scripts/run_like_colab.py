"""Run a chapter the way a Colab reader does: the notebook alone, an environment without mingrok.

What Colab has is imitated by a virtual environment (cached in _build/colab-venv) holding only
torch, numpy, matplotlib, ipywidgets, ipykernel, tqdm, safetensors and sentencepiece, and by a
stand-in `google.colab` module imported at kernel start. The chapter is copied alone into an empty
folder and executed top to bottom, so its first cell takes the Colab branch and runs the real
`pip install "mingrok @ git+https://github.com/mingrok/mingrok-book@<tag>"`. git is pointed at a
local clone of this repository, so no network is needed.

What runs is what a reader gets: the chapter and the package both come from the release tag
(scripts/release.py), the ref the book's Colab button opens. The script refuses to run when the
button and the bootstrap name different refs, and when the tag does not exist: a reader would get a
failing install. `--rehearse` runs the committed HEAD as if it were tagged, to try a release before
cutting it (it says so; the tag is created only inside the throwaway clone).

Usage (from the repository root):
    .venv/bin/python scripts/run_like_colab.py chapters/03_attention.ipynb [--fresh] [--rehearse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from release import disagreements, release_tag, repository_url  # noqa: E402

VENV = ROOT / "_build" / "colab-venv"
# What Colab preinstalls, as far as the chapters and the package are concerned.
COLAB_PACKAGES = (
    "torch",
    "numpy",
    "matplotlib",
    "ipywidgets",
    "ipykernel",
    "tqdm",
    "safetensors",
    "sentencepiece",
)
KERNEL_NAME = "colab-like"


def course_pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower(): version for name, version in pins.items()}


def colab_like_venv(fresh: bool) -> Path:
    python = VENV / "bin" / "python"
    if fresh and VENV.exists():
        shutil.rmtree(VENV)
    if not python.exists():
        print(f"creating {VENV.relative_to(ROOT)} (only {', '.join(COLAB_PACKAGES)})")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pins = course_pins()
        packages = [f"{name}=={pins[name]}" if name in pins else name for name in COLAB_PACKAGES]
        pip = [str(python), "-m", "pip", "install", "--quiet", *packages]
        subprocess.run(pip, check=True)
    probe = subprocess.run(  # from / so that a mingrok/ folder in the cwd does not count
        [str(python), "-c", "import mingrok"], cwd="/", capture_output=True, check=False
    )
    if probe.returncode == 0:  # installed by an earlier run: Colab starts without it
        uninstall = [str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "mingrok"]
        subprocess.run(uninstall, check=True)
    return python


def tag_exists(tag: str) -> bool:
    probe = ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def local_release(work: Path, rehearse: bool) -> tuple[Path, str]:
    """A clone at the release tag; git rewrites the GitHub URL to it. Returns (gitconfig, ref)."""
    tag = release_tag()
    clone = work / "repository"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    if rehearse:  # HEAD stands in for the tag, in the throwaway clone only
        subprocess.run(["git", "-C", str(clone), "tag", "--force", tag], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", tag], check=True)
    config = work / "gitconfig"
    config.write_text(
        f'[url "file://{clone}"]\n\tinsteadOf = {repository_url()}\n'
        '[protocol "file"]\n\tallow = always\n',
        encoding="utf-8",
    )
    return config, tag


def chapter_at(clone: Path, chapter: Path) -> Path:
    """The chapter as the Colab button opens it: the file at the tag, not the working tree's."""
    tagged = clone / chapter.resolve().relative_to(ROOT)
    if not tagged.is_file():
        raise SystemExit(f"{chapter} does not exist at {release_tag()}")
    return tagged


def colab_kernel(work: Path, python: Path, gitconfig: Path) -> None:
    """A kernelspec whose Python is the Colab-like venv, with `google.colab` already imported."""
    fake = work / "fake-colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab."""\n')
    (fake / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
    env = {"PYTHONPATH": str(fake), "GIT_CONFIG_GLOBAL": str(gitconfig), "PIP_NO_INPUT": "1"}
    shakespeare = ROOT.parent / "shared" / "input.txt"
    if shakespeare.is_file():  # no network here; readers' packages download it
        env["MINGROK_DATA"] = str(shakespeare)
    spec_dir = work / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like",
        "language": "python",
        "env": env,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = str(work / "jupyter")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--fresh", action="store_true", help="rebuild the Colab-like venv")
    parser.add_argument(
        "--rehearse", action="store_true", help="run HEAD as if it were the release tag"
    )
    args = parser.parse_args(argv)

    problems = disagreements()
    if problems:
        print("\n".join(["the release facts disagree:", *problems]), file=sys.stderr)
        return 1
    if not (args.rehearse or tag_exists(release_tag())):
        print(
            f"tag {release_tag()} does not exist: Colab readers would fail to install the package. "
            "Cut the release (README.md, 'Releasing'), or try it first with --rehearse.",
            file=sys.stderr,
        )
        return 1
    python = colab_like_venv(args.fresh)
    work = Path(tempfile.mkdtemp(prefix="colab-like-"))
    gitconfig, ref = local_release(work, args.rehearse)
    colab_kernel(work, python, gitconfig)
    source = chapter_at(work / "repository", args.chapter)
    print(f"{args.chapter}: notebook and package at {ref}" + (" (rehearsal: HEAD)" * args.rehearse))
    alone = work / "notebook"
    alone.mkdir()
    copy = alone / args.chapter.name
    shutil.copy(source, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        nb, kernel_name=KERNEL_NAME, timeout=900, resources={"metadata": {"path": str(alone)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"{args.chapter}: FAILED in a Colab-like environment\n{error}", file=sys.stderr)
        return 1
    finally:
        nbformat.write(nb, copy)
    print(f"{args.chapter}: ran end to end, Colab-like, in {time.perf_counter() - start:.1f} s")
    print(f"executed copy: {copy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
