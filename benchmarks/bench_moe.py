"""MoE forward+backward: our sparse dispatch vs the ideal grouped matmuls vs the dense reference.

All see the same tokens and the same routing. "Ideal" runs only the per-expert matmul chains on
rows that are already grouped by expert (no routing, gather or scatter): no dispatch can beat it,
so ours/ideal is the price of dispatch. The dense reference computes every expert on every token,
as the official grok-1 code (and the seed repo) does. Two shapes: the seed's (batch 32 × 256
tokens, D 96, FFN 192, where dispatch is a large share) and the course model's (4096 tokens,
D 128, FFN 688, where the matmuls hide it). The candidates run in turn, round after round, so
that background load hits all of them; the figure is the median over rounds of each round's
ratio to ideal.

    .venv/bin/python benchmarks/bench_moe.py [--rounds 15] [--threads 1 2]

Measured on a shared 2-vCPU AMD EPYC VM (torch 2.13, load 3.5-7 from other jobs, 7 rounds):
sparse_moe 1.08x ideal at the seed's shape and 1.07x at the course's on 1 thread, 1.07x and 0.97x
on 2 threads (MoELayer, router included: 1.08x, 1.11x, 1.09x, 1.02x); the dense reference ~3x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mingrok import SHAKESPEARE, MinGrokConfig
from mingrok.moe import MoELayer, dense_moe_reference, expert_ffn, sparse_moe

SHAPES = {  # name: (config, tokens per batch)
    "seed (32 x 256 tokens, D 96, F 192)": (
        MinGrokConfig(d_model=96, ffn_size=192, num_experts=4, num_experts_per_token=2),
        32 * 256,
    ),
    "course (4096 tokens, D 128, F 688)": (SHAKESPEARE, 4096),
}


def candidates(config: MinGrokConfig, tokens: int) -> dict:
    """name → a function running one forward+backward, all on the same tokens and routing."""
    torch.manual_seed(0)
    layer = MoELayer(config)
    x = torch.randn(1, tokens, config.d_model, requires_grad=True)
    with torch.no_grad():
        stats = layer.router(x[0])
    experts, gates = stats.experts, stats.gates.detach().requires_grad_()
    weights = (layer.w_gate, layer.w_value, layer.w_out)
    flat = x[0]
    rows = torch.bincount(experts.reshape(-1), minlength=config.num_experts).tolist()
    grouped = [torch.randn(n, config.d_model, requires_grad=True) for n in rows]

    def ideal():  # the matmul chains alone (unbind: no per-expert zero gradient of the weights)
        per_expert = zip(*(w.unbind() for w in weights), strict=True)
        outs = [expert_ffn(block, *w) for block, w in zip(grouped, per_expert, strict=True)]
        torch.cat(outs).sum().backward()

    def ours_dispatch():
        sparse_moe(flat, experts, gates, *weights).sum().backward()

    def ours_layer():
        layer(x).output.sum().backward()

    def dense():
        dense_moe_reference(flat, experts, gates, *weights).sum().backward()

    return {
        "ideal grouped matmuls": ideal,
        "sparse_moe (given routing)": ours_dispatch,
        "MoELayer (router + dispatch)": ours_layer,
        "dense reference (all experts)": dense,
    }


def interleaved(steps: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per step for every round, running the candidates in turn."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape, (config, tokens) in SHAPES.items():
            times = interleaved(candidates(config, tokens), args.rounds)
            ideal = times["ideal grouped matmuls"]
            print(
                f"MoE forward+backward, {shape}, E={config.num_experts}, "
                f"k={config.num_experts_per_token}, {threads} thread(s), {args.rounds} rounds"
            )
            for name, seconds in times.items():
                ratio = statistics.median(t / i for t, i in zip(seconds, ideal, strict=True))
                print(
                    f"  {name:32s} {statistics.median(seconds) * 1e3:8.1f} ms   "
                    f"{ratio:5.2f}x ideal (median of per-round ratios)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
