import math

import torch

from mingrok.rope import apply_rope, rope_inverse_frequencies, rotate_half


def test_inverse_frequencies():
    inv = rope_inverse_frequencies(128, 10000.0)
    assert inv.shape == (64,)
    assert math.isclose(inv[1].item(), 10000 ** (-2 / 128), rel_tol=1e-6)
    assert inv[0].item() == 1.0


def test_position_zero_is_identity():
    x = torch.randn(2, 1, 3, 16)
    torch.testing.assert_close(apply_rope(x, torch.zeros(1, dtype=torch.long), 10000.0), x)


def test_split_half_pairing():
    """Dim i pairs with i + d/2: a vector living in dims (0, 8) stays in dims (0, 8)."""
    d, t, base = 16, 5, 10000.0
    x = torch.zeros(1, 1, 1, d)
    x[..., 0], x[..., d // 2] = 1.0, 2.0
    y = apply_rope(x, torch.tensor([t]), base)
    angle = t * 1.0  # θ_0 = 1
    expected = torch.zeros_like(x)
    expected[..., 0] = math.cos(angle) - 2.0 * math.sin(angle)
    expected[..., d // 2] = 2.0 * math.cos(angle) + math.sin(angle)
    torch.testing.assert_close(y, expected)
    # the interleaved (RoFormer) pairing would have moved energy into dim 1 instead
    assert y[..., 1].abs().max() == 0


def test_rotation_preserves_norm():
    x = torch.randn(2, 7, 3, 32)
    y = apply_rope(x, torch.arange(7), 500.0)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))


def test_logits_depend_only_on_relative_position():
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)

    def logit(t, s):
        rq = apply_rope(q, torch.tensor([t]), 10000.0)
        rk = apply_rope(k, torch.tensor([s]), 10000.0)
        return (rq * rk).sum().item()

    assert math.isclose(logit(7, 3), logit(104, 100), rel_tol=1e-4, abs_tol=1e-5)
    assert math.isclose(logit(3, 3), logit(50, 50), rel_tol=1e-4, abs_tol=1e-5)
    assert not math.isclose(logit(7, 3), logit(7, 4), rel_tol=1e-3)


def test_per_row_offsets_match_shifted_positions():
    x = torch.randn(2, 4, 2, 8)
    positions = torch.tensor([[3, 4, 5, 6], [0, 1, 2, 3]])
    y = apply_rope(x, positions, 10000.0)
    torch.testing.assert_close(y[0], apply_rope(x[:1], torch.arange(3, 7), 10000.0)[0])
    torch.testing.assert_close(y[1], apply_rope(x[1:], torch.arange(4), 10000.0)[0])


def test_rotate_half():
    x = torch.arange(4.0)
    assert rotate_half(x).tolist() == [-2.0, -3.0, 0.0, 1.0]
