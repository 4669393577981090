import torch

from mingrok.norm import RMSNorm


def test_unit_scale_gives_unit_rms():
    norm = RMSNorm(64)
    y = norm(torch.randn(3, 5, 64) * 7 + 2)
    rms = y.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-4, rtol=0)


def test_multiplies_by_scale_not_one_plus_scale():
    norm = RMSNorm(8)
    x = torch.randn(4, 8)
    with torch.no_grad():
        norm.scale.copy_(torch.linspace(-2, 2, 8))
    expected = norm.scale * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(norm(x), expected)


def test_eps_matters_for_tiny_inputs():
    x = torch.full((1, 4), 1e-4)
    assert RMSNorm(4, eps=1e-5)(x).abs().max() < 0.1  # eps dominates mean(x²) = 1e-8
    assert torch.allclose(RMSNorm(4, eps=1e-12)(x), torch.ones(1, 4), atol=1e-3)


def test_float32_inside_and_dtype_preserved():
    norm = RMSNorm(16)
    x = (torch.randn(2, 16) * 300).to(torch.bfloat16)
    y = norm(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, norm(x.float()).to(torch.bfloat16))  # computed in fp32, cast once


def test_scale_starts_at_one_and_reset_restores_it():
    norm = RMSNorm(8)
    assert torch.equal(norm.scale, torch.ones(8))
    with torch.no_grad():
        norm.scale.mul_(3)
    norm.reset_parameters()
    assert torch.equal(norm.scale, torch.ones(8))
