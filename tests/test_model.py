import math

import pytest
import torch
import torch.nn.functional as F

from mingrok import MinGrok

from .conftest import tiny_config


def test_output_shapes_and_dtype():
    config = tiny_config()
    model = MinGrok(config)
    out = model(torch.randint(0, config.vocab_size, (3, 10)))
    assert out.logits.shape == (3, 10, config.vocab_size)
    assert out.logits.dtype == torch.float32
    assert len(out.router_stats) == config.num_layers
    assert out.aux_loss == 0.0  # Grok-1 default: no auxiliary loss, no work done


def test_four_sandwich_norms_per_layer_and_tied_embedding():
    model = MinGrok(tiny_config())
    names = [n for n, _ in model.layers[0].named_parameters() if n.endswith("norm.scale")]
    assert sorted(names) == sorted(
        f"{p}.scale"
        for p in ("pre_attention_norm", "post_attention_norm", "pre_moe_norm", "post_moe_norm")
    )
    assert not any("bias" in n for n, _ in model.named_parameters())
    assert not any("lm_head" in n or "unembed" in n for n, _ in model.named_parameters())


def test_unembedding_uses_embedding_matrix_and_output_multiplier():
    config = tiny_config(num_layers=1)
    model = MinGrok(config)
    captured = {}
    model.final_norm.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    tokens = torch.randint(0, config.vocab_size, (1, 6))
    logits = model(tokens).logits
    expected = captured["h"] @ model.embed.weight.t() / math.sqrt(3)
    torch.testing.assert_close(logits, expected)


def test_input_embedding_multiplied_by_sqrt_d():
    config = tiny_config(num_layers=1)
    model = MinGrok(config)
    captured = {}
    model.layers[0].pre_attention_norm.register_forward_pre_hook(
        lambda m, args: captured.setdefault("h", args[0])
    )
    tokens = torch.randint(0, config.vocab_size, (1, 4))
    model(tokens)
    torch.testing.assert_close(captured["h"], model.embed(tokens) * math.sqrt(config.d_model))


def test_causal_in_training_mode():
    """Changing token t+1 leaves the logits at positions ≤ t unchanged (the seed model fails)."""
    config = tiny_config(dropout=0.0, router_noise="none")
    model = MinGrok(config).train()
    tokens = torch.randint(0, config.vocab_size, (2, 12))
    base = model(tokens).logits
    for t in (0, 5, 10):
        changed = tokens.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % config.vocab_size
        after = model(changed).logits
        torch.testing.assert_close(after[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
        assert not torch.allclose(after[:, t + 1 :], base[:, t + 1 :])


def test_rows_of_a_batch_do_not_interact():
    config = tiny_config()
    model = MinGrok(config)
    tokens = torch.randint(0, config.vocab_size, (3, 8))
    together = model(tokens).logits
    alone = model(tokens[1:2]).logits
    torch.testing.assert_close(together[1:2], alone, rtol=1e-5, atol=1e-5)


def test_initial_loss_is_close_to_log_vocab():
    config = tiny_config(vocab_size=128, d_model=64)
    model = MinGrok(config)
    tokens = torch.randint(0, 128, (4, 32))
    logits = model(tokens[:, :-1]).logits
    loss = F.cross_entropy(logits.reshape(-1, 128), tokens[:, 1:].reshape(-1))
    assert abs(loss.item() - math.log(128)) < 0.5  # the seed repo starts at ≈ 92


def test_left_padding_does_not_change_real_positions():
    config = tiny_config()
    model = MinGrok(config)
    tokens = torch.randint(1, config.vocab_size, (1, 6))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), tokens], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 6])
    # RoPE is relative: shifting every real token by 3 positions leaves their logits unchanged
    torch.testing.assert_close(
        model(padded, mask).logits[:, 3:], model(tokens).logits, rtol=1e-4, atol=1e-5
    )


def test_aux_loss_weighted_mean_over_layers():
    config = tiny_config(router_aux_loss_coef=0.01, router_z_loss_coef=0.001)
    model = MinGrok(config)
    out = model(torch.randint(0, config.vocab_size, (2, 8)))
    balance = torch.stack([s.balance_loss for s in out.router_stats]).mean()
    z = torch.stack([s.z_loss for s in out.router_stats]).mean()
    torch.testing.assert_close(out.aux_loss, 0.01 * balance + 0.001 * z)
    out.aux_loss.backward()
    assert model.layers[0].moe.router.linear.weight.grad.abs().sum() > 0


def test_router_noise_seeded_per_layer():
    config = tiny_config(router_noise="gaussian", router_noise_std=1.0)
    model = MinGrok(config).train()
    tokens = torch.randint(0, config.vocab_size, (2, 8))
    model.seed_router_noise(5)
    first = model(tokens).logits
    model.seed_router_noise(5)
    torch.testing.assert_close(model(tokens).logits, first)
    model.eval()
    assert not torch.allclose(model(tokens).logits, first)


@pytest.mark.parametrize(
    ("tokens", "error", "match"),
    [
        (torch.zeros(2, 3), TypeError, "integer"),
        (torch.zeros(6, dtype=torch.long), ValueError, r"\[B, T\]"),
        (torch.full((1, 3), 61), ValueError, r"\[0, 61\)"),
        (torch.full((1, 3), -1), ValueError, "min -1"),
        (torch.zeros(1, 33, dtype=torch.long), ValueError, "at most 32"),
    ],
)
def test_bad_tokens_are_explained(tokens, error, match):
    with pytest.raises(error, match=match):
        MinGrok(tiny_config())(tokens)


def test_bad_input_mask_shape():
    with pytest.raises(ValueError, match="input_mask"):
        MinGrok(tiny_config())(
            torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool)
        )


def test_noisy_topk_noise_map_starts_at_zero_in_the_full_model():
    model = MinGrok(tiny_config(router_noise="noisy_topk", router_noise_std=1.0))
    for layer in model.layers:
        assert layer.moe.router.noise_linear.weight.abs().sum() == 0
        assert layer.moe.router.linear.weight.abs().sum() > 0


def test_reset_parameters_initialises_every_tensor_by_its_rule():
    config = tiny_config(
        vocab_size=256, d_model=64, num_q_heads=4, num_kv_heads=2, head_dim=16, ffn_size=96,
        router_noise="noisy_topk", router_noise_std=1.0,
    )  # fmt: skip
    model = MinGrok(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))  # a tensor that nobody initialises stays NaN
    model.reset_parameters()

    def assert_std(weight, fan_in):
        assert abs(weight.std().item() * math.sqrt(fan_in) - 1) < 0.1

    assert_std(model.embed.weight, config.d_model)  # √D·E[token] has unit RMS
    for layer in model.layers:
        attention, moe = layer.attention, layer.moe
        for projection in (attention.query, attention.key, attention.value, attention.out):
            assert_std(projection.weight, projection.in_features)
        assert_std(moe.router.linear.weight, config.d_model)
        assert_std(moe.w_gate, config.d_model)
        assert_std(moe.w_out, config.ffn_dim)
        assert moe.router.noise_linear.weight.abs().sum() == 0
        for norm in layer.norms():
            assert torch.equal(norm.scale, torch.ones(config.d_model))
    assert torch.equal(model.final_norm.scale, torch.ones(config.d_model))
    assert not any(parameter.isnan().any() for parameter in model.parameters())
