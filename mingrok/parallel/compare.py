"""Sharded == unsharded, measured: run a model split over R gloo processes and compare.

:func:`compare_sharded` is what a chapter calls from its kernel: it writes the model and the
tokens to a temporary safetensors file, starts R fresh Python processes
(``python -m mingrok.parallel.compare``: nothing is inherited from the notebook or taken from its
``__main__``), lets each join a gloo group through a file in the same folder (no port to pick),
split the model by the strategy and run the same tokens, and compares their logits and expert
choices with the model run here in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file
from torch.distributed.device_mesh import init_device_mesh

from ..config import MinGrokConfig
from ..model import MinGrok
from .strategy import check_strategy, parallelize

INPUTS = "inputs.safetensors"


@dataclass(frozen=True)
class ShardedComparison:
    """How far the sharded run's logits are from one process's, and whether routing agreed.

    ``seconds`` is the wall time of the sharded forward pass on rank 0 (between two barriers;
    process start-up and loading excluded), ``launch_seconds`` the whole call's.
    """

    world_size: int
    strategy: str
    max_abs_logit_diff: float
    same_expert_choices: bool
    seconds: float
    launch_seconds: float


def compare_sharded(
    model: MinGrok,
    tokens: torch.Tensor,
    world_size: int = 2,
    strategy: str = "tensor",
    input_mask: torch.Tensor | None = None,
) -> ShardedComparison:
    """Run ``model`` on ``tokens`` [B, T] split over ``world_size`` CPU processes (gloo) by
    ``strategy`` ("tensor" or "expert"), and compare with the model run in this process.

    Every rank's expert choices must match the single process's for ``same_expert_choices``.
    """
    check_strategy(model.config, world_size, strategy)
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        reference = model(tokens, input_mask)
    model.train(was_training)
    with tempfile.TemporaryDirectory(prefix="mingrok-sharded-") as folder:
        _write_inputs(Path(folder), model, tokens, input_mask)
        _launch(world_size, strategy, folder)
        ranks = [_read_outputs(Path(folder) / f"rank{r}.safetensors") for r in range(world_size)]
    logits, seconds = ranks[0][0], ranks[0][2]
    expected = [stats.experts for stats in reference.router_stats]
    same = all(
        torch.equal(mine, theirs)
        for _, experts, _ in ranks
        for mine, theirs in zip(experts, expected, strict=True)
    )
    return ShardedComparison(
        world_size=world_size,
        strategy=strategy,
        max_abs_logit_diff=(logits - reference.logits.cpu()).abs().max().item(),
        same_expert_choices=same,
        seconds=seconds,
        launch_seconds=time.perf_counter() - started,
    )


def _write_inputs(
    folder: Path, model: MinGrok, tokens: torch.Tensor, input_mask: torch.Tensor | None
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["tokens"] = tokens.detach().cpu().long().contiguous()
    if input_mask is not None:
        tensors["input_mask"] = input_mask.detach().cpu().bool().contiguous()
    save_file(tensors, folder / INPUTS, metadata={"config": model.config.to_json()})


def _read_inputs(folder: Path) -> tuple[MinGrok, torch.Tensor, torch.Tensor | None]:
    with safe_open(folder / INPUTS, framework="pt") as file:
        config = MinGrokConfig.from_json(file.metadata()["config"])
        names = file.keys()  # a safe_open handle is not iterable itself
        tensors = {name: file.get_tensor(name) for name in names}
    with torch.device("meta"):
        model = MinGrok(config)
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(state, assign=True)
    return model.eval(), tensors["tokens"], tensors.get("input_mask")


def _launch(world_size: int, strategy: str, folder: str) -> None:
    """Start the R ranks, wait for all; a failed rank's error output becomes the exception."""
    command = [sys.executable, "-m", __name__, folder, strategy, str(world_size)]
    ranks = [
        subprocess.Popen([*command, str(rank)], stderr=subprocess.PIPE, text=True)
        for rank in range(world_size)
    ]
    errors = [(rank, process.communicate()[1]) for rank, process in enumerate(ranks)]
    for (rank, error), process in zip(errors, ranks, strict=True):
        if process.returncode:
            raise RuntimeError(f"rank {rank} of the sharded run failed:\n{error[-4000:]}")


def _run_rank(rank: int, world_size: int, strategy: str, folder: str) -> None:
    """One spawned process: join the group, shard, run the tokens once, write what it saw."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world_size
    )
    try:
        model, tokens, input_mask = _read_inputs(Path(folder))
        parallelize(model, init_device_mesh("cpu", (world_size,)), strategy)
        dist.barrier()
        started = time.perf_counter()
        with torch.no_grad():
            output = model(tokens, input_mask)
        dist.barrier()
        seconds = time.perf_counter() - started
        tensors = {"logits": output.logits.contiguous()}
        for index, stats in enumerate(output.router_stats):
            tensors[f"experts.{index}"] = stats.experts.contiguous()
        save_file(
            tensors, Path(folder) / f"rank{rank}.safetensors", metadata={"seconds": str(seconds)}
        )
    finally:
        dist.destroy_process_group()


def _read_outputs(path: Path) -> tuple[torch.Tensor, list[torch.Tensor], float]:
    with safe_open(path, framework="pt") as file:
        names = file.keys()  # a safe_open handle is not iterable itself
        keys = sorted((k for k in names if k.startswith("experts.")), key=_layer_index)
        experts = [file.get_tensor(k) for k in keys]
        return file.get_tensor("logits"), experts, json.loads(file.metadata()["seconds"])


def _layer_index(key: str) -> int:
    return int(key.split(".")[1])


if __name__ == "__main__":  # one rank: FOLDER STRATEGY WORLD_SIZE RANK
    _folder, _strategy, _world_size, _rank = sys.argv[1:]
    _run_rank(int(_rank), int(_world_size), _strategy, _folder)
