import pytest
import torch

from mingrok import KVCache, MinGrok, generate, pretrained
from mingrok.decode import FusedDecoder, supports

from .conftest import tiny_config


@pytest.fixture
def one_thread():
    """Batch-1 steps are ops too small to split: on a busy machine two threads wait on each other
    (this file's ~500 steps take seconds on one thread, a minute on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(**changes) -> MinGrok:
    """A tiny model whose norm scales are not all 1, so that folding them into weights shows."""
    model = MinGrok(tiny_config(**changes)).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("scale"):
                parameter.copy_(0.5 + torch.rand(parameter.shape, generator=generator))
    return model


def _eager_and_fused_logits(model: MinGrok, prompt: list[int], steps: int):
    """Feed the eager path's greedy tokens to both paths; the logits of every step, stacked."""
    tokens = torch.tensor([prompt])
    cache = KVCache.for_model(model, 1)
    decoder = FusedDecoder(model)
    with torch.no_grad():
        eager = [model(tokens, cache=cache).logits[:, -1]]
        fused = [decoder.prefill(tokens)]
        for _ in range(steps):
            token = eager[-1].argmax(dim=-1)
            eager.append(model(token[:, None], cache=cache).logits[:, -1])
            fused.append(decoder.step(token))
    return torch.cat(eager), torch.cat(fused)


@pytest.mark.parametrize(
    "changes",
    [
        {},  # 6 query heads in 2 KV groups
        {"num_kv_heads": 1, "renormalize_gates": True, "attn_logit_multiplier": 0.3},
        {"num_q_heads": 2, "num_kv_heads": 2, "num_experts_per_token": 1},  # no grouping
    ],
)
def test_fused_step_logits_equal_eager_step_past_the_context(changes, one_thread):
    model = _model(**changes)
    steps = 2 * model.config.max_seq_len  # the ring wraps around twice
    eager, fused = _eager_and_fused_logits(model, [3, 1, 4, 1, 5], steps)
    torch.testing.assert_close(fused, eager, rtol=0, atol=1e-5)


def test_shipped_model_greedy_tokens_and_logits_equal_eager_path(one_thread):
    model, tokenizer = pretrained.load("shakespeare")
    prompt = tokenizer.encode("JULIET:\nO Romeo, Romeo! wherefore art thou")
    steps = model.config.max_seq_len - len(prompt) + 8  # 8 steps in the sliding window
    eager, fused = _eager_and_fused_logits(model, prompt, steps)
    torch.testing.assert_close(fused, eager, rtol=0, atol=1e-4)
    # the eager path's greedy tokens are the argmax of its logits, fed back
    assert generate(model, prompt, steps, temperature=0) == eager[:-1].argmax(dim=-1).tolist()


def test_supports_only_one_float32_sequence_in_eval_mode():
    model = _model()
    assert supports(model, 1)
    assert not supports(model, 2)
    assert not supports(model.train(), 1)
    assert not supports(_model().to(torch.float64), 1)


def test_other_cases_take_the_eager_path_and_a_direct_build_is_refused():
    model = _model().to(torch.float64)
    assert len(generate(model, [1, 2, 3], 5, temperature=0)) == 5
    with pytest.raises(ValueError, match=r"float32 MinGrok in eval mode; got dtype torch\.float64"):
        FusedDecoder(model)
