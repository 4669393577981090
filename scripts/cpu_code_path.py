"""Print the CPU code path PyTorch takes here: ATen's kernel level, the thread count, MKL's mode.

`make nbval` runs strict nbval twice, as the machine is and on another code path (ATen's portable
`DEFAULT` kernels, MKL's conditional-numerical-reproducibility mode `COMPATIBLE`, one thread), as a
cheap stand-in for "another CPU". This script shows what each pass really ran with, and with
`--expect-other-path` fails unless the second pass's kernels and thread count differ from the
machine's own: a stand-in that silently took the same path would prove nothing.

Usage:
    python scripts/cpu_code_path.py
    ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=1 \
        python scripts/cpu_code_path.py --expect-other-path
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

# The variables that choose the code path, cleared to see what the machine does on its own.
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def code_path() -> dict[str, object]:
    import torch

    return {
        "aten_kernels": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "(unset: MKL picks per CPU)"),
    }


def machine_code_path() -> dict[str, object]:
    """The code path with every choosing variable unset, measured in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in CODE_PATH_VARIABLES}
    script = "import json, cpu_code_path; print(json.dumps(cpu_code_path.code_path()))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--expect-other-path",
        action="store_true",
        help="fail unless the kernels and the thread count differ from the machine's own",
    )
    args = parser.parse_args(argv)
    here = code_path()
    print("CPU code path: " + ", ".join(f"{key} {value}" for key, value in here.items()))
    if not args.expect_other_path:
        return 0
    machine = machine_code_path()
    print("machine's own: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    same = [key for key in ("aten_kernels", "threads") if here[key] == machine[key]]
    if same and not (machine["threads"] == 1 and same == ["threads"]):
        print(
            f"error: {', '.join(same)} did not change: this pass checks nothing new",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
