"""Tokenizers: minGrok's 128-token greedy-merge vocabulary, a character baseline, a BPE trainer,
and Grok-1's own 131,072-piece SentencePiece tokenizer.

Grok-1 uses a 131,072-token SentencePiece BPE; a tiny model on TinyShakespeare cannot afford that,
so minGrok (evintunador) used 65 characters plus 63 learned pair merges. This module rebuilds that
tokenizer id for id from its data (no pickle, no file access), and keeps the three ideas apart:

- :class:`GreedyMergeTokenizer`: characters + an ordered list of pair merges, encoded with a
  left-to-right greedy rule. :class:`MinGrokTokenizer` and :class:`CharTokenizer` are
  instances of it.
- :func:`train_merges`: where a merge list comes from (classic BPE: merge the most frequent pair).
- :class:`Grok1Tokenizer`: xAI's tokenizer.model read by SentencePiece, with the same interface;
  :func:`grok1_tokenizer_path` finds that file (a local copy, else a sha256-checked download).

The greedy rule is *not* rank-ordered BPE: a merge fires as soon as its pair is adjacent during the
scan, whatever its rank. That is why id 120 ("hat" = h + at) never appears on TinyShakespeare:
"ha" (id 92) is adjacent first and wins.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import os
import string
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import is_whole_number

# The 65 distinct characters of TinyShakespeare in code-point order: ids 0..64.
SHAKESPEARE_CHARS = "\n !$&',-.3:;?" + string.ascii_uppercase + string.ascii_lowercase

# minGrok's 63 merges (ids 65..127), in order, each as (left token text, right token text). The
# split is data, not derivable from the string: "ere" is er + e (not e + re), "hat" is h + at (not
# ha + t), "that" is th + at; these are the ids of evintunador/minGrok's table.
MINGROK_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"), (",", " "), ("o", "u"), ("e", "r"), ("i", "n"), ("a", "n"), (":", "\n"),
    ("th", "e"), ("o", "r"), ("i", "s"), ("\n", "\n"), ("e", "n"), ("a", "r"), ("a", "t"),
    ("o", "n"), ("s", "t"), ("l", "l"), (",", "\n"), ("m", "e"), ("t", "o"), (".", "\n\n"),
    ("an", "d"), ("h", "e"), ("y", "ou"), ("e", "s"), ("n", "o"), ("s", "e"), ("h", "a"),
    ("r", "e"), ("o", "f"), ("v", "e"), ("i", "t"), ("in", "g"), ("b", "e"), ("l", "e"),
    ("w", "i"), ("m", "y"), ("h", "i"), ("o", "w"), ("c", "e"), ("f", "or"), ("a", "y"),
    ("a", "s"), ("c", "h"), ("n", "d"), ("er", "e"), ("l", "d"), ("i", "r"), ("e", "d"),
    ("u", "t"), ("r", "o"), ("no", "t"), ("l", "i"), ("d", "e"), ("w", "e"), ("h", "at"),
    ("th", "at"), ("g", "h"), ("A", "nd"), ("k", "e"), (";", " "), ("o", "o"), ("ou", "r"),
)  # fmt: skip

ERRORS_CHOICES = ("strict", "replace")
REPLACEMENT_CHAR = " "  # what errors="replace" maps unknown characters to (id 1)


class GreedyMergeTokenizer:
    """A character vocabulary plus ordered pair merges, encoded by minGrok's greedy scan.

    Ids ``0 .. len(chars)-1`` are the characters; merge ``k`` = (left id, right id) gets id
    ``len(chars) + k`` and may use any earlier id, so merges nest ("the" = th + e).
    """

    def __init__(
        self,
        chars: Iterable[str],
        merges: Iterable[tuple[int, int]] = (),
        name: str | None = None,
    ) -> None:
        self.chars: tuple[str, ...] = tuple(chars)
        _check_chars(self.chars)
        vocab = list(self.chars)
        checked_merges: list[tuple[int, int]] = []
        for left, right in merges:
            new_id = len(vocab)
            for side, token_id in (("left", left), ("right", right)):
                if not isinstance(token_id, int) or not 0 <= token_id < new_id:
                    raise ValueError(
                        f"merge for id {new_id}: {side} id {token_id!r} must be an existing id "
                        f"in 0..{new_id - 1}"
                    )
            if (left, right) in checked_merges:
                raise ValueError(f"merge ({left}, {right}) appears twice; the second never fires")
            checked_merges.append((left, right))
            vocab.append(vocab[left] + vocab[right])
        self._merges = tuple(checked_merges)
        self.vocab: tuple[str, ...] = tuple(vocab)  # id -> text, precomputed: decode is one join
        self.vocab_size = len(vocab)
        self.name = name or f"greedy-merge-{self.vocab_size}"
        self._char_to_id = {char: i for i, char in enumerate(self.chars)}
        self._merge_rows = self._build_merge_rows()

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The merges in order as (left id, right id); merge k produces id ``len(chars) + k``."""
        return list(self._merges)

    def id_to_text(self, token_id: int) -> str:
        """The text a single id stands for (a character or a merged string)."""
        if isinstance(token_id, bool) or not _is_valid_id(token_id, self.vocab_size):
            raise ValueError(self._bad_id_message(token_id))
        return self.vocab[token_id]

    def encode(self, text: str, errors: str = "strict") -> list[int]:
        """Text → ids. ``errors="replace"`` maps unknown characters to ' ' (id 1 for minGrok)."""
        if errors not in ERRORS_CHOICES:
            raise ValueError(f"errors={errors!r} is not supported; use one of {ERRORS_CHOICES}")
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            ids = list(map(self._char_to_id.__getitem__, text))
        except KeyError:
            ids = self._ids_with_unknown_chars(text, errors)
        return self._apply_merges(ids) if self._merges else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids (a list, a 1-D tensor or array) → text; each id expands to its precomputed string."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        try:
            if ids and min(ids) < 0:  # a negative index would silently count from the end
                raise IndexError
            return "".join(map(self.vocab.__getitem__, ids))
        except (IndexError, TypeError):
            position, bad = next(
                (i, x) for i, x in enumerate(ids) if not _is_valid_id(x, self.vocab_size)
            )
            raise ValueError(f"{self._bad_id_message(bad)} (at position {position})") from None

    def _apply_merges(self, ids: list[int]) -> list[int]:
        """The greedy rule in O(n), with a stack.

        The rule scans position i from the left; when (ids[i], ids[i+1]) is a merge, the merged id
        replaces both and the scan steps back to i-1, else it moves on. Everything left of i then
        never holds a merge pair, so that prefix is a stack: pushing each id and merging the top two
        while they form a merge checks the same pairs in the same order.
        """
        rows = self._merge_rows
        stack = [self.vocab_size]  # a sentinel below the bottom: its row holds no merges
        for token in ids:
            merged = rows[stack[-1]][token]
            while merged is not None:
                stack.pop()
                token = merged
                merged = rows[stack[-1]][token]
            stack.append(token)
        return stack[1:]

    def _build_merge_rows(self) -> list[list[int | None]]:
        """rows[left][right] = merged id or None: a list lookup is the fastest test in the loop.

        Ids that start no merge (and the sentinel, id ``vocab_size``) share one all-None row, so
        memory grows with the number of distinct left ids, not with vocab_size².
        """
        no_merge: list[int | None] = [None] * self.vocab_size
        rows = [no_merge] * (self.vocab_size + 1)
        for new_id, (left, right) in enumerate(self._merges, start=len(self.chars)):
            if rows[left] is no_merge:
                rows[left] = [None] * self.vocab_size
            rows[left][right] = new_id
        return rows

    def _ids_with_unknown_chars(self, text: str, errors: str) -> list[int]:
        """The slow path, taken only when ``text`` holds a character outside the vocabulary."""
        position, char = next((i, c) for i, c in enumerate(text) if c not in self._char_to_id)
        if errors == "strict":
            raise ValueError(
                f"character {char!r} at position {position} is not in the {self.name} vocabulary "
                f"of {len(self.chars)} characters; pass errors='replace' to map unknown "
                f"characters to {REPLACEMENT_CHAR!r}"
            )
        if REPLACEMENT_CHAR not in self._char_to_id:
            raise ValueError(
                f"errors='replace' needs {REPLACEMENT_CHAR!r} in the vocabulary, and {self.name} "
                f"has none (character {char!r} at position {position} is unknown)"
            )
        replacement = self._char_to_id[REPLACEMENT_CHAR]
        return [self._char_to_id.get(c, replacement) for c in text]

    def _bad_id_message(self, token_id: object) -> str:
        return (
            f"token id {token_id!r} is not valid for {self.name}: ids are integers in "
            f"0..{self.vocab_size - 1}"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"chars={len(self.chars)}, merges={len(self._merges)})"
        )


class MinGrokTokenizer(GreedyMergeTokenizer):
    """evintunador/minGrok's 128-token tokenizer, id for id: 65 characters + :data:`MINGROK_MERGES`.

    No special tokens (no PAD/BOS/EOS/UNK): id 0 is '\\n', so Grok's "id 0 is padding" rule must not
    be reused with this vocabulary. TinyShakespeare encodes to 811,011 tokens (1.375 chars/token).
    """

    def __init__(self) -> None:
        super().__init__(
            SHAKESPEARE_CHARS,
            _merge_ids(SHAKESPEARE_CHARS, MINGROK_MERGES),
            name="mingrok-greedy-128",
        )


class CharTokenizer(GreedyMergeTokenizer):
    """One id per character (the sorted distinct characters): the baseline with no merges.

    ``CharTokenizer(load_shakespeare())`` gives ids 0..64, identical to minGrok's first 65.
    """

    def __init__(self, text_or_chars: str | Iterable[str], name: str | None = None) -> None:
        chars = sorted(set(text_or_chars))
        super().__init__(chars, (), name=name or f"char-{len(chars)}")


@dataclass(frozen=True)
class LearnedMerges:
    """What :func:`train_merges` found: the alphabet, the merges in order and each one's count."""

    chars: tuple[str, ...]
    merges: tuple[tuple[int, int], ...]
    counts: tuple[int, ...]  # how often the pair occurred when it was chosen

    def tokenizer(self, name: str | None = None) -> GreedyMergeTokenizer:
        """A greedy-merge tokenizer built from these characters and merges."""
        return GreedyMergeTokenizer(self.chars, self.merges, name=name)


def train_merges(text: str, num_merges: int, chars: Iterable[str] | None = None) -> LearnedMerges:
    """Learn pair merges the classic BPE way: count adjacent pairs, merge the most frequent, repeat.

    Each round replaces every occurrence of the winning pair, left to right without overlaps, and
    the merged token takes the next free id. Ties go to the smallest (left id, right id), so the
    result is deterministic. ``chars`` fixes the alphabet (and so the ids); by default it is the
    sorted distinct characters of ``text``. Stops early if no adjacent pair is left.
    """
    if not is_whole_number(num_merges, minimum=0):
        raise ValueError(f"num_merges must be an integer >= 0, got {num_merges!r}")
    alphabet = tuple(sorted(set(text))) if chars is None else tuple(chars)
    _check_chars(alphabet)
    char_to_id = {char: i for i, char in enumerate(alphabet)}
    missing = sorted(set(text) - set(char_to_id))
    if missing:
        raise ValueError(f"chars lacks {missing!r}, which occur in text")

    ids = [char_to_id[c] for c in text]
    merges: list[tuple[int, int]] = []
    counts: list[int] = []
    for new_id in range(len(alphabet), len(alphabet) + num_merges):
        pair_counts = Counter(itertools.pairwise(ids))
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        counts.append(pair_counts[best])
        ids = _replace_pair(ids, best, new_id)
    return LearnedMerges(alphabet, tuple(merges), tuple(counts))


def _replace_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Every non-overlapping occurrence of ``pair``, scanning left to right, becomes ``new_id``."""
    left, right = pair
    out: list[int] = []
    i = 0
    while i < len(ids):
        if ids[i] == left and i + 1 < len(ids) and ids[i + 1] == right:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_ids(chars: str, merge_texts: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """(left text, right text) → (left id, right id), each text looked up among the ids so far."""
    text_to_id = {char: i for i, char in enumerate(chars)}
    merges = []
    for new_id, (left, right) in enumerate(merge_texts, start=len(chars)):
        merges.append((text_to_id[left], text_to_id[right]))
        text_to_id[left + right] = new_id
    return merges


def _check_chars(chars: Sequence[str]) -> None:
    if not chars:
        raise ValueError("chars must hold at least one character, got none")
    for char in chars:
        if not isinstance(char, str) or len(char) != 1:
            raise ValueError(f"chars must be single characters, got {char!r}")
    repeated = sorted(c for c, n in Counter(chars).items() if n > 1)
    if repeated:
        raise ValueError(f"chars must be distinct, got {repeated!r} more than once")


def _is_valid_id(token_id: object, vocab_size: int) -> bool:
    try:
        return 0 <= operator.index(token_id) < vocab_size
    except TypeError:
        return False


# xAI's tokenizer.model (the grok-1 repository at commit 7050ed2, also in the Hugging Face
# repository xai-org/grok-1): what a download must hash to before anything reads it.
GROK1_TOKENIZER_SHA256 = "5c69d7cbad192fa2c9d14e2a77fbfdc11597c68907b043ddb0260e3d28eddd7f"
GROK1_TOKENIZER_URLS = (
    "https://huggingface.co/xai-org/grok-1/resolve/main/tokenizer.model",
    "https://raw.githubusercontent.com/xai-org/grok-1/7050ed204b8206bb8645c7b7bbef7252f79561b0/"
    "tokenizer.model",
)
GROK1_PAD_ID = 0  # run.py's LanguageModelConfig(pad_token=0): masked out of attention as a key
GROK1_EOS_ID = 2  # run.py's LanguageModelConfig(eos_token=2)


class Grok1Tokenizer:
    """Grok-1's own tokenizer: xAI's SentencePiece BPE of 131,072 pieces, used as ``runners.py``
    uses it (``encode(prompt)`` with SentencePiece's defaults, so no BOS or EOS is added, and
    ``decode(ids)``).

    The same interface as the course's :class:`GreedyMergeTokenizer` (``encode``, ``decode``,
    ``vocab_size``, ``name``), plus the two special ids ``run.py`` gives the model: ``pad_id`` 0 and
    ``eos_id`` 2. Its 256 byte pieces (``<0x00>`` … ``<0xFF>``) spell any character the vocabulary
    lacks, and its normaliser is the identity, so every string round-trips and none is unknown.
    """

    pad_id = GROK1_PAD_ID
    eos_id = GROK1_EOS_ID

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            problem = "is a folder" if self.path.is_dir() else "does not exist"
            raise FileNotFoundError(
                f"Grok-1 tokenizer file {str(self.path)!r} {problem}: expected xAI's SentencePiece "
                "model (tokenizer.model of xai-org/grok-1)"
            )
        self._processor = _load_sentencepiece(self.path)
        specials = {"pad": self._processor.pad_id(), "eos": self._processor.eos_id()}
        if specials != {"pad": self.pad_id, "eos": self.eos_id}:
            raise ValueError(
                f"{str(self.path)!r} is a SentencePiece model with pad id {specials['pad']} and "
                f"eos id {specials['eos']}; Grok-1's run.py uses pad {self.pad_id} and eos "
                f"{self.eos_id}, so this is not Grok-1's tokenizer"
            )
        self.vocab_size: int = self._processor.get_piece_size()
        self.name = f"grok1-sentencepiece-{self.vocab_size}"

    def encode(self, text: str) -> list[int]:
        """Text → ids, as ``runners.py`` encodes a prompt (no BOS or EOS is added)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._processor.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids (a list, a 1-D tensor or array) → text; control ids (pad, BOS, EOS) decode to ''."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        self._check_ids(ids)
        return self._processor.decode(ids)

    def pieces(self, text: str) -> list[str]:
        """The pieces ``encode`` chooses, as strings: '▁' marks a space before a word."""
        return [self.piece(token_id) for token_id in self.encode(text)]

    def piece(self, token_id: int) -> str:
        """The vocabulary entry of one id: '▁the', ':', '<0xE0>' (a byte), '[EOS]'."""
        self._check_ids([token_id])
        return self._processor.id_to_piece(token_id)

    def _check_ids(self, ids: list) -> None:
        for position, token_id in enumerate(ids):
            if isinstance(token_id, bool) or not _is_valid_id(token_id, self.vocab_size):
                raise ValueError(
                    f"token id {token_id!r} at position {position} is not valid for {self.name}: "
                    f"ids are integers in 0..{self.vocab_size - 1}"
                )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={str(self.path)!r}, vocab_size={self.vocab_size}, "
            f"pad_id={self.pad_id}, eos_id={self.eos_id})"
        )


def _load_sentencepiece(path: Path):
    """A SentencePieceProcessor of ``path``; a file it cannot parse is a clear error. Imported here,
    so that ``import mingrok`` does not load the C++ extension only Grok-1's tokenizer needs."""
    import sentencepiece

    payload = path.read_bytes()
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(payload)
    except RuntimeError:  # SentencePiece's own message names a line of its C++ source, not the file
        raise ValueError(
            f"{str(path)!r} ({len(payload):,} bytes) is not a SentencePiece model: expected xAI's "
            "tokenizer.model, a serialized SentencePiece ModelProto"
        ) from None
    return processor


class Grok1TokenizerUnavailable(FileNotFoundError):
    """Neither a local copy nor a download of xAI's tokenizer.model could be had."""


def grok1_tokenizer_path(
    local: str | os.PathLike | None = None,
    *,
    download: bool = True,
    urls: Sequence[str] = GROK1_TOKENIZER_URLS,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = 30.0,
) -> Path:
    """Where xAI's tokenizer.model is: ``local`` when that file exists, else a verified download.

    A download (tried from each of ``urls`` in turn) is kept only when its sha256 is
    :data:`GROK1_TOKENIZER_SHA256`, in ``cache_dir`` (default ``$XDG_CACHE_HOME/mingrok`` or
    ``~/.cache/mingrok``), so later calls read the cached copy. Raises
    :class:`Grok1TokenizerUnavailable` saying what was tried when there is no copy to be had
    (offline and no local file, or ``download=False``).
    """
    tried = []
    if local is not None:
        if Path(local).is_file():
            return Path(local)
        tried.append(f"{str(local)!r}: no such file")
    cached = _cache_folder(cache_dir) / "grok1_tokenizer.model"
    if cached.is_file() and _sha256(cached.read_bytes()) == GROK1_TOKENIZER_SHA256:
        return cached
    if not download:
        tried.append("download=False: not downloaded")
    else:
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    payload = response.read()
            except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
                tried.append(f"{url}: {error}")
                continue
            digest = _sha256(payload)
            if digest != GROK1_TOKENIZER_SHA256:
                tried.append(f"{url}: sha256 {digest}, not xAI's {GROK1_TOKENIZER_SHA256}")
                continue
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial")
            partial.write_bytes(payload)
            partial.replace(cached)  # atomic: a reader never sees half a file
            return cached
    raise Grok1TokenizerUnavailable(
        "xAI's Grok-1 tokenizer.model is not available: " + "; ".join(tried)
    )


def _cache_folder(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mingrok"


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
