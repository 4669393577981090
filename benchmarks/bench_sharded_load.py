"""Peak memory of streamed, sharded loading: each rank's peak against its shard + the largest file.

Writes a synthetic checkpoint of a few hundred MB in the released format
(:func:`mingrok.grok1.save_checkpoint_released`: int8 matrices with bfloat16 scales, the rest
float32), then loads it with :func:`mingrok.parallel.load.load_sharded` under
``torchrun --nproc-per-node 2`` (gloo, CPU) for each strategy and resident storage, and once in
one process for comparison. Each rank reports its resident set before loading (PyTorch imported,
process group joined), its peak during the load (``VmHWM``), the bytes of its shard
(:func:`mingrok.parallel.load.resident_bytes`) and the largest file of the checkpoint; the claim
checked is

    peak − before  ≤  shard + largest file + OVERHEAD_BYTES

    python benchmarks/bench_sharded_load.py            # writes into a temporary folder
    python benchmarks/bench_sharded_load.py --dir D    # keeps (or reuses) the checkpoint in D

OVERHEAD_BYTES (64 MiB) is a stated allowance for the allocator and the reader's buffers, not
a measurement. Float32 weights add the transient of dequantising the largest matrix piece
(a bfloat16 product and its float32 copy, 6 bytes a value).

Measured on a 2-vCPU VM (torch 2.13, glibc malloc; MiB; two runs; the checkpoint is 237 MiB in
50 files, the largest the 32 MiB float32 embedding). The loader hands each dropped file back to
the system (glibc's ``malloc_trim``, :func:`mingrok.parallel.load.fill`); before it did, glibc's
growing mmap threshold kept freed file-sized blocks on the heap, and float32 ranks went up to
25 MiB over the bound (last column):

    ranks strategy weights   peak−before  shard   bound   before the trim
    2     tensor   int8      141          118.6   214.6   177–189 *
    2     expert   int8      161          140.6   236.6   177–194
    1     (whole)  int8      267          237.0   333.0   274
    2     tensor   float32   466–482      424.2   568.2   545–609 *
    2     expert   float32   500–516      464.2   608.2   576–624
    1     (whole)  float32   902          848.2  1040.2   917–946

(* measured when tensor ranks still kept the 32 MiB embedding whole, 16 MiB more shard; the
tensor rows' other columns come from one run with the embedding split by D.)

Every rank now stays within its shard + the largest file + 64 MiB: int8 ranks at their shard
+ 20–30 MiB, float32 ranks at their shard + 42–58 MiB (the dequantising transient included).
``--malloc-mmap-threshold 1048576`` (a fixed threshold) gave 469–484 MiB for the float32 ranks
before the trim existed. The meta model costs 33–38 MiB (its modules, DTensor's imports). At
Grok-1's scale the same bound reads, per tensor-parallel rank of 8 with int8: 37.1 GiB of
weights (the released shard, embedding split by D) + the 3 GiB embedding file + 64 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
OVERHEAD_BYTES = 64 * 2**20
CASES = [(2, "tensor", "float32"), (2, "tensor", "int8"), (2, "expert", "float32")]
CASES += [(2, "expert", "int8"), (1, "none", "float32"), (1, "none", "int8")]
MiB = 2**20


def synthetic_config():
    """About 250 MB as released: 4 layers of 8 experts at width 1024, a 8192-token vocabulary."""
    from mingrok.config import MinGrokConfig

    return MinGrokConfig(
        vocab_size=8192,
        d_model=1024,
        num_layers=4,
        num_q_heads=8,
        num_kv_heads=4,
        head_dim=128,
        ffn_size=2048,
        num_experts=8,
        num_experts_per_token=2,
        max_seq_len=64,
    )


def write(folder: Path) -> None:
    import torch

    from mingrok import MinGrok
    from mingrok.grok1 import save_checkpoint_released

    if (folder / "ckpt-0").is_dir():
        return
    torch.manual_seed(0)
    save_checkpoint_released(MinGrok(synthetic_config()), folder)


def _status(field: str) -> int:
    """A size from /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def worker(folder: str, strategy: str, weights: str) -> None:
    """One rank: join the group, load its shard, print its figures as one JSON line."""
    from mingrok.parallel import init_distributed, shutdown_distributed
    from mingrok.parallel.load import build_sharded, fill, resident_bytes
    from mingrok.released import iter_checkpoint

    run = init_distributed("cpu")
    config = synthetic_config()
    started = _status("VmRSS")
    model = build_sharded(config, run, None if strategy == "none" else strategy)
    before = _status("VmRSS")  # the meta model built and split, nothing read yet
    fill(model, iter_checkpoint(folder, config), run, weights)
    peak = _status("VmHWM")
    figures = {"rank": run.rank, "meta": before - started, "before": before, "peak": peak}
    figures["shard"] = resident_bytes(model)
    print(json.dumps(figures), flush=True)
    shutdown_distributed()


def launch(folder: Path, ranks: int, strategy: str, weights: str) -> list[dict]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, f"--nproc-per-node={ranks}", str(HERE), "--worker"]
    done = subprocess.run(
        [*command, str(folder), strategy, weights], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return sorted(lines, key=lambda figures: figures["rank"])


def dequantising_bytes(ranks: int, strategy: str, weights: str) -> int:
    """float32 weights only: the bfloat16 product and the float32 matrix that dequantising the
    largest quantised piece makes at once, 2 + 4 bytes a value."""
    import math

    from mingrok.scale import weights as tensors

    if weights == "int8":
        return 0
    layout = "tensor" if strategy == "none" else strategy
    pieces = [w.shard_shape(ranks) for w in tensors(synthetic_config(), layout) if w.quantized]
    return 6 * max(math.prod(piece) for piece in pieces)


def report(folder: Path) -> None:
    files = sorted((folder / "ckpt-0").iterdir())
    total, largest = sum(f.stat().st_size for f in files), max(f.stat().st_size for f in files)
    print(f"checkpoint: {len(files)} files, {total / MiB:.1f} MiB; largest {largest / MiB:.1f} MiB")
    print(
        f"bound: shard + largest file + dequantising (float32 only) + {OVERHEAD_BYTES / MiB:.0f}"
        " MiB; MiB below, 'meta' = building and splitting the meta model, before reading"
    )
    print("ranks strategy weights rank   meta  peak-before  shard  dequant  bound  within bound")
    for ranks, strategy, weights in CASES:
        dequantising = dequantising_bytes(ranks, strategy, weights)
        for figures in launch(folder, ranks, strategy, weights):
            grown = figures["peak"] - figures["before"]
            bound = figures["shard"] + largest + dequantising + OVERHEAD_BYTES
            print(
                f"{ranks:5d} {strategy:8s} {weights:7s} {figures['rank']:4d} "
                f"{figures['meta'] / MiB:6.1f}  {grown / MiB:11.1f} {figures['shard'] / MiB:6.1f}"
                f"  {dequantising / MiB:7.1f} {bound / MiB:6.1f}  {grown <= bound}"
            )


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="folder for the checkpoint (default: a temporary one)")
    parser.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        help="bytes: give the ranks glibc's MALLOC_MMAP_THRESHOLD_, a fixed threshold above which "
        "every allocation is its own mapping, returned to the system when freed",
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.malloc_mmap_threshold:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    if args.dir:
        folder = Path(args.dir)
        write(folder)
        report(folder)
        return
    with tempfile.TemporaryDirectory(prefix="mingrok-bench-") as scratch:
        write(Path(scratch))
        report(Path(scratch))


if __name__ == "__main__":
    main()
