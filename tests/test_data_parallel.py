"""Training under torchrun: 2 gloo processes follow the single process's path.

Every launch is ``torchrun --nproc-per-node 2 -m mingrok train …``, exactly what a reader runs;
histories are compared at full precision from the checkpoint's metadata (history.json rounds).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from mingrok.__main__ import CHECKPOINT_NAME, HISTORY_NAME, MODEL_NAME, main
from mingrok.checkpoint import read_checkpoint

from .conftest import finished, shakespeare_path, tiny_config, torchrun

HISTORY_KEYS = ("train_loss", "aux_loss", "train_nats_per_char", "val_nats_per_char")


def arguments(folder: Path, **config_changes) -> list[str]:
    """20 steps of a tiny model with the router losses on (the global-batch balancing loss)."""
    config = tiny_config(vocab_size=128, max_seq_len=16)
    config = config.replace(router_aux_loss_coef=1e-2, router_z_loss_coef=1e-3, **config_changes)
    path = folder / "tiny.json"
    path.write_text(config.to_json())
    return [
        *("train", "--config", str(path), "--data", str(shakespeare_path())),
        *("--steps", "20", "--batch-size", "4", "--warmup-steps", "4", "--eval-interval", "5"),
        *("--eval-windows", "4", "--quiet", "--device", "cpu"),
    ]


@pytest.fixture(scope="module")
def train_args(tmp_path_factory) -> list[str]:
    return arguments(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def one_process(train_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def two_processes(train_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "run"
    finished(torchrun(2, "-m", "mingrok", *train_args, "--out", str(out)))
    return out


def history(out: Path) -> dict:
    return read_checkpoint(out / CHECKPOINT_NAME).metadata["history"]


def largest_difference(a: dict, b: dict) -> float:
    assert a["step"] == b["step"] and a["eval_step"] == b["eval_step"]
    return max(abs(x - y) for key in HISTORY_KEYS for x, y in zip(a[key], b[key], strict=True))


def test_two_processes_train_like_one(one_process, two_processes):
    assert largest_difference(history(two_processes), history(one_process)) <= 1e-5
    check_output_folder(two_processes, one_process)


def test_two_processes_sharded_by_fsdp2_train_like_one(train_args, one_process, tmp_path):
    out = tmp_path / "run"
    printed, _ = finished(torchrun(2, "-m", "mingrok", *train_args, "--fsdp", "--out", str(out)))
    assert printed.count("training minGrok") == 1  # rank 0 alone prints
    assert largest_difference(history(out), history(one_process)) <= 1e-5
    check_output_folder(out, one_process)


def check_output_folder(out: Path, one_process: Path) -> None:
    """Rank 0's files alone, the history saying how the batch was split, whole weights."""
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, HISTORY_NAME, MODEL_NAME]
    logged = json.loads((out / HISTORY_NAME).read_text())
    assert (logged["world_size"], logged["rank_batch_size"]) == (2, 2)
    assert json.loads((one_process / HISTORY_NAME).read_text())["world_size"] == 1
    weights = read_checkpoint(out / MODEL_NAME).model_state  # whole tensors, even from FSDP2
    alone = read_checkpoint(one_process / MODEL_NAME).model_state
    assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in alone.items()}


def test_a_killed_rank_leaves_the_checkpoint_and_resume_finishes_the_same_run(tmp_path):
    """With router noise on, so that every rank's noise streams must be saved and restored."""
    train_args = arguments(tmp_path, router_noise="gaussian", router_noise_std=0.5)
    uninterrupted = tmp_path / "uninterrupted"
    finished(torchrun(2, "-m", "mingrok", *train_args, "--out", str(uninterrupted)))
    states = read_checkpoint(uninterrupted / CHECKPOINT_NAME).training_state
    assert not states["rng.router.0"].equal(states["rng.rank1.router.0"])  # a stream per rank
    out = tmp_path / "killed"
    launch = torchrun(2, "-m", "mingrok", *train_args, "--out", str(out))
    while not (out / CHECKPOINT_NAME).exists():  # the first checkpoint, after step 5
        assert launch.poll() is None, launch.communicate()[1][-3000:]
        time.sleep(0.02)
    os.kill(_worker_pid(launch.pid, rank=1), signal.SIGKILL)
    launch.communicate(timeout=60)
    assert launch.returncode != 0
    step = read_checkpoint(out / CHECKPOINT_NAME).metadata["step"]  # whole and readable
    assert step in (5, 10, 15)
    assert not (out / MODEL_NAME).exists()
    finished(torchrun(2, "-m", "mingrok", *train_args, "--out", str(out), "--resume"))
    assert largest_difference(history(out), history(uninterrupted)) == 0
    with pytest.raises(SystemExit):  # one process cannot take over two ranks' noise streams
        main([*train_args, "--out", str(out), "--resume"])


def _worker_pid(torchrun_pid: int, rank: int) -> int:
    """The pid of the worker of ``rank`` that this test's torchrun started (its RANK variable)."""
    for _ in range(500):
        for pid in _descendants(torchrun_pid):
            try:
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environment:
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no worker of rank {rank} under torchrun {torchrun_pid}")


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children + [d for child in children for d in _descendants(child)]
