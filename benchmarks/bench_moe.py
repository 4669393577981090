"""MoE forward+backward: our sparse dispatch vs the ideal grouped matmuls vs the dense reference.

All three see the same tokens and the same routing. "Ideal" runs only the per-expert matmul
chains on rows that are already grouped by expert (no routing, gather or scatter): no dispatch
can beat it, so ours/ideal is the price of dispatch. The dense reference computes every expert on
every token, as the official grok-1 code (and the seed repo) does.

    .venv/bin/python benchmarks/bench_moe.py [--tokens 4096] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mingrok import SHAKESPEARE
from mingrok.moe import MoELayer, dense_moe_reference, expert_ffn, sparse_moe


def interleaved_medians(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds per step, running the candidates in turn so background load hits all."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per batch (B·T)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = SHAKESPEARE
    layer = MoELayer(config)
    x = torch.randn(1, args.tokens, config.d_model, requires_grad=True)
    with torch.no_grad():
        stats = layer.router(x[0])
    experts, gates = stats.experts, stats.gates.detach().requires_grad_()
    weights = (layer.w_gate, layer.w_value, layer.w_out)
    flat = x[0]

    rows = torch.bincount(experts.reshape(-1), minlength=config.num_experts).tolist()
    grouped = [torch.randn(n, config.d_model, requires_grad=True) for n in rows]

    def ideal():
        outs = [expert_ffn(block, *(w[e] for w in weights)) for e, block in enumerate(grouped)]
        torch.cat(outs).sum().backward()

    def ours_dispatch():
        sparse_moe(flat, experts, gates, *weights).sum().backward()

    def ours_layer():
        layer(x).output.sum().backward()

    def dense():
        dense_moe_reference(flat, experts, gates, *weights).sum().backward()

    steps = {
        "ideal grouped matmuls": ideal,
        "sparse_moe (given routing)": ours_dispatch,
        "MoELayer (router + dispatch)": ours_layer,
        "dense reference (all experts)": dense,
    }
    results = interleaved_medians(steps, args.repeats)
    print(
        f"MoE forward+backward, {args.tokens} tokens, D={config.d_model}, F={config.ffn_dim}, "
        f"E={config.num_experts}, k={config.num_experts_per_token}, "
        f"{args.threads} threads, median of {args.repeats}"
    )
    base = results["ideal grouped matmuls"]
    for name, seconds in results.items():
        print(f"  {name:32s} {seconds * 1e3:8.1f} ms   {seconds / base:5.2f}x ideal")


if __name__ == "__main__":
    main()
