"""Every exercise check: a right answer passes, the stub is 'not attempted', a wrong answer and a
crashing answer fail with a hint, and no check ever raises."""

import itertools
import math
from collections import Counter

import pytest
import torch

from mingrok import checks
from mingrok.attention import soft_cap
from mingrok.rope import apply_rope, rope_inverse_frequencies, rotate_half
from mingrok.tokenizer import SHAKESPEARE_CHARS, MinGrokTokenizer

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


def interleaved_rotate(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)


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
