"""Running notebooks for the course tools: one kernel per notebook, several notebooks at once.

Every notebook runs through papermill (which injects parameters after the `parameters` cell and
saves the executed copy cell by cell) in a fresh kernel of *this* interpreter, the way
`make notebooks` runs the chapters. Notebooks run in parallel in separate processes, not threads:
papermill changes the process's working directory while a notebook runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

KERNEL_NAME = "python3"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
OK, ERROR, TIMEOUT, CRASHED = "ok", "error", "timeout", "crashed"

# Each kernel picks five free TCP ports and binds them a moment later; a kernel started at the same
# time in another worker process can draw one of them first (ZMQError "Address already in use"),
# and the kernel dies before it answers. Seen once in a full `make test` with --jobs 2.
KERNEL_NEVER_STARTED = "Kernel died before replying to kernel_info"
Task = TypeVar("Task")
Result = TypeVar("Result")


class ThisInterpretersKernel(AsyncKernelManager):
    """Starts ipykernel's built-in `python3` kernel with sys.executable.

    Searching no kernel directories leaves only ipykernel's native spec, so a `python3` kernel
    registered elsewhere on the machine (another Python, a conda env) can never be picked up.
    Give the class (``kernel_manager_class``), not an instance, to nbclient: a client that makes
    its own manager also shuts the kernel down, even after a timeout.
    """

    @default("kernel_spec_manager")
    def _native_kernel_only(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)


@dataclass(frozen=True)
class Execution:
    status: str  # OK, ERROR (a cell raised), TIMEOUT, or CRASHED (the notebook could not run)
    error: str  # "In [7]: ValueError: ..." for the first failing cell; "" when OK
    wall_s: float


def execute_notebook(
    source: Path,
    output: Path,
    cwd: Path,
    parameters: dict[str, object] | None = None,
    timeout_s: float | None = None,
    allow_errors: bool = False,
) -> Execution:
    """Run ``source`` into ``output`` with ``cwd`` as working directory; never raises.

    ``timeout_s`` bounds the whole notebook (nbclient's own timeout is per cell). With
    ``allow_errors`` every cell runs even after one raised, and the first error is reported.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s

    def time_left(cell) -> float | None:  # nbclient reads 0 or None as "no limit"
        return None if deadline is None else max(deadline - time.monotonic(), 0.01)

    def run() -> None:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters or None,
            cwd=str(cwd),
            kernel_name=KERNEL_NAME,
            language="python",
            kernel_manager_class=ThisInterpretersKernel,
            progress_bar=False,
            allow_errors=allow_errors,
            timeout_func=time_left,
            # Quiet kernel logs: ipykernel warns on every start that its local TCP sockets are not
            # encrypted, and logs the interrupt that precedes every shutdown as an error.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            run()
        except RuntimeError as error:
            if not str(error).startswith(KERNEL_NEVER_STARTED):
                raise
            run()  # once more: no cell ran, so nothing is repeated
    except PapermillExecutionError as error:
        fallback = f"In [{error.exec_count}]: {error.ename}: {error.evalue}"
        message = _first_error_of(output) or fallback
        return Execution(ERROR, message, time.monotonic() - started)
    except TimeoutError:
        message = f"did not finish within {timeout_s:g} s"
        return Execution(TIMEOUT, message, time.monotonic() - started)
    except Exception as error:  # unreadable notebook, kernel that died, ...
        message = f"{type(error).__name__}: {error}".strip()
        return Execution(CRASHED, message, time.monotonic() - started)
    return Execution(OK, "", time.monotonic() - started)


def _first_error_of(path: Path) -> str:
    try:
        return first_error(nbformat.read(path, as_version=4))
    except (OSError, ValueError):
        return ""


def first_error(nb: nbformat.NotebookNode) -> str:
    """``In [n]: Name: message`` for the first cell of an executed notebook that raised, or "".

    (papermill names the last one when errors are allowed; the first is usually the cause.)
    """
    failed = [
        (cell.execution_count, output)
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    if not failed:
        return ""
    count, output = failed[0]
    more = f" (and {len(failed) - 1} more cell(s))" if len(failed) > 1 else ""
    return f"In [{count}]: {output.ename}: {output.evalue}{more}"


def run_parallel(
    worker: Callable[[Task], Result],
    tasks: Sequence[Task],
    jobs: int,
    describe: Callable[[Task, Result], str],
) -> list[Result]:
    """``[worker(task) for task in tasks]``, ``jobs`` at a time, with a progress bar.

    ``worker`` must be a module-level function that never raises. Each worker process limits the
    kernels it starts to their share of the CPU cores (unless OMP_NUM_THREADS is already set),
    so that parallel runs do not fight over the cores. A line per finished task is printed to
    stderr; the bar itself is drawn only on a terminal.
    """
    from tqdm import tqdm

    threads = max(1, (os.cpu_count() or 1) // jobs)
    results: list[Result | None] = [None] * len(tasks)
    with (
        ProcessPoolExecutor(
            max_workers=jobs, initializer=_prepare_worker, initargs=(threads,)
        ) as pool,
        tqdm(total=len(tasks), unit="run", file=sys.stderr, disable=not sys.stderr.isatty()) as bar,
    ):
        futures = {pool.submit(worker, task): index for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            bar.update()
            tqdm.write(describe(tasks[index], results[index]), file=sys.stderr)
    return results


def _prepare_worker(threads: int) -> None:
    """Kernels inherit these variables; papermill's log would repeat the errors we report."""
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
