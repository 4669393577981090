import pytest
import torch

from mingrok import KVCache, MinGrok
from mingrok.sampling import generate

from .conftest import tiny_config


def test_prefill_then_decode_equals_full_forward():
    config = tiny_config()
    model = MinGrok(config).eval()
    tokens = torch.randint(0, config.vocab_size, (2, 20))
    full = model(tokens).logits
    cache = KVCache.for_model(model, batch_size=2)
    pieces = [model(tokens[:, :7], cache=cache).logits]
    pieces += [model(tokens[:, t : t + 1], cache=cache).logits for t in range(7, 20)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-5)
    assert cache.length == cache.position == 20


def test_bf16_model_caches_in_bf16_and_decodes_as_it_runs_whole():
    config = tiny_config()
    model = MinGrok(config).to(torch.bfloat16).eval()
    tokens = torch.randint(0, config.vocab_size, (2, 20))
    cache = KVCache.for_model(model, batch_size=2)
    assert cache.keys[0].dtype == cache.values[0].dtype == torch.bfloat16  # grok-1's KVMemory
    with torch.no_grad():
        full = model(tokens).logits
        pieces = [model(tokens[:, :7], cache=cache).logits]
        pieces += [model(tokens[:, t : t + 1], cache=cache).logits for t in range(7, 20)]
    # bfloat16 steps are 2^-8 relative: a few of them at most (measured: identical)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=2**-6, atol=2**-6)
    prompt = tokens[0, :5].tolist()
    assert generate(model, prompt, 12, temperature=0) == generate(
        model, prompt, 12, temperature=0, use_cache=False
    )


def test_cache_keeps_left_padding_masked():
    config = tiny_config()
    model = MinGrok(config).eval()
    tokens = torch.randint(1, config.vocab_size, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, :4] = False
    full = model(tokens, mask).logits
    cache = KVCache.for_model(model, batch_size=2)
    first = model(tokens[:, :6], mask[:, :6], cache=cache).logits
    rest = [
        model(tokens[:, t : t + 1], mask[:, t : t + 1], cache=cache).logits for t in range(6, 10)
    ]
    torch.testing.assert_close(
        torch.cat([first, *rest], dim=1)[:, 4:], full[:, 4:], rtol=1e-4, atol=1e-5
    )


def test_full_cache_slides_and_positions_keep_counting():
    config = tiny_config(max_seq_len=8)
    model = MinGrok(config).eval()
    cache = KVCache.for_model(model, batch_size=1)
    tokens = torch.randint(0, config.vocab_size, (1, 12))
    model(tokens[:, :8], cache=cache)
    model(tokens[:, 8:9], cache=cache)
    assert cache.length == 8 and cache.position == 9
    # the oldest key slid out: the cached keys are now those of positions 1..8
    fresh = KVCache.for_model(model, batch_size=1, capacity=9)
    model(tokens[:, :9], cache=fresh)
    torch.testing.assert_close(cache.keys[0], fresh.keys[0][:, 1:9])


def test_too_many_tokens_for_cache():
    config = tiny_config(max_seq_len=8)
    model = MinGrok(config)
    with pytest.raises(ValueError, match="at most 4"):
        model(torch.zeros(1, 5, dtype=torch.long), cache=KVCache.for_model(model, 1, capacity=4))


def test_a_step_makes_room_and_continues_the_positions():
    cache = KVCache(num_layers=1, batch_size=2, capacity=4, num_kv_heads=1, head_dim=2)
    first = torch.tensor([[False, True, True], [True, True, True]])
    positions, key_mask = cache.start_step(first)
    assert positions.tolist() == [0, 1, 2] and torch.equal(key_mask, first)
    cache.advance(3)
    positions, key_mask = cache.start_step(torch.ones(2, 2, dtype=torch.bool))
    assert positions.tolist() == [3, 4]  # absolute positions keep counting past the capacity
    assert cache.length == 2  # the oldest key (position 0, padding) slid out: 2 cached + 2 new
    assert key_mask.all()  # position 0, the only padded key, is gone
