import pytest
import torch
import torch.nn.functional as F

from mingrok.moe import MoELayer, dense_moe_reference, expert_ffn, gelu_tanh, sparse_moe

from .conftest import tiny_config


def test_gelu_is_the_tanh_form():
    x = torch.linspace(-5, 5, 101)
    inner = (2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)
    torch.testing.assert_close(gelu_tanh(x), 0.5 * x * (1 + torch.tanh(inner)))
    assert not torch.allclose(gelu_tanh(x), F.gelu(x), atol=1e-5)  # not the erf GELU


def test_gate_and_value_are_not_interchangeable():
    x = torch.randn(5, 8)
    w, v, u = torch.randn(8, 12), torch.randn(8, 12), torch.randn(12, 8)
    expected = (gelu_tanh(x @ w) * (x @ v)) @ u
    torch.testing.assert_close(expert_ffn(x, w, v, u), expected)
    assert not torch.allclose(expert_ffn(x, v, w, u), expected)


@pytest.mark.parametrize(("experts", "top_k"), [(4, 2), (8, 2), (8, 3), (4, 1), (3, 3)])
def test_sparse_equals_dense_outputs_and_gradients(experts, top_k):
    torch.manual_seed(experts * 10 + top_k)
    n, d, f = 37, 12, 20
    x = torch.randn(n, d, requires_grad=True)
    weights = [
        (torch.randn(experts, d, f) / d**0.5).requires_grad_(),
        (torch.randn(experts, d, f) / d**0.5).requires_grad_(),
        (torch.randn(experts, f, d) / f**0.5).requires_grad_(),
    ]
    probs = torch.randn(n, experts).softmax(-1)
    gates, chosen = probs.topk(top_k, dim=-1)
    gates.requires_grad_()
    upstream = torch.randn(n, d)

    sparse = sparse_moe(x, chosen, gates, *weights)
    sparse_grads = torch.autograd.grad((sparse * upstream).sum(), [x, gates, *weights])
    dense = dense_moe_reference(x, chosen, gates, *weights)
    dense_grads = torch.autograd.grad((dense * upstream).sum(), [x, gates, *weights])

    torch.testing.assert_close(sparse, dense)
    for got, expected in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(got, expected)


def test_unused_experts_get_zero_gradient():
    x = torch.randn(6, 4)
    weights = [torch.randn(4, 4, 8, requires_grad=True), torch.randn(4, 4, 8), torch.randn(4, 8, 4)]
    chosen = torch.tensor([[0, 1]] * 6)
    gates = torch.full((6, 2), 0.5)
    sparse_moe(x, chosen, gates, *weights).sum().backward()
    assert weights[0].grad[2:].abs().sum() == 0
    assert weights[0].grad[:2].abs().sum() > 0


def test_moe_layer_output_first_and_each_token_independent():
    config = tiny_config()
    layer = MoELayer(config)
    x = torch.randn(2, 7, config.d_model)
    out, stats = layer(x)
    assert out.shape == x.shape
    assert stats.experts.shape == (14, config.num_experts_per_token)
    # a token's output depends on that token only: no mixing across positions or rows
    x2 = x.clone()
    x2[1, 3] += 1.0
    out2 = layer(x2).output
    changed = (out2 - out).abs().amax(-1) > 0
    assert changed.sum().item() == 1 and changed[1, 3]


def test_moe_layer_matches_dense_reference_weights_layout():
    config = tiny_config()
    layer = MoELayer(config)
    x = torch.randn(1, 5, config.d_model)
    out, stats = layer(x)
    flat = x.reshape(5, -1)
    expected = dense_moe_reference(
        flat, stats.experts, stats.gates, layer.w_gate, layer.w_value, layer.w_out
    )
    torch.testing.assert_close(out.reshape(5, -1), expected)


def test_moe_layer_alone_draws_its_experts_with_std_one_over_root_fan_in():
    config = tiny_config(d_model=64, num_experts=4, ffn_size=96)
    layer = MoELayer(config)
    for weight, fan_in in ((layer.w_gate, 64), (layer.w_value, 64), (layer.w_out, 96)):
        assert abs(weight.std().item() * fan_in**0.5 - 1) < 0.05
    router = layer.router.linear.weight.clone()
    gate = layer.w_gate.clone()
    layer.reset_parameters()
    assert not torch.equal(layer.w_gate, gate)  # drawn again
    assert torch.equal(layer.router.linear.weight, router)  # the router owns its own tensors


def test_moe_bf16_casts_round_the_gates_and_the_output_as_grok1s_code_does():
    config = tiny_config(moe_bf16_casts=True)
    layer = MoELayer(config)
    x = torch.randn(2, 9, config.d_model, requires_grad=True)
    out, stats = layer(x)
    assert out.dtype == torch.bfloat16 and x.dtype == torch.float32
    flat, gates = x.reshape(18, -1), stats.gates.to(torch.bfloat16)  # rounded, then float32 math
    expected = dense_moe_reference(
        flat, stats.experts, gates, layer.w_gate, layer.w_value, layer.w_out
    )
    torch.testing.assert_close(out.reshape(18, -1).float(), expected, rtol=2**-8, atol=1e-6)
    uncast = MoELayer(tiny_config())
    uncast.load_state_dict(layer.state_dict())
    assert not torch.equal(out, uncast(x).output.to(torch.bfloat16))  # the gates' rounding shows
    out.float().sum().backward()
    assert x.grad is not None and layer.w_out.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("dtype", "computed"),
    [
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
    ],
)
def test_experts_finish_in_float32_at_least(dtype, computed):
    """grok-1's bfloat16 experts round their two input projections, then promote to float32."""
    x, w, v = torch.randn(3, 8, dtype=dtype), torch.randn(8, 12), torch.randn(8, 12)
    u = torch.randn(12, 8)
    assert expert_ffn(x, w.to(dtype), v.to(dtype), u.to(dtype)).dtype == computed
