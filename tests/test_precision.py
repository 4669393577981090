"""Grok-1's mixed precision: what stays float32 in a bfloat16 model, how its multipliers round."""

import math

import pytest
import torch

from mingrok import MinGrok
from mingrok.precision import multiplier_in
from mingrok.train import TrainConfig, Trainer

from .conftest import tiny_config

KEPT = ("norm.scale", "router.linear.weight", "router.noise_linear.weight")


def _split(model):
    kept = {n: p for n, p in model.named_parameters() if n.endswith(KEPT)}
    cast = {n: p for n, p in model.named_parameters() if not n.endswith(KEPT)}
    return kept, cast


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_norm_scales_and_router_stay_float32_and_unrounded(dtype):
    model = MinGrok(tiny_config(router_noise="noisy_topk", router_noise_std=1.0))
    with torch.no_grad():  # values that a bfloat16 or float16 copy would round
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    identities = {n: id(p) for n, p in model.named_parameters()}
    model.to(dtype)
    kept, cast = _split(model)
    assert len(kept) == 2 * 4 + 1 + 2 * 2  # four norms per layer, the final one, two routers
    for name, param in kept.items():
        assert param.dtype == torch.float32 and torch.equal(param, before[name]), name
    for name, param in cast.items():
        assert param.dtype == dtype and torch.equal(param, before[name].to(dtype)), name
    # the same Parameter objects, so an optimizer built before the cast still holds them
    assert identities == {n: id(p) for n, p in model.named_parameters()}


def test_kept_parameters_follow_device_moves_and_wider_casts():
    model = MinGrok(tiny_config()).to(torch.bfloat16)
    assert {p.dtype for p in model.double().parameters()} == {torch.float64}
    assert {p.dtype for p in model.float().parameters()} == {torch.float32}
    meta = MinGrok(tiny_config()).to(device="meta", dtype=torch.bfloat16)
    kept, cast = _split(meta)
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert {p.dtype for p in kept.values()} == {torch.float32}
    assert {p.dtype for p in cast.values()} == {torch.bfloat16}


def test_multipliers_round_like_jax_weak_typed_scalars():
    assert multiplier_in(1 / math.sqrt(3), torch.bfloat16) == 0.578125
    assert multiplier_in(math.sqrt(6144), torch.bfloat16) == 78.5  # Grok-1's √D
    assert multiplier_in(8.0, torch.bfloat16) == 8.0
    third = 1 / math.sqrt(3)
    assert multiplier_in(third, torch.float32) == torch.tensor(third).item() != third
    assert multiplier_in(third, torch.float64) == third
    generator = torch.Generator().manual_seed(0)
    logs = torch.randn(200, generator=generator, dtype=torch.float64) * 2  # normal in float16
    ties = [1 + 2**-8, 1 + 3 * 2**-8]  # halfway between two bfloat16 numbers: to the even one
    for dtype in (torch.bfloat16, torch.float16, torch.float32):  # torch's own rounding
        for value in [*torch.exp(logs).tolist(), *ties]:
            exact = torch.tensor(value, dtype=torch.float64)
            assert multiplier_in(value, dtype) == exact.to(dtype).item(), (value, dtype)


def test_bf16_model_scales_its_embedding_by_the_rounded_multiplier():
    config = tiny_config(num_layers=1, embedding_multiplier=math.sqrt(6144))
    model = MinGrok(config).to(torch.bfloat16)
    captured = {}
    model.layers[0].pre_attention_norm.register_forward_pre_hook(
        lambda m, args: captured.setdefault("h", args[0])
    )
    tokens = torch.randint(0, config.vocab_size, (2, 16))
    model(tokens)
    rows = model.embed(tokens)
    assert torch.equal(captured["h"], rows * 78.5)
    assert not torch.equal(captured["h"], (rows.float() * math.sqrt(6144)).bfloat16())


def test_a_bf16_model_trains_with_float32_norms_and_router():
    config = tiny_config(router_aux_loss_coef=1e-2, router_z_loss_coef=1e-3)
    model = MinGrok(config).to(torch.bfloat16)
    kept, cast = _split(model)
    before = {n: p.detach().clone() for n, p in kept.items()}
    ids = torch.randint(0, config.vocab_size, (2000,), generator=torch.Generator().manual_seed(1))
    train = TrainConfig(steps=3, batch_size=4, warmup_steps=1, eval_windows=2)
    trainer = Trainer(model, ids, ids, torch.ones(config.vocab_size), train)
    losses = [trainer.step() for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    assert {p.grad.dtype for p in kept.values()} == {torch.float32}
    assert {p.grad.dtype for p in cast.values()} == {torch.bfloat16}
    for name, param in kept.items():  # updated, and still float32
        assert param.dtype == torch.float32 and not torch.equal(param, before[name]), name
