"""Streamed, sharded loading == one process, checked inside every rank of a torchrun launch
(``test_parallel_load.py``).

Run as ``torchrun --nproc-per-node R -m tests.distributed_load_checks CKPT CONFIG.json``. Each
rank loads the single-process model (:func:`mingrok.grok1.load_checkpoint`), then its own shard
of the same files with :func:`mingrok.parallel.load.load_sharded` for every strategy R allows and
both resident storages, runs the same tokens through both, and asserts logits within 1e-5 and
identical expert choices. Rank 0 prints the largest differences and the bytes each rank holds as
one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mingrok.config import MinGrokConfig
from mingrok.grok1 import load_checkpoint
from mingrok.parallel import init_distributed, shutdown_distributed
from mingrok.parallel.expert import check_expert_parallel
from mingrok.parallel.load import WEIGHTS, load_sharded, resident_bytes

LOGIT_TOLERANCE = 1e-5


def main(path: str, config_path: str) -> None:
    config = MinGrokConfig.from_json(Path(config_path).read_text())
    run = init_distributed("cpu")
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.vocab_size, (2, 12), generator=generator)
    with torch.no_grad():
        expected = load_checkpoint(path, config)(tokens)
    strategies = ["tensor"]
    try:
        check_expert_parallel(config, run.world_size)
        strategies.append("expert")
    except ValueError:
        pass
    report = {"world_size": run.world_size, "max_abs_diff": {}, "resident_bytes": {}}
    for strategy in strategies:
        for weights in WEIGHTS:
            model = load_sharded(path, config, run, strategy, weights)
            if strategy == "tensor":  # the tied embedding is cut along D, not kept whole
                embed = model.embed.weight
                assert embed.shape == (config.vocab_size, config.d_model // run.world_size)
            with torch.no_grad():
                found = model(tokens)
            diff = (found.logits - expected.logits).abs().max().item()
            assert diff <= LOGIT_TOLERANCE, (strategy, weights, diff)
            for mine, theirs in zip(found.router_stats, expected.router_stats, strict=True):
                assert torch.equal(mine.experts, theirs.experts), (strategy, weights)
            name = f"{strategy}/{weights}"
            report["max_abs_diff"][name] = diff
            report["resident_bytes"][name] = resident_bytes(model)
    if run.is_main:
        print(json.dumps(report))
    shutdown_distributed()


if __name__ == "__main__":
    main(*sys.argv[1:])
