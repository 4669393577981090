import math

import pytest
import torch

from mingrok.router import (
    Router,
    expert_fraction,
    load_balancing_loss,
    router_z_loss,
)

from .conftest import tiny_config


def test_gates_are_unnormalised_softmax_top_k():
    config = tiny_config(num_experts=8, num_experts_per_token=2)
    router = Router(config)
    x = torch.randn(50, config.d_model)
    stats = router(x)
    logits = x @ router.linear.weight.t()
    probs = torch.softmax(logits, dim=-1)
    expected_gates, expected_experts = probs.topk(2, dim=-1)
    torch.testing.assert_close(stats.probs, probs)
    torch.testing.assert_close(stats.gates, expected_gates)
    assert torch.equal(stats.experts, expected_experts)
    assert (stats.gates.sum(-1) < 1).all()  # not renormalised
    assert (stats.gates[:, 0] >= stats.gates[:, 1]).all()  # descending
    assert stats.logits.dtype == torch.float32


def test_router_computes_in_float32_for_bf16_inputs():
    config = tiny_config()
    router = Router(config).to(torch.bfloat16)
    stats = router(torch.randn(4, config.d_model).to(torch.bfloat16))
    assert stats.logits.dtype == stats.probs.dtype == torch.float32


def test_renormalised_gates_option_is_mixtral_style():
    config = tiny_config(renormalize_gates=True)
    stats = Router(config)(torch.randn(10, config.d_model))
    torch.testing.assert_close(stats.gates.sum(-1), torch.ones(10))


@pytest.mark.parametrize("kind", ["gaussian", "jitter", "noisy_topk"])
def test_noise_only_in_training_reproducible_and_seed_dependent(kind):
    config = tiny_config(router_noise=kind, router_noise_std=0.5)
    router = Router(config)
    if kind == "noisy_topk":
        torch.nn.init.normal_(router.noise_linear.weight)
    x = torch.randn(20, config.d_model)

    router.eval()
    clean = router(x).probs
    torch.testing.assert_close(router(x).probs, clean)  # eval: deterministic, no noise

    router.train()
    router.seed_noise(1)
    first = router(x).probs
    second = router(x).probs
    assert not torch.allclose(first, clean)
    assert not torch.allclose(first, second)  # the stream moves on between calls
    router.seed_noise(1)
    torch.testing.assert_close(router(x).probs, first)  # same seed, same noise
    router.seed_noise(2)
    assert not torch.allclose(router(x).probs, first)


def test_noisy_topk_noise_scale_is_learned():
    config = tiny_config(router_noise="noisy_topk", router_noise_std=1.0)
    router = Router(config).train()
    router(torch.randn(8, config.d_model)).probs.pow(2).sum().backward()
    assert router.noise_linear.weight.grad is not None
    assert router.noise_linear.weight.grad.abs().sum() > 0


def test_switch_loss_is_one_for_balanced_top1():
    experts = torch.arange(8).repeat(5)[:, None] % 4  # 40 tokens, 10 per expert
    probs = torch.full((40, 4), 0.25)
    assert math.isclose(load_balancing_loss(probs, experts).item(), 1.0, rel_tol=1e-6)


def test_switch_loss_hand_computation():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    experts = probs.argmax(-1, keepdim=True)  # 0, 0, 2, 0
    f = torch.tensor([3 / 4, 0, 1 / 4])
    p = probs.mean(0)
    expected = 3 * (f * p).sum()
    torch.testing.assert_close(load_balancing_loss(probs, experts), expected)
    assert load_balancing_loss(probs, experts).item() > 1  # imbalance costs more than 1


def test_switch_loss_top2_balanced_is_one_and_masks_padding():
    experts = torch.tensor([[0, 1], [2, 3], [0, 1], [2, 3], [3, 3]])
    probs = torch.full((5, 4), 0.25)
    mask = torch.tensor([True, True, True, True, False])
    assert math.isclose(load_balancing_loss(probs, experts, mask).item(), 1.0, rel_tol=1e-6)
    torch.testing.assert_close(expert_fraction(experts, 4, mask), torch.full((4,), 0.25))


def test_z_loss_hand_computation():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    expected = (math.log(2) ** 2 + math.log(4) ** 2) / 2
    assert math.isclose(router_z_loss(logits).item(), expected, rel_tol=1e-6)


def test_stats_properties_match_functions():
    config = tiny_config()
    stats = Router(config)(torch.randn(30, config.d_model))
    torch.testing.assert_close(stats.balance_loss, load_balancing_loss(stats.probs, stats.experts))
    torch.testing.assert_close(stats.z_loss, router_z_loss(stats.logits))
    torch.testing.assert_close(stats.expert_fraction.sum(), torch.tensor(1.0))


def test_router_alone_starts_with_a_zero_noise_map_and_reset_touches_only_it():
    router = Router(tiny_config(router_noise="noisy_topk", router_noise_std=1.0))
    assert router.noise_linear.weight.abs().sum() == 0
    torch.nn.init.normal_(router.noise_linear.weight)
    weight = router.linear.weight.clone()
    router.reset_parameters()
    assert router.noise_linear.weight.abs().sum() == 0
    assert torch.equal(router.linear.weight, weight)  # a projection: MinGrok initialises it
