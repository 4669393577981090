import math

import pytest
import torch

from mingrok.attention import (
    MASK_FILL,
    Attention,
    causal_mask,
    grouped_query_attention,
    soft_cap,
)

from .conftest import tiny_config


def reference_attention(q, k, v, mask, multiplier, cap):
    """Plain multi-head attention on repeat-interleaved K/V, written independently."""
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    logits = torch.einsum("bthd,bshd->bhts", q, k) * multiplier
    logits = cap * torch.tanh(logits / cap)
    logits = torch.where(mask[:, None], logits, torch.tensor(-1e30))
    return torch.einsum("bhts,bshd->bthd", logits.softmax(-1), v)


@pytest.mark.parametrize(("heads", "kv_heads"), [(6, 2), (4, 4), (6, 1), (9, 3)])
def test_gqa_equals_mha_on_repeat_interleaved_kv(heads, kv_heads):
    b, t, d = 2, 5, 8
    q, k, v = (
        torch.randn(b, t, heads, d),
        torch.randn(b, t, kv_heads, d),
        torch.randn(b, t, kv_heads, d),
    )
    mask = torch.ones(t, t, dtype=torch.bool).tril().expand(b, t, t)
    got = grouped_query_attention(q, k, v, mask, 0.3, 30.0)
    torch.testing.assert_close(got, reference_attention(q, k, v, mask, 0.3, 30.0))


def test_query_head_uses_kv_head_n_over_group():
    """Grok-1's 48→8 grouping: query head n reads KV head n // 6."""
    b, t, d, heads, kv_heads = 1, 3, 4, 48, 8
    q = torch.randn(b, t, heads, d)
    k = torch.randn(b, t, kv_heads, d)
    v = torch.zeros(b, t, kv_heads, d)
    for g in range(kv_heads):
        v[:, :, g] = g  # value = its KV head index
    mask = torch.ones(b, t, t, dtype=torch.bool)
    out = grouped_query_attention(q, k, v, mask, 1.0, 30.0)
    assert [round(out[0, 0, n, 0].item()) for n in range(heads)] == [n // 6 for n in range(heads)]


def test_soft_cap_bounds_and_keeps_small_logits():
    x = torch.tensor([-1e6, -100.0, -1.0, 0.0, 0.5, 100.0, 1e6])
    y = soft_cap(x, 30.0)
    assert (y.abs() <= 30.0).all() and (y.abs()[1:-1] < 30.0).all()
    assert math.isclose(y[3].item(), 0.0)
    assert math.isclose(y[4].item(), 0.5, rel_tol=1e-3)


def test_cap_applied_after_scale_and_before_mask():
    q = torch.full((1, 2, 1, 4), 100.0)
    k = torch.full((1, 2, 1, 4), 100.0)
    v = torch.tensor([[[[1.0, 0, 0, 0]], [[0, 1.0, 0, 0]]]])
    mask = torch.tensor([[[True, False], [True, True]]])
    out = grouped_query_attention(q, k, v, mask, 0.5, 30.0)
    # both logits of row 1 are capped to the same value 30·tanh(20000/30) → equal weights
    torch.testing.assert_close(out[0, 1, 0], torch.tensor([0.5, 0.5, 0, 0]))
    # row 0 only sees key 0: the masked logit is −1e30, not a capped −30
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.0, 0, 0, 0]))


def test_fully_masked_row_is_uniform_not_nan():
    """Left-padding rows have every key masked: the finite fill gives a uniform softmax."""
    q, k = torch.randn(1, 3, 2, 4), torch.randn(1, 3, 1, 4)
    v = torch.randn(1, 3, 1, 4)
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    out = grouped_query_attention(q, k, v, mask, 1.0, 30.0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 0, 0], v[0, :, 0].mean(0))
    assert MASK_FILL == -1e30


def test_attention_module_is_causal():
    config = tiny_config()
    attention = Attention(config)
    x = torch.randn(1, 6, config.d_model)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()[None]
    before = attention(x, torch.arange(6), mask)
    x2 = x.clone()
    x2[0, 4] += 1.0
    after = attention(x2, torch.arange(6), mask)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_padding_masks_keys_only():
    config = tiny_config()
    attention = Attention(config)
    x = torch.randn(1, 5, config.d_model)
    key_mask = torch.tensor([[True, False, True, True, True]])
    mask = torch.ones(5, 5, dtype=torch.bool).tril()[None] & key_mask[:, None, :]
    base = attention(x, torch.arange(5), mask)
    x2 = x.clone()
    x2[0, 1] = torch.randn(config.d_model) * 5  # change the padded token
    changed = attention(x2, torch.arange(5), mask)
    # no position reads the padded key (its own row attends to key 0 only)
    torch.testing.assert_close(base, changed)
    x3 = x.clone()
    x3[0, 0] += 1.0  # a real key: every later row sees it
    assert not torch.allclose(base[:, 2:], attention(x3, torch.arange(5), mask)[:, 2:])


def test_causal_mask_puts_the_queries_last_and_masks_padded_keys():
    key_mask = torch.tensor([[False, True, True, True, True]])  # one left-padded key
    assert torch.equal(
        causal_mask(key_mask, 5)[0], torch.ones(5, 5, dtype=torch.bool).tril() & key_mask
    )
    # two new queries after three cached keys: positions 3 and 4 of the 5 keys
    expected = torch.tensor([[False, True, True, True, False], [False, True, True, True, True]])
    assert torch.equal(causal_mask(key_mask, 2)[0], expected)
