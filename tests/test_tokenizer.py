"""The tokenizer must reproduce the seed repo's 128-token table and greedy encoder exactly.

The oracle is the seed's own rule, written here from the fixture's table (the package never reads
it): map characters to ids, scan left to right, merge a matching pair and step back one position.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re

import pytest
import torch

from mingrok.tokenizer import (
    GROK1_TOKENIZER_SHA256,
    MINGROK_MERGES,
    SHAKESPEARE_CHARS,
    CharTokenizer,
    GreedyMergeTokenizer,
    Grok1Tokenizer,
    Grok1TokenizerUnavailable,
    MinGrokTokenizer,
    grok1_tokenizer_path,
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


# Grok-1's tokenizer: xAI's tokenizer.model (../shared/fixtures/grok1_tokenizer.model).

UNICODE_SAMPLE = "naïve café, Straße; 日本語の文章; Ελληνικά; 🙂🧿; Tamil அஆ; tab\tCRLF\r\n  end "


@pytest.fixture(scope="module")
def grok1_model_path():
    return fixture_path("grok1_tokenizer.model")


@pytest.fixture(scope="module")
def grok1(grok1_model_path) -> Grok1Tokenizer:
    return Grok1Tokenizer(grok1_model_path)


def test_the_shared_model_is_xais_file(grok1_model_path):
    assert hashlib.sha256(grok1_model_path.read_bytes()).hexdigest() == GROK1_TOKENIZER_SHA256


def test_grok1_vocabulary_and_special_ids(grok1):
    assert grok1.vocab_size == 131_072 == 128 * 1024  # run.py's vocab_size=128 * 1024
    assert (grok1.pad_id, grok1.eos_id) == (0, 2)
    assert [grok1.piece(i) for i in range(4)] == ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
    assert grok1.piece(4) == "\n"


# Ids read from xAI's file (sha256 above) and the pieces they stand for: a wrapper that adds a BOS,
# normalises text, or loads another model gets other ids.
KNOWN_IDS = [
    ("the", [333], ["▁the"]),
    ("First Citizen:", [2982, 28752, 130123], ["▁First", "▁Citizen", ":"]),
    ("ROMEO:\nO Romeo", [30871, 3957, 130123, 4, 130142, 37793],
     ["▁ROM", "EO", ":", "\n", "O", "▁Romeo"]),
    ("Hello world", [11770, 1135], ["▁Hello", "▁world"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "ids", "pieces"), KNOWN_IDS)
def test_grok1_ids_of_known_strings(grok1, text, ids, pieces):
    assert grok1.encode(text) == ids
    assert grok1.pieces(text) == pieces
    assert grok1.decode(ids) == text


def test_grok1_spells_unknown_characters_as_utf8_bytes(grok1):
    assert grok1.pieces("அ") == ["▁", "<0xE0>", "<0xAE>", "<0x85>"]  # U+0B85 in UTF-8
    assert grok1.decode(grok1.encode("அ")) == "அ"


def test_grok1_encodes_as_xais_runner_does(grok1, grok1_model_path, shakespeare):
    import sentencepiece

    runner = sentencepiece.SentencePieceProcessor(model_file=str(grok1_model_path))
    for text in (shakespeare[:50_000], UNICODE_SAMPLE, ""):
        ids = grok1.encode(text)
        assert ids == runner.encode(text)  # runners.py: self.tokenizer.encode(request.prompt)
        assert grok1.decode(ids) == runner.decode(ids)
        assert {grok1.pad_id, 1, grok1.eos_id}.isdisjoint(ids)  # no BOS/EOS added, no padding


def test_grok1_round_trips_shakespeare_at_about_3_47_chars_per_token(grok1, shakespeare):
    ids = grok1.encode(shakespeare)
    assert grok1.decode(ids) == shakespeare
    assert 3.46 < len(shakespeare) / len(ids) < 3.48  # the course's tokenizer: 1.375
    assert grok1.pieces("the king")[0] == "▁the"


@pytest.mark.parametrize("text", [UNICODE_SAMPLE, "  two  spaces", " leading", "trailing ", "ﬁ"])
def test_grok1_round_trips_any_unicode(grok1, text):
    assert grok1.decode(grok1.encode(text)) == text


def test_grok1_decode_drops_control_ids_and_accepts_tensors(grok1):
    assert grok1.decode([grok1.pad_id, 333, grok1.eos_id]) == "the"
    assert grok1.decode(torch.tensor([2982, 28752, 130123])) == "First Citizen:"


@pytest.mark.parametrize("bad_id", [131_072, -1, 1.5, "a", None, True])
def test_grok1_decode_rejects_invalid_ids(grok1, bad_id):
    with pytest.raises(ValueError, match=r"token id .* at position 1 is not valid.*0\.\.131071"):
        grok1.decode([333, bad_id])
    with pytest.raises(ValueError, match="is not valid"):
        grok1.piece(bad_id)


def test_grok1_encode_rejects_non_text(grok1):
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        grok1.encode(b"the")


def test_grok1_tokenizer_refuses_a_missing_file_or_a_folder(tmp_path):
    missing = tmp_path / "tokenizer.model"
    expected = f"{re.escape(str(missing))}' does not exist: expected xAI's"
    with pytest.raises(FileNotFoundError, match=expected):
        Grok1Tokenizer(missing)
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(tmp_path))}' is a folder"):
        Grok1Tokenizer(tmp_path)


@pytest.mark.parametrize("content", ["text", "truncated", "empty"])
def test_grok1_tokenizer_refuses_a_file_that_is_not_a_sentencepiece_model(
    tmp_path, grok1_model_path, content
):
    payload = {
        "text": b"ROMEO: not a model\n",
        "truncated": grok1_model_path.read_bytes()[:100_000],
        "empty": b"",
    }[content]
    path = tmp_path / "tokenizer.model"
    path.write_bytes(payload)
    expected = f"{re.escape(str(path))}' .* is not a SentencePiece model: expected xAI's"
    with pytest.raises(ValueError, match=expected):
        Grok1Tokenizer(path)


def test_grok1_tokenizer_refuses_a_sentencepiece_model_with_other_ids(tmp_path, shakespeare):
    import sentencepiece

    model = io.BytesIO()  # SentencePiece's defaults: no pad id (-1), eos 2
    lines = iter(shakespeare.splitlines()[:2000])
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=lines, model_writer=model, vocab_size=200, minloglevel=2
    )
    path = tmp_path / "other.model"
    path.write_bytes(model.getvalue())
    with pytest.raises(ValueError, match=r"pad id -1 and eos id 2.*not Grok-1's tokenizer"):
        Grok1Tokenizer(path)


def test_grok1_tokenizer_path_prefers_an_existing_local_file(grok1_model_path, tmp_path):
    found = grok1_tokenizer_path(grok1_model_path, download=False, cache_dir=tmp_path)
    assert found == grok1_model_path
    assert not any(tmp_path.iterdir())


def test_grok1_tokenizer_path_downloads_verifies_and_caches(grok1_model_path, tmp_path):
    wrong = tmp_path / "served" / "wrong.model"
    wrong.parent.mkdir()
    wrong.write_bytes(b"not xAI's file")
    cache = tmp_path / "cache"
    urls = [(tmp_path / "absent.model").as_uri(), wrong.as_uri(), grok1_model_path.as_uri()]
    found = grok1_tokenizer_path(tmp_path / "missing.model", urls=urls, cache_dir=cache)
    assert found == cache / "grok1_tokenizer.model"
    assert found.read_bytes() == grok1_model_path.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["grok1_tokenizer.model"]  # no .partial
    assert grok1_tokenizer_path(download=False, cache_dir=cache) == found  # the cached copy


def test_grok1_tokenizer_path_says_what_it_tried(tmp_path):
    wrong = tmp_path / "wrong.model"
    wrong.write_bytes(b"not xAI's file")
    cache = tmp_path / "cache"
    with pytest.raises(Grok1TokenizerUnavailable) as refused:
        grok1_tokenizer_path(tmp_path / "missing.model", urls=[wrong.as_uri()], cache_dir=cache)
    message = str(refused.value)
    assert f"{tmp_path / 'missing.model'}': no such file" in message
    digest = hashlib.sha256(b"not xAI's file").hexdigest()
    assert f"{wrong.as_uri()}: sha256 {digest}, not xAI's {GROK1_TOKENIZER_SHA256}" in message
    assert not cache.exists()  # a file that fails the hash is never kept
    with pytest.raises(Grok1TokenizerUnavailable, match="download=False: not downloaded"):
        grok1_tokenizer_path(download=False, cache_dir=cache)
