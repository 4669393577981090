import pytest
import torch

from mingrok import KVCache, MinGrok, generate
from mingrok.sampling import (
    DISALLOWED_LOGIT,
    choose_next_token,
    left_pad,
    top_k_filter,
    top_p_filter,
)

from .conftest import tiny_config


def _model(**changes) -> MinGrok:
    return MinGrok(tiny_config(**changes)).eval()


def test_prefill_then_decode_logits_equal_full_forward_with_left_padding():
    model = _model()
    prompts = [[5, 6, 7, 8, 9], [3, 4], [10, 11, 12]]
    continuation = torch.randint(0, 61, (3, 6))
    tokens, mask = left_pad(prompts)
    cache = KVCache.for_model(model, batch_size=3)
    with torch.no_grad():
        cached = [model(tokens, mask, cache).logits]
        for step in range(continuation.shape[1]):
            cached.append(model(continuation[:, step : step + 1], cache=cache).logits)
        full_tokens = torch.cat([tokens, continuation], dim=1)
        full_mask = torch.cat([mask, torch.ones_like(continuation, dtype=torch.bool)], dim=1)
        full = model(full_tokens, full_mask).logits
    cached = torch.cat(cached, dim=1)
    valid = full_mask  # padded query rows are not compared (grok-1 computes them, unused)
    torch.testing.assert_close(cached[valid], full[valid], rtol=0, atol=1e-5)


def test_greedy_ids_equal_with_and_without_cache():
    model = _model()
    prompt = [1, 2, 3, 4]
    with_cache = generate(model, prompt, 20, temperature=0)
    without_cache = generate(model, prompt, 20, temperature=0, use_cache=False)
    assert with_cache == without_cache
    assert len(with_cache) == 20


@pytest.mark.parametrize("use_cache", [True, False])
def test_on_token_sees_each_step_before_the_next_is_computed(use_cache, monkeypatch):
    model = _model()
    prompts = [[7, 8, 9], [4, 5]]
    events: list[tuple[str, list[int]]] = []
    real_forward = model.forward

    def forward(*args, **kwargs):
        events.append(("forward", []))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    new = generate(
        model,
        prompts,
        5,
        seed=2,
        use_cache=use_cache,
        on_token=lambda ids: events.append(("token", ids.tolist())),
    )
    tokens = [ids for kind, ids in events if kind == "token"]
    assert tokens == [list(step) for step in zip(*new, strict=True)]  # [B] per step, in order
    kinds = [kind for kind, _ in events]
    assert kinds == ["forward", "token"] * 5  # each step's ids arrive before the next forward


def test_batched_prompts_of_different_lengths_match_single_prompts():
    model = _model()
    prompts = [[7, 8, 9, 10, 11, 12], [4], [20, 21, 22]]
    batched = generate(model, prompts, 8, temperature=0)
    singles = [generate(model, p, 8, temperature=0) for p in prompts]
    assert batched == singles


def test_generation_runs_past_the_context_length():
    model = _model(max_seq_len=8)
    new = generate(model, [1, 2, 3, 4, 5, 6], 30, temperature=0)
    assert len(new) == 30
    # Within the context both paths agree: 8 - 6 = 2 new tokens fit, plus the next chosen one.
    assert new[:3] == generate(model, [1, 2, 3, 4, 5, 6], 3, temperature=0, use_cache=False)
    long_prompt = list(range(1, 21))  # longer than the context: left-truncated, as grok-1 does
    assert generate(model, long_prompt, 4, temperature=0) == generate(
        model, long_prompt[-8:], 4, temperature=0
    )


def test_seed_fixes_the_draws_and_return_types_follow_the_input():
    model = _model()
    a = generate(model, [1, 2, 3], 15, temperature=1.0, seed=3)
    assert a == generate(model, [1, 2, 3], 15, temperature=1.0, seed=3)
    assert a != generate(model, [1, 2, 3], 15, temperature=1.0, seed=4)
    assert isinstance(a, list) and all(isinstance(i, int) for i in a)
    as_tensor = generate(model, torch.tensor([1, 2, 3]), 15, seed=3)
    assert as_tensor.shape == (15,) and as_tensor.tolist() == a
    batch = generate(model, torch.tensor([[1, 2, 3], [4, 5, 6]]), 5, seed=0)
    assert batch.shape == (2, 5)
    assert generate(model, [1, 2], 0) == []


def test_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert choose_next_token(logits, temperature=0).tolist() == [1, 0]


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([[0.5, 3.0, -1.0, 2.0, 1.0]])
    kept = top_k_filter(logits, 2) > DISALLOWED_LOGIT
    assert kept.tolist() == [[False, True, False, True, False]]
    generator = torch.Generator().manual_seed(0)
    draws = {int(choose_next_token(logits, 1.0, top_k=2, generator=generator)) for _ in range(200)}
    assert draws == {1, 3}


@pytest.mark.parametrize(
    ("top_p", "kept"),
    [
        (1.0, [True, True, True, True]),
        (0.9, [True, True, True, False]),  # 0.5 + 0.3 + 0.15 = 0.95 > 0.9
        (0.7, [True, True, False, False]),  # 0.5 + 0.3 = 0.8 > 0.7
        (0.4, [True, False, False, False]),  # 0.5 > 0.4
        (1e-6, [True, False, False, False]),  # the top token always stays
    ],
)
def test_top_p_follows_grok1s_nucleus_rule(top_p, kept):
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert (top_p_filter(logits, top_p) > DISALLOWED_LOGIT).tolist() == [kept]


def test_invalid_arguments_name_the_parameter():
    model = _model()
    for kwargs, name in [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ]:
        with pytest.raises(ValueError, match=name):
            generate(model, [1, 2], 3, **kwargs)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, [1, 2], -1)
    with pytest.raises(ValueError, match="empty"):
        generate(model, [[1, 2], []], 3)
    with pytest.raises(ValueError, match=r"weights='int4' is invalid: .* float32, int8"):
        generate(model, [1, 2], 3, weights="int4")
    for kwargs in ({"use_cache": False}, {"fused": False}):
        with pytest.raises(ValueError, match=r"weights='int8' needs the fused decoder"):
            generate(model, [1, 2], 3, weights="int8", **kwargs)
    with pytest.raises(ValueError, match=r"weights='int8' needs the fused decoder"):
        generate(model, [[1, 2], [3]], 3, weights="int8")  # a batch


def test_both_paths_agree_on_left_padded_batches():
    model = _model()
    prompts = [[7, 8, 9], [4]]
    with_cache = generate(model, prompts, 6, temperature=0)
    assert generate(model, prompts, 6, temperature=0, use_cache=False) == with_cache
    as_tensor = generate(model, torch.tensor([[7, 8, 9]]), 6, temperature=0, use_cache=False)
    assert as_tensor.dtype == torch.long and as_tensor.tolist() == with_cache[:1]


def test_a_model_that_is_not_a_mingrok_is_named():
    with pytest.raises(TypeError, match=r"must be a mingrok\.MinGrok; got Linear"):
        generate(torch.nn.Linear(2, 2), [1, 2], 3)
