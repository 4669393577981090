"""Run a chapter the way a Colab reader does: the notebook alone, an environment without mingrok.

What Colab has is imitated by a virtual environment (cached in _build/colab-venv) holding only
torch, numpy, matplotlib, ipywidgets, ipykernel, tqdm and safetensors, and by a stand-in
`google.colab` module imported at kernel start. The chapter is copied alone into an empty folder
and executed top to bottom, so its first cell takes the Colab branch and runs the real
`pip install "mingrok @ git+https://github.com/mingrok/mingrok-book@<tag>"`. git is pointed at a
local clone of this repository's HEAD, tagged with the release tag, so no network is needed and the
test covers what is committed (not the working tree).

Usage (from the repository root):
    .venv/bin/python scripts/run_like_colab.py chapters/03_attention.ipynb [--fresh]
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
from colab_bootstrap import RELEASE_TAG, REPOSITORY_URL  # noqa: E402

VENV = ROOT / "_build" / "colab-venv"
# What Colab preinstalls, as far as the chapters and the package are concerned.
COLAB_PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "ipykernel", "tqdm", "safetensors")
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


def local_release(work: Path) -> Path:
    """A clone of HEAD tagged RELEASE_TAG; git rewrites the GitHub URL to it (see gitconfig)."""
    clone = work / "repository"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "tag", "--force", RELEASE_TAG], check=True)
    config = work / "gitconfig"
    config.write_text(
        f'[url "file://{clone}"]\n\tinsteadOf = {REPOSITORY_URL}\n'
        '[protocol "file"]\n\tallow = always\n',
        encoding="utf-8",
    )
    return config


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
    args = parser.parse_args(argv)

    python = colab_like_venv(args.fresh)
    work = Path(tempfile.mkdtemp(prefix="colab-like-"))
    colab_kernel(work, python, local_release(work))
    alone = work / "notebook"
    alone.mkdir()
    copy = alone / args.chapter.name
    shutil.copy(args.chapter, copy)
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
