"""Print the CPU code path PyTorch takes here: ATen's kernel level, the thread count, MKL's mode.

`make nbval` runs strict nbval on up to three code paths, as cheap stand-ins for "another CPU":

- the machine's own (no variable set);
- `--expect portable`: ATen's portable `DEFAULT` kernels, MKL's conditional-numerical-
  reproducibility mode `COMPATIBLE`, one thread (what a CPU without vector units, or another
  vendor's, computes);
- `--expect avx2`: AVX2 kernels, MKL's `AVX2` mode, two threads: the path of GitHub's hosted
  runners (AMD EPYC 7763: AVX2, no AVX-512) and of many laptops.

This script shows what each pass really ran with, and fails unless the pass's kernels or thread
count really differ from the machine's own: a stand-in that silently took the same path would prove
nothing. Where the AVX2 pass cannot differ, it exits with status 3 (``SKIP``) and says why, and
`make` skips that pass: on a CPU without AVX2 (ATen then runs a lower level; an ARM laptop), and on
a machine whose own path is already AVX2 on two threads (the machine's own pass checked it).

Usage:
    python scripts/cpu_code_path.py
    ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=1 \
        python scripts/cpu_code_path.py --expect portable
    ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 OMP_NUM_THREADS=2 \
        python scripts/cpu_code_path.py --expect avx2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# The variables that choose the code path, cleared to see what the machine does on its own.
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SKIP = 3  # exit status: this pass cannot check anything the others do not (make skips it)
AVX2_THREADS = 2


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


def cpu_has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU has AVX-512 (MKL left to itself would use it); None where unknown."""
    try:
        return " avx512f" in cpuinfo.read_text()
    except OSError:
        return None


def check_portable(here: dict[str, object], machine: dict[str, object]) -> tuple[int, str]:
    same = [key for key in ("aten_kernels", "threads") if here[key] == machine[key]]
    if same and not (machine["threads"] == 1 and same == ["threads"]):
        return 1, f"error: {', '.join(same)} did not change: this pass checks nothing new"
    return 0, ""


def check_avx2(
    here: dict[str, object], machine: dict[str, object], avx512: bool | None
) -> tuple[int, str]:
    if here["mkl_cbwr"] != "AVX2" or here["threads"] != AVX2_THREADS:
        return 1, (
            f"error: the AVX2 pass needs MKL_CBWR=AVX2 and OMP_NUM_THREADS={AVX2_THREADS}; "
            f"it got mkl_cbwr {here['mkl_cbwr']}, threads {here['threads']}"
        )
    if here["aten_kernels"] != "AVX2":
        return SKIP, (
            f"skipped: this CPU has no AVX2 path (asked for avx2, ATen runs "
            f"{here['aten_kernels']}); the machine's own and the portable passes still run"
        )
    if machine["aten_kernels"] == "AVX2" and machine["threads"] == AVX2_THREADS and avx512 is False:
        return SKIP, (
            f"skipped: the machine's own path is already AVX2 on {AVX2_THREADS} threads, and its "
            "CPU has no AVX-512 for MKL to pick: the machine's own pass checked this path"
        )
    return 0, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--expect",
        choices=("portable", "avx2"),
        help="check that this pass runs that other path; exit 1 if it does not, 3 if it cannot",
    )
    args = parser.parse_args(argv)
    here = code_path()
    print("CPU code path: " + ", ".join(f"{key} {value}" for key, value in here.items()))
    if args.expect is None:
        return 0
    machine = machine_code_path()
    print("machine's own: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    if args.expect == "portable":
        status, message = check_portable(here, machine)
    else:
        status, message = check_avx2(here, machine, cpu_has_avx512())
    if message:
        print(message, file=sys.stderr if status == 1 else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
