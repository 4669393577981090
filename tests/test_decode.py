import pytest
import torch

from mingrok import KVCache, MinGrok, generate, pretrained
from mingrok.decode import FusedDecoder, supports, teacher_forced_nats_per_char

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


def _teacher_forced_logits(decoders: list[FusedDecoder], prompt: list[int], steps: int):
    """Feed the first decoder's greedy tokens to all of them; each one's logits, stacked."""
    tokens = torch.tensor([prompt])
    logits = [[decoder.prefill(tokens)] for decoder in decoders]
    for _ in range(steps):
        token = logits[0][-1].argmax(dim=-1)
        for decoder, seen in zip(decoders, logits, strict=True):
            seen.append(decoder.step(token))
    return [torch.cat(seen) for seen in logits]


def test_int8_weights_follow_the_float32_step_past_the_context(one_thread):
    # every matrix width a multiple of 16 (the int8 kernel's rule); scales not all 1
    torch.manual_seed(1)
    model = _model(d_model=32, num_q_heads=4, num_kv_heads=2, head_dim=8, ffn_size=48)
    float32, int8 = _teacher_forced_logits(
        [FusedDecoder(model), FusedDecoder(model, weights="int8")],
        [3, 1, 4, 1, 5],
        2 * model.config.max_seq_len,
    )
    spread = float32.amax(dim=-1) - float32.amin(dim=-1)
    # a step's largest error, over the spread of its logits: median 0.3-0.9% over 6 random models;
    # single steps reach 18% where a rounding flips a near-tied router choice
    assert ((int8 - float32).abs().amax(dim=-1) / spread).median() <= 0.02
    assert (int8.argmax(dim=-1) == float32.argmax(dim=-1)).float().mean() >= 0.95


def test_int8_weights_keep_the_shipped_models_choices(one_thread):
    model, tokenizer = pretrained.load("shakespeare")
    prompt = tokenizer.encode("JULIET:\nO Romeo, Romeo! wherefore art thou")
    float32, int8 = _teacher_forced_logits(
        [FusedDecoder(model), FusedDecoder(model, weights="int8")], prompt, 300
    )
    # measured: mean |Δ| 0.020, same argmax at all 300 steps
    assert (int8 - float32).abs().mean() <= 0.05
    assert (int8.argmax(dim=-1) == float32.argmax(dim=-1)).float().mean() >= 0.95
    int8_greedy = generate(model, prompt, 40, temperature=0, weights="int8")
    assert int8_greedy == float32[:40].argmax(dim=-1).tolist()


def test_int8_weights_need_widths_the_kernel_multiplies():
    with pytest.raises(ValueError, match=r"multiple of 16 .* got shape \(24, "):
        FusedDecoder(_model(), weights="int8")  # d_model 24
    with pytest.raises(ValueError, match=r"weights must be one of float32, int8; got 'int4'"):
        FusedDecoder(_model(), weights="int4")


def test_teacher_forced_nats_are_the_whole_texts_cross_entropy_per_char(one_thread):
    model = _model()
    ids = torch.randint(
        0, model.config.vocab_size, (20,), generator=torch.Generator().manual_seed(3)
    )
    chars = torch.arange(1, model.config.vocab_size + 1, dtype=torch.float32) % 3 + 1  # 1-3 each
    with torch.no_grad():
        logits = model(ids[None]).logits[0, :-1]
    nats = torch.nn.functional.cross_entropy(logits, ids[1:], reduction="sum")
    expected = float(nats / chars[ids[1:]].sum())
    got = teacher_forced_nats_per_char(FusedDecoder(model), ids, chars)
    assert got == pytest.approx(expected, rel=1e-5)


def test_decoders_share_weights_until_a_parameter_changes(one_thread):
    model = _model()
    first = FusedDecoder(model)
    assert FusedDecoder(model).layers is first.layers  # generate() builds one per call
    assert FusedDecoder(model, weights="float32").layers is first.layers
    with torch.no_grad():
        model.layers[1].moe.w_out[0].mul_(2)  # what an optimizer step does: in place
    changed = FusedDecoder(model)
    assert changed.layers is not first.layers
    eager, fused = _eager_and_fused_logits(model, [3, 1, 4], 4)
    torch.testing.assert_close(fused, eager, rtol=0, atol=1e-5)
    model.load_state_dict(_model().state_dict())
    assert FusedDecoder(model).layers is not changed.layers
    eager, fused = _eager_and_fused_logits(model, [3, 1, 4], 4)
    torch.testing.assert_close(fused, eager, rtol=0, atol=1e-5)


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
