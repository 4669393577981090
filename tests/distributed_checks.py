"""Sharded == unsharded, checked inside every rank of a torchrun launch (``test_parallel.py``).

Run as ``torchrun --nproc-per-node R -m tests.distributed_checks FIXTURE.npz``. Each rank
builds the three models (the course's freshly initialised one, the shipped pretrained one and
the reference fixture's), keeps an unsharded copy, shards another by every strategy that R
allows, runs the same tokens through both with a training loss (cross-entropy + the router
losses), and asserts logits within 1e-5, identical expert choices and equal gradients. Rank 0
prints the largest differences as one JSON line. Any failed assertion exits the rank non-zero.
"""

from __future__ import annotations

import copy
import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor

from mingrok.config import SHAKESPEARE
from mingrok.grok1 import load_reference
from mingrok.model import MinGrok
from mingrok.moe import MoELayer
from mingrok.parallel import STRATEGIES, ExpertParallelMoE, init_distributed, parallelize
from mingrok.pretrained import load

from .conftest import tiny_config

LOGIT_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-5


def models(fixture: str) -> list[tuple[str, MinGrok, torch.Tensor, torch.Tensor | None]]:
    pretrained, tokenizer = load()
    text = ["JULIET:\nO Romeo, Romeo! wherefore art thou", "ROMEO:\nShall I hear more, or sh"]
    tokens = torch.tensor([tokenizer.encode(line)[:20] for line in text])
    torch.manual_seed(0)
    course = MinGrok(SHAKESPEARE)
    reference = load_reference(fixture)
    return [
        ("course", course, tokens, None),
        ("pretrained", pretrained, tokens, None),
        ("fixture", reference.model(), reference.tokens, reference.input_mask),
    ]


def training_loss(model: MinGrok, tokens: torch.Tensor, input_mask: torch.Tensor | None):
    output = model(tokens, input_mask)
    loss = F.cross_entropy(output.logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    return output, loss + output.aux_loss


def check_model(model, tokens, input_mask, mesh: DeviceMesh, strategy: str) -> dict[str, float]:
    reference = copy.deepcopy(model).train()
    sharded = parallelize(copy.deepcopy(model), mesh, strategy).train()
    if strategy == "tensor":  # the tied embedding is split along D, not replicated
        embed = model.embed.weight
        assert sharded.embed.weight.shape == (embed.shape[0], embed.shape[1] // mesh.size())
    expected, expected_loss = training_loss(reference, tokens, input_mask)
    found, found_loss = training_loss(sharded, tokens, input_mask)
    expected_loss.backward()
    found_loss.backward()
    logit_diff = (found.logits - expected.logits).abs().max().item()
    assert logit_diff <= LOGIT_TOLERANCE, (strategy, logit_diff)
    for mine, theirs in zip(found.router_stats, expected.router_stats, strict=True):
        assert torch.equal(mine.experts, theirs.experts), strategy
    gradients = dict(reference.named_parameters())
    grad_diff = max(
        _gradient_difference(parameter, gradients[name].grad, mesh)
        for name, parameter in sharded.named_parameters()
    )
    assert grad_diff <= GRADIENT_TOLERANCE, (strategy, grad_diff)
    return {"logits": logit_diff, "gradients": grad_diff}


def _gradient_difference(parameter, expected: torch.Tensor, mesh: DeviceMesh) -> float:
    """Max |sharded − unsharded| of one parameter's whole gradient.

    A DTensor gradient is gathered by DTensor itself. A plain parameter of the full shape is
    replicated and must match as it is; a smaller one is a block: every rank's gradient is
    gathered, ranks holding the same block (a shared KV head) are summed, blocks concatenated.
    """
    grad = parameter.grad
    if isinstance(grad, DTensor):
        return (grad.full_tensor() - expected).abs().max().item()
    if grad.shape == expected.shape:
        return (grad - expected).abs().max().item()
    dim = next(d for d, (a, b) in enumerate(zip(grad.shape, expected.shape, strict=True)) if a != b)
    gathered = [torch.empty_like(grad) for _ in range(mesh.size())]
    dist.all_gather(gathered, grad.contiguous(), group=mesh.get_group())
    num_blocks = expected.shape[dim] // grad.shape[dim]
    blocks = [torch.zeros_like(grad) for _ in range(num_blocks)]
    for rank, block in enumerate(gathered):
        blocks[rank * num_blocks // mesh.size()] += block
    return (torch.cat(blocks, dim=dim) - expected).abs().max().item()


def check_expert_layer_with_local_tokens(mesh: DeviceMesh) -> dict[str, float]:
    """Each rank brings different tokens (uneven counts): outputs and gradients of the
    expert-parallel layer equal MoELayer's on all the tokens; router gradients sum to its."""
    torch.manual_seed(1)
    moe = MoELayer(tiny_config(num_experts=8, ffn_size=16))
    x = torch.randn(1, 2 * mesh.size() + 3, moe.config.d_model, requires_grad=True)
    weights = torch.randn(x.shape)
    expected = moe(x).output
    (expected * weights).sum().backward()
    rank = mesh.get_local_rank()
    mine = [rows.detach().requires_grad_() for rows in x[0].tensor_split(mesh.size())][rank]
    my_weights = weights[0].tensor_split(mesh.size())[rank]
    layer = ExpertParallelMoE(copy.deepcopy(moe), mesh, tokens="local")
    found = layer(mine[None]).output[0]
    (found * my_weights).sum().backward()
    output_diff = (found - expected[0].tensor_split(mesh.size())[rank]).abs().max().item()
    input_diff = (mine.grad - x.grad[0].tensor_split(mesh.size())[rank]).abs().max().item()
    router_grad = layer.router.linear.weight.grad.clone()
    dist.all_reduce(router_grad, group=mesh.get_group())
    diffs = [input_diff, (router_grad - moe.router.linear.weight.grad).abs().max().item()]
    for name in ("w_gate", "w_value", "w_out"):
        diffs.append(_gradient_difference(getattr(layer, name), getattr(moe, name).grad, mesh))
    assert output_diff <= LOGIT_TOLERANCE, output_diff
    assert max(diffs) <= GRADIENT_TOLERANCE, diffs
    return {"outputs": output_diff, "gradients": max(diffs)}


def main() -> None:
    run = init_distributed("cpu")
    mesh = init_device_mesh("cpu", (run.world_size,))
    figures = {}
    for name, model, tokens, input_mask in models(sys.argv[1]):
        for strategy, (_, check) in STRATEGIES.items():
            try:
                check(model.config, run.world_size)
            except ValueError:
                continue
            figures[f"{name}/{strategy}"] = check_model(model, tokens, input_mask, mesh, strategy)
    figures["moe_layer/expert_local_tokens"] = check_expert_layer_with_local_tokens(mesh)
    if run.is_main:
        print(json.dumps({"world_size": run.world_size, "max_abs_diff": figures}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
