"""Checks for chapter 1 (tokenizer)."""

from __future__ import annotations

import itertools
from collections import Counter

from ..tokenizer import SHAKESPEARE_CHARS, CharTokenizer, MinGrokTokenizer
from ._core import CheckFailed, call, exercise

SAMPLES = (
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "And the other, that is not here.\n\n",
    "thethe an and; ou our",
    "",
    "z",
)


@exercise("1.1")
def check_char_encoder(encode) -> str:
    """``encode(text) -> list[int]``: ids of characters in TinyShakespeare's sorted alphabet."""
    reference = CharTokenizer(SHAKESPEARE_CHARS)
    for text in SAMPLES:
        got = call(encode, text) if text else encode(text)
        expected = reference.encode(text)
        if list(got) != expected:
            raise CheckFailed(
                f"for {text[:20]!r} you returned {list(got)[:8]}…, expected {expected[:8]}…; "
                "ids are positions in sorted(set(text)) of the whole corpus ('\\n' = 0, ' ' = 1)"
            )
    return "your character encoder matches the packaged CharTokenizer."


@exercise("1.2")
def check_greedy_merge(merge_ids) -> str:
    """``merge_ids(ids, merges) -> list[int]`` with merges {(left, right): new_id}: the greedy
    left-to-right rule with a step back after every merge."""
    tokenizer = MinGrokTokenizer()
    merges = {pair: len(tokenizer.chars) + rank for rank, pair in enumerate(tokenizer.merges)}
    chars = CharTokenizer(SHAKESPEARE_CHARS)
    for text in SAMPLES[:3]:
        got = list(call(merge_ids, chars.encode(text), dict(merges)))
        expected = tokenizer.encode(text)
        if got != expected:
            raise CheckFailed(
                f"for {text[:24]!r} you produced {len(got)} tokens, expected {len(expected)}; "
                "after a merge, step back one position so nested merges (th + e = 'the') can form"
            )
    return "your greedy merge loop reproduces minGrok's tokenizer."


@exercise("1.3")
def check_most_frequent_pair(most_frequent_pair) -> str:
    """``most_frequent_pair(ids) -> (left, right)``: the adjacent pair seen most often."""
    cases = ([1, 2, 1, 2, 3, 1, 2], [5, 5, 5, 4], [7, 8, 9, 8, 9, 8, 9, 7, 8])
    for ids in cases:
        got = tuple(call(most_frequent_pair, list(ids)))
        counts = Counter(itertools.pairwise(ids))
        best = max(counts.values())
        if counts.get(got, 0) != best:
            raise CheckFailed(
                f"for {ids} you returned {got}, seen {counts.get(got, 0)} times; the best pair is "
                f"seen {best} times (count the pairs zip(ids, ids[1:]))"
            )
    return "you found the pair a BPE trainer merges next."
