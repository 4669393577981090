"""The tokenizer must reproduce the seed repo's 128-token table and greedy encoder exactly.

The oracle is the seed's own rule, written here from the fixture's table (the package never reads
it): map characters to ids, scan left to right, merge a matching pair and step back one position.
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from mingrok.tokenizer import (
    MINGROK_MERGES,
    SHAKESPEARE_CHARS,
    CharTokenizer,
    GreedyMergeTokenizer,
    MinGrokTokenizer,
    train_merges,
)

from .conftest import fixture_path, shakespeare_path

SPEC_EXAMPLE = "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?"
SPEC_EXAMPLE_IDS = [22, 33, 24, 21, 17, 32, 71, 27, 1, 30, 53, 83, 53, 66, 30, 53, 83, 53, 2, 1, 61,
                    87, 93, 105, 43, 1, 77, 58, 1, 65, 67, 1, 30, 53, 83, 53, 12]  # fmt: skip


@pytest.fixture(scope="module")
def table() -> dict:
    return json.loads(fixture_path("mingrok_tokenizer.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tokenizer() -> MinGrokTokenizer:
    return MinGrokTokenizer()


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return shakespeare_path().read_text(encoding="utf-8")


def seed_encode(text: str, chars: list[str], merges: dict[tuple[int, int], int]) -> list[int]:
    """The seed's encoder, literally: list deletion and a step back after each merge."""
    stoi = {c: i for i, c in enumerate(chars)}
    ids = [stoi.get(c, 1) for c in text]
    i = 0
    while i < len(ids) - 1:
        pair = (ids[i], ids[i + 1])
        if pair in merges:
            ids[i] = merges[pair]
            del ids[i + 1]
            i = max(i - 1, 0)
        else:
            i += 1
    return ids


def seed_encode_linked(
    text: str, chars: list[str], merges: dict[tuple[int, int], int]
) -> list[int]:
    """The same scan over a doubly linked list, so the 1.1 MB file takes 0.5 s instead of 20 s."""
    stoi = {c: i for i, c in enumerate(chars)}
    ids: list[int | None] = [stoi.get(c, 1) for c in text]
    end = len(ids)
    following = list(range(1, end + 1))
    preceding = list(range(-1, end - 1))
    i = 0
    while end and following[i] < end:
        j = following[i]
        merged = merges.get((ids[i], ids[j]))
        if merged is None:
            i = j
            continue
        ids[i], ids[j] = merged, None
        following[i] = following[j]
        if following[j] < end:
            preceding[following[j]] = i
        if preceding[i] >= 0:  # step back one position, or stay at the start
            i = preceding[i]
    return [x for x in ids if x is not None]


def fixture_merges(table: dict) -> dict[tuple[int, int], int]:
    return {(m["left"], m["right"]): m["id"] for m in table["merges"]}


def random_texts(alphabet: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(alphabet, k=rng.randrange(0, 60))) for _ in range(count)]


# Characters that take part in merges, weighted so that long nested merges form often.
MERGE_HEAVY_ALPHABET = "thetheandAndouryoufor:;,. \n\n\nerehatinglsd"


def test_table_equals_the_seed_table(tokenizer, table):
    assert list(tokenizer.chars) == table["chars"] == list(SHAKESPEARE_CHARS)
    assert tokenizer.merges == [(m["left"], m["right"]) for m in table["merges"]]
    assert [m["id"] for m in table["merges"]] == list(range(65, 128))
    assert list(tokenizer.vocab[65:]) == [m["text"] for m in table["merges"]]
    assert ["".join(pair) for pair in MINGROK_MERGES] == [m["text"] for m in table["merges"]]
    assert tokenizer.vocab_size == 128
    assert tokenizer.name == "mingrok-greedy-128"


def test_character_ids_follow_code_points(tokenizer):
    assert list(tokenizer.chars) == sorted(tokenizer.chars)
    for char, expected_id in (("\n", 0), (" ", 1), ("?", 12), ("A", 13), ("a", 39), ("z", 64)):
        assert tokenizer.encode(char) == [expected_id]
        assert tokenizer.id_to_text(expected_id) == char


def test_nested_merges_use_the_seed_ids(tokenizer):
    by_text = {tokenizer.id_to_text(i): i for i in range(65, 128)}
    assert tokenizer.merges[by_text["the"] - 65] == (by_text["th"], 43)
    assert tokenizer.merges[by_text[".\n\n"] - 65] == (8, by_text["\n\n"])
    assert tokenizer.merges[by_text["and"] - 65] == (by_text["an"], 42)
    assert tokenizer.merges[by_text["for"] - 65] == (44, by_text["or"])
    assert tokenizer.merges[by_text["ere"] - 65] == (by_text["er"], 43)
    assert tokenizer.merges[by_text["hat"] - 65] == (46, by_text["at"])


def test_spec_example(tokenizer):
    assert tokenizer.encode(SPEC_EXAMPLE) == SPEC_EXAMPLE_IDS
    assert tokenizer.decode(SPEC_EXAMPLE_IDS) == SPEC_EXAMPLE


def test_whole_shakespeare_equals_the_seed_encoder(tokenizer, table, shakespeare):
    ids = tokenizer.encode(shakespeare)
    assert ids == seed_encode_linked(shakespeare, table["chars"], fixture_merges(table))
    assert len(ids) == 811_011
    assert set(ids) == set(range(128)) - {120}  # "hat": "ha" always merges first
    assert tokenizer.decode(ids) == shakespeare


def test_the_linked_oracle_is_the_seed_encoder(table, shakespeare):
    merges = fixture_merges(table)
    texts = [
        shakespeare[:20_000],
        shakespeare[-5_000:],
        *random_texts(MERGE_HEAVY_ALPHABET, 300, 1),
    ]
    for text in texts:
        assert seed_encode_linked(text, table["chars"], merges) == seed_encode(
            text, table["chars"], merges
        )


@pytest.mark.parametrize(
    "text",
    ["", "t", "\n", "th", "the", "thee", "there", "that", "what", "hat", "hath", "And", "and",
     "for", "your", "you", "thing", "\n\n", "\n\n\n", "\n\n\n\n\n", ".\n\n", ".\n\n\n", ":\n\n",
     ",\n", ", ", "; ", "word.\n", "ends mid-merg", "oo", "ooo", "ll" * 5, "an", "notthe"],
)  # fmt: skip
def test_edge_cases_equal_the_seed_encoder(tokenizer, table, text):
    ids = tokenizer.encode(text)
    assert ids == seed_encode(text, table["chars"], fixture_merges(table))
    assert tokenizer.decode(ids) == text


def test_random_strings_equal_the_seed_encoder(tokenizer, table):
    merges = fixture_merges(table)
    texts = random_texts(SHAKESPEARE_CHARS, 300, 0) + random_texts(MERGE_HEAVY_ALPHABET, 700, 2)
    for text in texts:
        ids = tokenizer.encode(text)
        assert ids == seed_encode(text, table["chars"], merges), repr(text)
        assert tokenizer.decode(ids) == text


def test_unknown_character_names_it_and_its_position(tokenizer):
    with pytest.raises(ValueError, match=r"'€' at position 4 .*errors='replace'"):
        tokenizer.encode("the €5")


def test_errors_replace_maps_unknown_characters_to_space(tokenizer, table):
    text = "th\té café → and"
    ids = tokenizer.encode(text, errors="replace")
    assert ids == seed_encode(text, table["chars"], fixture_merges(table))
    assert ids == tokenizer.encode("th   caf    and")


def test_bad_errors_value_is_rejected(tokenizer):
    with pytest.raises(ValueError, match=r"errors='ignore'.*'strict', 'replace'"):
        tokenizer.encode("the", errors="ignore")


def test_encode_rejects_non_text(tokenizer):
    with pytest.raises(TypeError, match="bytes"):
        tokenizer.encode(b"the")


@pytest.mark.parametrize("bad_id", [128, -1, 1.5, "a", None])
def test_decode_rejects_invalid_ids(tokenizer, bad_id):
    with pytest.raises(ValueError, match=rf"token id {bad_id!r} .*0\.\.127.*position 2"):
        tokenizer.decode([65, 43, bad_id, 1])


def test_id_to_text_rejects_invalid_ids(tokenizer):
    assert tokenizer.id_to_text(72) == "the"
    with pytest.raises(ValueError, match=r"token id 200 .*0\.\.127"):
        tokenizer.id_to_text(200)


def test_decode_accepts_tensors(tokenizer):
    ids = tokenizer.encode(SPEC_EXAMPLE)
    assert tokenizer.decode(torch.tensor(ids)) == SPEC_EXAMPLE
    assert tokenizer.decode(torch.tensor(ids, dtype=torch.int32).numpy()) == SPEC_EXAMPLE


def test_char_tokenizer_round_trip(tokenizer, shakespeare):
    chars = CharTokenizer(shakespeare)
    assert chars.vocab_size == 65
    assert chars.name == "char-65"
    ids = chars.encode(shakespeare)
    assert len(ids) == len(shakespeare)
    assert ids[:200] == [tokenizer.encode(c)[0] for c in shakespeare[:200]]  # same 65 ids
    assert chars.decode(ids) == shakespeare
    with pytest.raises(ValueError, match=r"'€' at position 1"):
        chars.encode("a€")


def test_train_merges_picks_the_most_frequent_pair_first():
    learned = train_merges("aaabdaaabac", num_merges=2)  # pairs: aa ×4, ab ×2, ...
    assert learned.chars == ("a", "b", "c", "d")
    assert learned.merges[0] == (0, 0)
    assert learned.counts[0] == 4
    # After aa → 4 the text is "4 a b d 4 a b a c": (0, 1) "ab" and (4, 0) "aaa" both occur
    # twice; the tie goes to the smaller pair.
    assert learned.merges[1] == (0, 1)
    assert learned.counts[1] == 2
    built = learned.tokenizer()
    assert built.vocab[4:] == ("aa", "ab")
    assert built.decode(built.encode("aaabdaaabac")) == "aaabdaaabac"


def test_train_merges_is_deterministic_and_stops_when_no_pair_is_left():
    assert train_merges("abcd", 1).merges == ((0, 1),)  # four pairs, each once: smallest wins
    assert train_merges("ab", 5).merges == ((0, 1),)
    assert train_merges("", 3, chars="ab").merges == ()


def test_train_merges_validates_its_arguments():
    with pytest.raises(ValueError, match=r"num_merges.*-1"):
        train_merges("abc", -1)
    with pytest.raises(ValueError, match=r"chars lacks \['c'\]"):
        train_merges("abc", 1, chars="ab")


def test_learned_merges_encode_with_the_seed_rule(table, shakespeare):
    """Any merge table, not only minGrok's, must follow the seed's greedy scan."""
    learned = train_merges(shakespeare[:20_000], 30, chars=SHAKESPEARE_CHARS)
    built = learned.tokenizer(name="learned")
    assert built.vocab_size == 95
    assert built.vocab[65] == "e "  # classic BPE on raw text merges across spaces
    merges = {pair: new_id for new_id, pair in enumerate(learned.merges, start=65)}
    for text in [shakespeare[20_000:25_000], *random_texts(MERGE_HEAVY_ALPHABET, 200, 3)]:
        assert built.encode(text) == seed_encode(text, table["chars"], merges)


def test_greedy_tokenizer_validates_its_table():
    with pytest.raises(ValueError, match="distinct"):
        GreedyMergeTokenizer("aab")
    with pytest.raises(ValueError, match="single characters"):
        GreedyMergeTokenizer(["a", "bc"])
    with pytest.raises(ValueError, match=r"right id 2 must be an existing id in 0\.\.1"):
        GreedyMergeTokenizer("ab", [(0, 2)])
    with pytest.raises(ValueError, match=r"\(0, 1\) appears twice"):
        GreedyMergeTokenizer("ab", [(0, 1), (0, 1)])
