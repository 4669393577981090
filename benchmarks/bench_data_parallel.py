"""Data-parallel training on this machine: 2 torchrun processes against 1, interleaved.

Each round trains the shipped model's recipe (the ``shakespeare`` preset, global batch 16) for
``--steps`` steps three ways, in turn, so that load from other jobs hits all of them alike:

* 1 process, 1 thread;  * 1 process, 2 threads;  * ``torchrun --nproc-per-node 2``, 1 thread each.

It prints the training wall time per step of each (the history's ``elapsed_s``, process start-up
excluded) and the medians over the rounds.

    python benchmarks/bench_data_parallel.py --rounds 3 --steps 30

On 2 CPU cores, 2 processes cannot be faster than 1 process using both cores: they do the same
arithmetic on the same two cores, plus an all-reduce of every gradient (1.4 M parameters,
5.6 MB in float32, per step) through gloo's TCP loopback. Data parallelism pays when each rank
has its own device: on an 8-GPU machine each GPU computes 1/8 of the batch and NCCL's all-reduce
over NVLink overlaps the backward pass.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mingrok.checkpoint import read_checkpoint

WAYS = {
    "1 process, 1 thread": ([], 1),
    "1 process, 2 threads": ([], 2),
    "2 processes, 1 thread each": (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"],
        1,
    ),
}


def seconds_per_step(launcher: list[str], threads: int, steps: int, folder: Path) -> float:
    command = [sys.executable, *launcher, "-m", "mingrok", "train", "--preset", "shakespeare"]
    options = ["--steps", str(steps), "--eval-interval", str(steps), "--eval-windows", "1"]
    options += ["--quiet", "--device", "cpu", "--threads", str(threads), "--out", str(folder)]
    subprocess.run([*command, *options], check=True, capture_output=True)
    history = read_checkpoint(folder / "checkpoint.safetensors").metadata["history"]
    return history["elapsed_s"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=30, help="training steps per run")
    args = parser.parse_args()
    timings: dict[str, list[float]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for index, (way, (launcher, threads)) in enumerate(WAYS.items()):
                folder = Path(scratch) / f"{round_index}-{index}"
                timings[way].append(seconds_per_step(launcher, threads, args.steps, folder))
                print(f"round {round_index + 1}: {way}: {1000 * timings[way][-1]:.0f} ms/step")
    baseline = statistics.median(timings["1 process, 2 threads"])
    for way, values in timings.items():
        median = statistics.median(values)
        ratio = median / baseline
        print(f"{way}: median {1000 * median:.0f} ms/step, {ratio:.2f}× 1 process on 2 threads")


if __name__ == "__main__":
    main()
