"""Every exercise check: a right answer passes, the stub is 'not attempted', a wrong answer and a
crashing answer fail with a hint, and no check ever raises."""

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


CASES = {
    # name: (right answer, wrong answer)
    "check_char_encoder": (lambda t: [STOI[c] for c in t], lambda t: [STOI[c] + 1 for c in t]),
    "check_greedy_merge": (greedy_merge, single_pass_merge),
    "check_most_frequent_pair": (
        lambda ids: Counter(itertools.pairwise(ids)).most_common(1)[0][0],
        lambda ids: (ids[0], ids[1]),
    ),
    "check_rms_norm": (
        lambda x, s, e: s * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + e),
        lambda x, s, e: (1 + s) * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + e),
    ),
    "check_sandwich_block": (lambda h, f, a, b: h + b(f(a(h))), lambda h, f, a, b: b(h + f(a(h)))),
    "check_initial_loss": (math.log(128), math.log2(128)),
    "check_soft_cap": (soft_cap, lambda x, c: x.clamp(-c, c)),
    "check_kv_head_for_query": (lambda n, h, g: n // (h // g), lambda n, h, g: n % g),
    "check_attention_mask": (causal_key_mask, lambda m: causal_key_mask(m).transpose(1, 2)),
    "check_inverse_frequencies": (
        rope_inverse_frequencies,
        lambda d, b: b ** (-torch.arange(d) / d),
    ),
    "check_rotate_half": (rotate_half, interleaved_rotate),
    "check_rope": (lambda x, p, b: apply_rope(x[None], p, b)[0], lambda x, p, b: x),
    "check_geglu_expert": (expert_ffn, lambda x, w, v, u: (F.gelu(x @ w) * (x @ v)) @ u),
    "check_ffn_size": (ffn_size, lambda d, w: int(w * d)),
    "check_sparse_dispatch": (sparse_moe, masked_dense_moe),
    "check_parameter_count": (count_parameters, lambda c: (count_parameters(c)[0],) * 2),
    "check_kv_cache_bytes": (
        kv_cache_bytes,
        lambda c, n, w: kv_cache_bytes(c, n, w, heads=c.num_q_heads),
    ),
    "check_haiku_to_torch": (haiku_to_torch, lambda p, a: haiku_to_torch(p, a, False)),
    "check_top_k_gates": (top_k_gates, renormalised_top_k_gates),
    "check_load_balancing_loss": (load_balancing_loss, mixtral_balance_loss),
    "check_z_loss": (router_z_loss, lambda z: torch.logsumexp(z, -1).mean() ** 2),
    "check_nats_per_char": (
        lambda loss, chars: loss.sum() / chars.sum(),
        lambda loss, chars: (loss / chars).mean(),
    ),
    "check_cosine_lr": (cosine_lr, warmup_from_zero),
    "check_temperature": (greedy_or_softmax, lambda z, t: torch.softmax(z * t, dim=-1)),
    "check_top_p_filter": (top_p_filter, nucleus_below_p),
    "check_top_k_filter": (top_k_filter, lambda z, k: top_k_filter(z, k + 1)),
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
    right, wrong = CASES[name]
    value_check = not callable(right)

    check(right)
    (check_id, status), _ = last_result(capsys)
    assert status == checks.PASS and check_id == check.check_id

    check(None if value_check else stub)
    assert last_result(capsys)[0][1] == checks.NOT_ATTEMPTED

    check(wrong)
    (_, status), line = last_result(capsys)
    assert status == checks.FAIL and "hint:" in line

    if not value_check:
        check(crash)
        (_, status), line = last_result(capsys)
        assert status == checks.FAIL and "ZeroDivisionError" in line


def test_check_ids_are_unique_and_parse_ignores_other_lines():
    ids = [getattr(checks, n).check_id for n in CASES]
    assert len(ids) == len(set(ids))
    assert checks.parse_line("some other output") is None


def test_greedy_oracle_agrees_with_tokenizer():
    tok = MinGrokTokenizer()
    merges = {p: 65 + r for r, p in enumerate(tok.merges)}
    text = "thou art the one that we are."
    assert greedy_merge([STOI[c] for c in text], merges) == tok.encode(text)
