"""scripts/cpu_code_path.py: which nbval passes of `make nbval` run, and which are refused."""

import os
import subprocess
import sys

from .conftest import REPO, load_script

cpu_code_path = load_script("cpu_code_path")
SKIP = cpu_code_path.SKIP


def path(kernels: str, threads: int, mkl: str = "(unset: MKL picks per CPU)") -> dict:
    return {"aten_kernels": kernels, "threads": threads, "mkl_cbwr": mkl}


AVX2_PASS = path("AVX2", 2, "AVX2")


def test_the_avx2_pass_runs_where_it_differs_from_the_machine():
    check = cpu_code_path.check_avx2
    assert check(AVX2_PASS, path("AVX512", 2), avx512=True)[0] == 0  # this machine's kind
    assert check(AVX2_PASS, path("AVX2", 4), avx512=False)[0] == 0  # a 4-core AVX2 runner
    # ATen on AVX2, but MKL alone would take AVX-512: the pass still changes MKL's kernels
    assert check(AVX2_PASS, path("AVX2", 2), avx512=True)[0] == 0
    assert check(AVX2_PASS, path("AVX2", 2), avx512=None)[0] == 0  # unknown CPU: run it


def test_the_avx2_pass_is_skipped_where_it_cannot_differ_and_refused_when_misconfigured():
    check = cpu_code_path.check_avx2
    status, message = check(AVX2_PASS, path("AVX2", 2), avx512=False)
    assert status == SKIP and "the machine's own pass checked this path" in message
    status, message = check(path("DEFAULT", 2, "AVX2"), path("DEFAULT", 2), avx512=False)
    assert status == SKIP and "no AVX2 path" in message  # e.g. an ARM laptop
    assert check(path("AVX2", 1, "AVX2"), path("AVX512", 2), avx512=True)[0] == 1
    assert check(path("AVX2", 2), path("AVX512", 2), avx512=True)[0] == 1  # MKL_CBWR unset


def test_the_portable_pass_must_change_the_kernels():
    check = cpu_code_path.check_portable
    portable = path("DEFAULT", 1, "COMPATIBLE")
    assert check(portable, path("AVX512", 2))[0] == 0
    assert check(portable, path("AVX2", 1))[0] == 0  # a one-core machine: threads cannot change
    assert check(portable, path("DEFAULT", 2))[0] == 1


def test_this_machine_runs_the_avx2_pass_or_says_why_not():
    """The real script under the Makefile's variables: status 0, or SKIP with its reason."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, "scripts/cpu_code_path.py", "--expect", "avx2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, SKIP), result.stderr
    assert "CPU code path: aten_kernels " in result.stdout
    assert (result.returncode == SKIP) == ("skipped:" in result.stdout)
