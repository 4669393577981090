"""Every exercise check: a right answer passes, the stub is 'not attempted', a crashing answer
fails, each wrong answer learners write fails with a hint that names the mistake, and no check
ever raises."""

import itertools
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from mingrok import MinGrokConfig, checks, count_parameters, ffn_size
from mingrok.attention import soft_cap
from mingrok.grok1 import haiku_to_torch_names
from mingrok.moe import expert_ffn, sparse_moe
from mingrok.rope import apply_rope, rope_inverse_frequencies, rotate_half
from mingrok.router import load_balancing_loss, router_z_loss
from mingrok.sampling import top_k_filter, top_p_filter
from mingrok.tokenizer import SHAKESPEARE_CHARS, MinGrokTokenizer
from mingrok.train import TrainConfig, learning_rate_at

STOI = {c: i for i, c in enumerate(SHAKESPEARE_CHARS)}


def greedy_merge(ids, merges):
    ids, i = list(ids), 0
    while i < len(ids) - 1:
        pair = (ids[i], ids[i + 1])
        if pair in merges:
            ids[i : i + 2] = [merges[pair]]
            i = max(i - 1, 0)
        else:
            i += 1
    return ids


def single_pass_merge(ids, merges):  # forgets to step back: nested merges never form
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) in merges:
            out.append(merges[(ids[i], ids[i + 1])])
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def causal_key_mask(m):
    return torch.ones(m.shape[1], m.shape[1], dtype=torch.bool).tril()[None] & m[:, None, :]


def haiku_to_torch(path, array, transpose_linear=True):
    name, transpose = haiku_to_torch_names(MinGrokConfig(num_layers=8))[path]
    return name, array.t() if transpose and transpose_linear else array


def kv_cache_bytes(config, tokens, width, heads=None):
    heads = config.num_kv_heads if heads is None else heads
    return config.num_layers * 2 * heads * config.head_dim * tokens * width


def rank_weight_bytes(
    config, ranks, width, split_embedding=True, whole_kv_heads=True, with_replicated=True
):
    """One rank's weights, written as a learner would: replicated router and norms, the rest /P."""
    d, dh, layers = config.d_model, config.head_dim, config.num_layers
    kv_heads = config.num_kv_heads / ranks
    kv_heads = max(kv_heads, 1) if whole_kv_heads else kv_heads
    attention = (2 * d * config.num_q_heads * dh) / ranks + 2 * d * kv_heads * dh
    experts = config.num_experts * 3 * d * config.ffn_dim / ranks
    replicated = (layers * (d * config.num_experts + 4 * d) + d) * with_replicated
    embedding = config.vocab_size * d / (ranks if split_embedding else 1)
    return width * (layers * (attention + experts) + replicated + embedding)


def tensor_parallel_bytes(config, ranks, width, all_reduces=2, ring=2):
    return all_reduces * ring * (ranks - 1) / ranks * config.d_model * width


def expert_parallel_bytes(config, ranks, width, directions=2):
    k = config.num_experts_per_token
    return directions * (ranks - 1) / ranks * k * config.d_model * width


def masked_dense_moe(x, experts, gates, w_gate, w_value, w_out):  # all experts, zero weight on most
    every = torch.stack(
        [expert_ffn(x, *(w[e] for w in (w_gate, w_value, w_out))) for e in range(len(w_gate))], 1
    )
    weight = torch.zeros(len(x), len(w_gate)).scatter(1, experts, gates)
    return (weight[..., None] * every).sum(1)


def top_k_gates(logits, k):
    return torch.softmax(logits, dim=-1).topk(k, dim=-1)


def renormalised_top_k_gates(logits, k):  # Mixtral's gates: they sum to 1
    gates, experts = top_k_gates(logits, k)
    return gates / gates.sum(-1, keepdim=True), experts


def mixtral_balance_loss(probs, experts):  # f over tokens, not slots: k times Switch's value
    return experts.shape[1] * load_balancing_loss(probs, experts)


def interleaved_rotate(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)


def cosine_lr(step, steps, warmup, peak, minimum):
    config = TrainConfig(
        steps=steps, warmup_steps=warmup, learning_rate=peak, min_learning_rate=minimum
    )
    return learning_rate_at(step, config)


def warmup_from_zero(step, steps, warmup, peak, minimum):  # step 0 gets lr 0
    return peak * step / warmup if step < warmup else cosine_lr(step, steps, warmup, peak, minimum)


def greedy_or_softmax(logits, temperature):
    if temperature == 0:
        return F.one_hot(logits.argmax(), len(logits)).float()
    return torch.softmax(logits / temperature, dim=-1)


def nucleus_below_p(logits, p):  # keeps tokens while the running total stays <= p: too few
    probs, order = torch.softmax(logits, -1).sort(dim=-1, descending=True)
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, probs.cumsum(-1) <= p)
    return logits.masked_fill(~keep, -1e10)


def transposed_haiku(path, array):  # transposes every 2-D array, embeddings and experts too
    name, _ = haiku_to_torch(path, array)
    return name, array.t() if array.ndim == 2 else array.transpose(-1, -2)


def layer_norm(x, scale, eps):  # subtracts the mean, as LayerNorm does
    centred = x - x.mean(-1, keepdim=True)
    return scale * centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)


def swapped_top_k(logits, k):  # (experts, gates): torch.topk's pair the wrong way round
    gates, experts = top_k_gates(logits, k)
    return experts, gates


def rope_from_zero(x, positions, base):  # ignores the positions it is given: 0, 1, 2, ...
    return apply_rope(x[None], torch.arange(len(x)), base)[0]


def interleaved_rope(x, positions, base):  # frequencies repeat_interleave'd: pairs (2i, 2i+1)
    angles = positions[:, None] * rope_inverse_frequencies(x.shape[-1], base).repeat_interleave(2)
    return x * angles.cos()[:, None] + interleaved_rotate(x) * angles.sin()[:, None]


def naive_z_loss(logits):  # exp overflows in float32 for logits of 100
    return torch.log(torch.exp(logits).sum(-1)).pow(2).mean()


def counts_embedding_twice(config):
    total, active = count_parameters(config)
    return total + config.vocab_size * config.d_model, active + config.vocab_size * config.d_model


def all_experts_active(config):
    return (count_parameters(config)[0],) * 2


def no_norm_scales(config):
    total, active = count_parameters(config)
    missing = (4 * config.num_layers + 1) * config.d_model
    return total - missing, active - missing


def rounded_down_ffn(d, w):
    return int(w * d) * 2 // 3 // 8 * 8


def keep_smallest_k(logits, k):
    return logits.masked_fill(logits > logits.kthvalue(k, dim=-1, keepdim=True).values, -1e10)


def nucleus_without_ties(logits, p):  # the k tokens whose mass first exceeds p, ties cut
    probs, order = torch.softmax(logits, -1).sort(dim=-1, descending=True)
    keep_sorted = (probs.cumsum(-1) - probs) < p
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, -1e10)


def query_padded_mask(m):  # causal and key padding, and query padding too
    return causal_key_mask(m) & m[:, :, None]


# name: (the right answer, [(a wrong answer learners write, what the hint must name), ...])
def dequantize_released(weight, scales, product=torch.bfloat16):  # bf16(q · s), block-wise
    rows = weight.shape[-2] // scales.shape[-2]
    return (weight.to(product) * scales.to(product).repeat_interleave(rows, dim=-2)).float()


def strided_blocks(weight, scales):  # row i in block i % G: blocks of every G-th row
    *lead, k, n = weight.shape
    g = scales.shape[-2]
    rows = weight.reshape(*lead, k // g, g, n).to(torch.bfloat16)
    return (rows * scales.unsqueeze(-3)).reshape(*lead, k, n).float()


RELEASE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("__main__", "QuantizedWeight8bit"),
    ("ml_dtypes", "bfloat16"),
}


def denied_by_name(module, name):  # a deny-list of the famous ones
    return (module, name) not in {("os", "system"), ("builtins", "eval"), ("subprocess", "Popen")}


CASES = {
    "check_char_encoder": (
        lambda t: [STOI[c] for c in t],
        [
            (lambda t: [STOI[c] + 1 for c in t], "positions in sorted(set(text))"),
            (lambda t: [list(dict.fromkeys(t)).index(c) for c in t], "sorted(set(text))"),
        ],
    ),
    "check_greedy_merge": (greedy_merge, [(single_pass_merge, "step back one position")]),
    "check_most_frequent_pair": (
        lambda ids: Counter(itertools.pairwise(ids)).most_common(1)[0][0],
        [
            (lambda ids: (ids[0], ids[1]), "zip(ids, ids[1:])"),
            (
                lambda ids: Counter(zip(ids[::2], ids[1::2], strict=False)).most_common(1)[0][0],
                "zip(ids",
            ),
        ],
    ),
    "check_rms_norm": (
        lambda x, s, e: s * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + e),
        [
            (
                lambda x, s, e: (1 + s) * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + e),
                "1 + scale",
            ),
            (layer_norm, "no mean subtraction"),
            (lambda x, s, e: s * x / torch.sqrt(x.pow(2).mean() + e), "LAST axis"),
            (lambda x, s, e: s * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True)), "eps INSIDE"),
        ],
    ),
    "check_sandwich_block": (
        lambda h, f, a, b: h + b(f(a(h))),
        [
            (lambda h, f, a, b: b(h + f(a(h))), "normalise its OUTPUT"),
            (lambda h, f, a, b: h + f(a(h)), "normalise its OUTPUT"),
            (lambda h, f, a, b: b(f(a(h))), "add to the residual"),
        ],
    ),
    "check_initial_loss": (
        math.log(128),
        [(math.log2(128), "−log"), (1 / 128, "probability 1/V"), (math.log(65), "1/V")],
    ),
    "check_soft_cap": (
        soft_cap,
        [
            (lambda x, c: x.clamp(-c, c), "torch.clamp is a hard cap"),
            (lambda x, c: c * torch.tanh(x), "cap · tanh(logits / cap)"),
            (lambda x, c: torch.tanh(x / c), "cap · tanh(logits / cap)"),
        ],
    ),
    "check_kv_head_for_query": (
        lambda n, h, g: n // (h // g),
        [(lambda n, h, g: n % g, "(not n % "), (lambda n, h, g: n // g, "consecutive blocks")],
    ),
    "check_attention_mask": (
        causal_key_mask,
        [
            (lambda m: causal_key_mask(torch.ones_like(m)) & m[:, :, None], "not queries"),
            (query_padded_mask, "causal & key_real & query_real"),
            (lambda m: torch.ones(4, 4, dtype=torch.bool).triu() & m[:, None, :], "not triu"),
            (lambda m: torch.ones(len(m), 4, 4, dtype=torch.bool).tril(), "key s is a real token"),
        ],
    ),
    "check_inverse_frequencies": (
        rope_inverse_frequencies,
        [
            (lambda d, b: b ** (-torch.arange(d) / d), "d/2 entries"),
            (lambda d, b: b ** (-torch.arange(d // 2) / d), "base^(−2i/d)"),
        ],
    ),
    "check_rotate_half": (
        rotate_half,
        [(interleaved_rotate, "split halves"), (lambda x: -rotate_half(x), "signs are swapped")],
    ),
    "check_rope": (
        lambda x, p, b: apply_rope(x[None], p, b)[0],
        [
            (lambda x, p, b: x, "x·cos(tθ) + rotate_half(x)·sin(tθ)"),
            (interleaved_rope, "not interleaved"),
            (rope_from_zero, "t the position of each row"),
        ],
    ),
    "check_geglu_expert": (
        expert_ffn,
        [
            (lambda x, w, v, u: (F.gelu(x @ w) * (x @ v)) @ u, "erf"),
            (lambda x, w, v, u: expert_ffn(x, v, w, u), "wrong branch"),
            (lambda x, w, v, u: F.gelu((x @ w) * (x @ v), approximate="tanh") @ u, "gelu_tanh"),
        ],
    ),
    "check_ffn_size": (
        ffn_size,
        [(lambda d, w: int(w * d), "2/3 of"), (rounded_down_ffn, "rounded down")],
    ),
    "check_sparse_dispatch": (
        sparse_moe,
        [
            (masked_dense_moe, "0 · NaN is NaN"),
            (lambda x, e, g, *w: sparse_moe(x, e, g / g.sum(-1, keepdim=True), *w), "renormalise"),
            (lambda x, e, g, *w: sparse_moe(x, e, torch.ones_like(g), *w), "add gates[n, j]"),
        ],
    ),
    "check_parameter_count": (
        count_parameters,
        [
            (all_experts_active, "a token visits only"),
            (counts_embedding_twice, "counted the embedding twice"),
            (no_norm_scales, "RMSNorm scales"),
        ],
    ),
    "check_kv_cache_bytes": (
        kv_cache_bytes,
        [
            (lambda c, n, w: kv_cache_bytes(c, n, w, heads=c.num_q_heads), "query heads"),
            (lambda c, n, w: kv_cache_bytes(c, n, w) // 2, "keys and the values"),
            (lambda c, n, w: kv_cache_bytes(c, n, w) // c.num_layers, "every layer"),
        ],
    ),
    "check_haiku_to_torch": (
        haiku_to_torch,
        [
            (lambda p, a: haiku_to_torch(p, a, False), "transpose it"),
            (transposed_haiku, "keeps its layout"),
        ],
    ),
    "check_top_k_gates": (
        top_k_gates,
        [
            (renormalised_top_k_gates, "Mixtral's renormalisation"),
            (swapped_top_k, "you returned (experts, gates)"),
            (lambda z, k: torch.softmax(torch.softmax(z, -1), -1).topk(k, -1), "softmax twice"),
            (lambda z, k: torch.softmax(z.topk(k, -1).values, -1), "return a pair"),
        ],
    ),
    "check_load_balancing_loss": (
        load_balancing_loss,
        [
            (mixtral_balance_loss, "k = 2 times too large"),
            (lambda p, e: load_balancing_loss(p, e) / p.shape[1], "number of experts E"),
            (lambda p, e: p.shape[1] * (p.mean(0) ** 2).sum(), "counts hard choices"),
        ],
    ),
    "check_z_loss": (
        router_z_loss,
        [
            (lambda z: torch.logsumexp(z, -1).mean() ** 2, "square each token's logsumexp"),
            (naive_z_loss, "overflow exp"),
        ],
    ),
    "check_nats_per_char": (
        lambda loss, chars: loss.sum() / chars.sum(),
        [
            (lambda loss, chars: (loss / chars).mean(), "averaged loss/chars"),
            (lambda loss, chars: loss.mean(), "nats per TOKEN"),
            (lambda loss, chars: loss.sum() / chars.sum() / math.log(2), "bits per character"),
        ],
    ),
    "check_rank_weight_bytes": (
        rank_weight_bytes,
        [
            (lambda c, p, w: count_parameters(c)[0] * w / p, "divided everything by the ranks"),
            (lambda c, p, w: rank_weight_bytes(c, p, w, split_embedding=False), "embedding"),
            (lambda c, p, w: rank_weight_bytes(c, p, w, whole_kv_heads=False), "one whole KV"),
            (
                lambda c, p, w: rank_weight_bytes(c, p, w, with_replicated=False),
                "left out the replicated",
            ),
        ],
    ),
    "check_tensor_parallel_bytes": (
        tensor_parallel_bytes,
        [
            (lambda c, p, w: tensor_parallel_bytes(c, p, w, all_reduces=1), "two all-reduces"),
            (lambda c, p, w: tensor_parallel_bytes(c, p, w, ring=1), "2·(P−1)/P of the data"),
            (lambda c, p, w: tensor_parallel_bytes(c, p, w) * p, "not 2·(P−1) times"),
            (
                lambda c, p, w: tensor_parallel_bytes(c, p, w) * c.ffn_dim / c.d_model,
                "not the F-wide hidden",
            ),
        ],
    ),
    "check_expert_parallel_bytes": (
        expert_parallel_bytes,
        [
            (lambda c, p, w: expert_parallel_bytes(c, p, w, directions=1), "combine"),
            (
                lambda c, p, w: expert_parallel_bytes(c, p, w) / c.num_experts_per_token,
                "k copies",
            ),
            (lambda c, p, w: expert_parallel_bytes(c, p, w) * p / (p - 1), "(P−1)/P of them"),
        ],
    ),
    "check_dequantize_released": (
        dequantize_released,
        [
            (lambda q, s: dequantize_released(q, s, torch.float32), "round the product"),
            (strided_blocks, "repeat_interleave"),
            (lambda q, s: (q.to(torch.bfloat16) * s[..., :1, :]).float(), "its own row of scales"),
            (lambda q, s: dequantize_released(q, s) * 2, "expected bf16(q·s)"),
            (lambda q, s: dequantize_released(q, s)[..., :-1], "return the weight's shape"),
        ],
    ),
    "check_allowed_global": (
        lambda module, name: (module, name) in RELEASE_GLOBALS,
        [
            (denied_by_name, "deny-list"),
            (lambda m, n: m.split(".")[0] in {"numpy", "ml_dtypes", "__main__"}, "module prefix"),
            (lambda m, n: m == "__main__" or (m, n) in RELEASE_GLOBALS, "dotted names"),
            (lambda m, n: n in {name for _, name in RELEASE_GLOBALS}, "a name alone"),
            (
                lambda m, n: (
                    (m, n) in RELEASE_GLOBALS - {("numpy._core.multiarray", "_reconstruct")}
                ),
                "numpy 2",
            ),
            (lambda m, n: (m, n) in RELEASE_GLOBALS - {("numpy", "dtype")}, "refused numpy.dtype"),
        ],
    ),
    "check_cosine_lr": (
        cosine_lr,
        [
            (warmup_from_zero, "step 0 already learns"),
            (lambda s, n, w, p, m: cosine_lr(s, n, w, p, 0.0), "lr = min + ½ (peak − min)"),
            (lambda s, n, w, p, m: p if s >= w else cosine_lr(s, n, w, p, m), "warm-up"),
        ],
    ),
    "check_temperature": (
        greedy_or_softmax,
        [
            (lambda z, t: torch.softmax(z * t, dim=-1), "don't multiply"),
            (lambda z, t: torch.softmax(z / t, dim=-1) if t else z * 0, "T = 0 is greedy"),
        ],
    ),
    "check_top_p_filter": (
        top_p_filter,
        [
            (nucleus_below_p, "find the first index where the cumulative probability"),
            (nucleus_without_ties, "tied with it are kept too"),
        ],
    ),
    "check_top_k_filter": (
        top_k_filter,
        [
            (lambda z, k: top_k_filter(z, k + 1), "you kept"),
            (keep_smallest_k, "LARGEST"),
            (lambda z, k: torch.softmax(top_k_filter(z, k), -1), "do not rescale"),
        ],
    ),
}


def stub(*args):
    raise NotImplementedError


def crash(*args):
    return 1 / 0


def last_result(capsys):
    line = capsys.readouterr().out.strip().splitlines()[-1]
    parsed = checks.parse_line(line)
    assert parsed is not None, line
    assert checks.history[-1].line == line
    return parsed, line


def test_every_exported_check_is_covered():
    exported = {name for name in checks.__all__ if name.startswith("check_")}
    assert exported == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_outcomes(name, capsys):
    check = getattr(checks, name)
    right, _ = CASES[name]
    value_check = not callable(right)

    check(right)
    (check_id, status), _ = last_result(capsys)
    assert status == checks.PASS and check_id == check.check_id

    check(None if value_check else stub)
    assert last_result(capsys)[0][1] == checks.NOT_ATTEMPTED

    if not value_check:
        check(crash)
        (_, status), line = last_result(capsys)
        assert status == checks.FAIL and "ZeroDivisionError" in line


WRONG_ANSWERS = [(name, index) for name, (_, wrong) in CASES.items() for index in range(len(wrong))]


@pytest.mark.parametrize(("name", "index"), WRONG_ANSWERS)
def test_each_wrong_answer_fails_with_a_hint_that_names_it(name: str, index: int) -> None:
    wrong, named = CASES[name][1][index]
    result = getattr(checks, name).evaluate(wrong)
    assert result.status == checks.FAIL, result.line
    assert result.message.startswith("hint:") and named in result.message, result.line


def test_check_ids_are_unique_and_parse_ignores_other_lines():
    ids = [getattr(checks, n).check_id for n in CASES]
    assert len(ids) == len(set(ids))
    assert checks.parse_line("some other output") is None


def test_greedy_oracle_agrees_with_tokenizer():
    tok = MinGrokTokenizer()
    merges = {p: 65 + r for r, p in enumerate(tok.merges)}
    text = "thou art the one that we are."
    assert greedy_merge([STOI[c] for c in text], merges) == tok.encode(text)


def test_evaluate_returns_the_result_and_assert_passed_raises_unless_it_passed(capsys) -> None:
    before = len(checks.history)
    result = checks.check_soft_cap.evaluate(lambda x, c: x.clamp(-c, c))
    assert (result.status, len(checks.history), capsys.readouterr().out) == (
        checks.FAIL,
        before,
        "",
    )
    with pytest.raises(AssertionError, match=r"\[mingrok check 3.1\] FAIL — hint: "):
        result.assert_passed()
    checks.check_soft_cap.evaluate(soft_cap).assert_passed()
    printed = [checks.parse_line(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [("3.1", checks.FAIL), ("3.1", checks.PASS)]
