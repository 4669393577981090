"""Install a built wheel alone in a clean virtual environment and use it as a reader would.

The release workflow runs this before publishing: the wheel must carry the shipped model and the
tokenizer (package data, not files of the repository), report the version it was built as, and
generate text, from a folder that holds nothing of the checkout.

Usage:
    python -m build && python scripts/check_wheel.py dist
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

SMOKE_TEST = """
import sys
from importlib.metadata import version

import mingrok
from mingrok.pretrained import load

expected = sys.argv[1]
assert mingrok.__version__ == version("mingrok") == expected, (mingrok.__version__, expected)
assert "site-packages" in mingrok.__file__, mingrok.__file__  # the wheel, not a checkout
model, tokenizer = load("shakespeare")
ids = mingrok.generate(model, tokenizer.encode("ROMEO:"), max_new_tokens=40, temperature=0)
text = tokenizer.decode(ids)
assert len(ids) == 40 and text.strip(), text
print(f"mingrok {mingrok.__version__} from the wheel: {text!r}")
"""


def wheel_in(folder: Path) -> Path:
    wheels = sorted(folder.glob("mingrok-*.whl"))
    if len(wheels) != 1:
        found = ", ".join(w.name for w in wheels) or "none"
        raise SystemExit(f"{folder}: expected exactly one mingrok wheel, found {found}")
    return wheels[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dist", type=Path, help="the folder `python -m build` wrote")
    args = parser.parse_args(argv)

    wheel = wheel_in(args.dist).resolve()
    built_version = wheel.name.split("-")[1]
    with tempfile.TemporaryDirectory(prefix="mingrok-wheel-") as work:
        environment = Path(work) / "venv"
        venv.create(environment, with_pip=True)
        python = str(environment / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], check=True)
        subprocess.run([python, "-c", SMOKE_TEST, built_version], cwd=work, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
