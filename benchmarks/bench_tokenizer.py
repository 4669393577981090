"""Encode all of TinyShakespeare with mingrok's tokenizer and with the seed's list-deletion loop.

The seed scans left to right and deletes from a Python list after each merge, which is O(n) per
merge (~300k merges here): about 20 s. The package does the same greedy scan as a stack (O(n) in
total). Prints figures only; the ids of the two are compared, not asserted.

    python benchmarks/bench_tokenizer.py [--repeats 5] [--path input.txt]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from mingrok.data import load_shakespeare
from mingrok.tokenizer import MinGrokTokenizer


def seed_encode(text: str, tokenizer: MinGrokTokenizer) -> list[int]:
    """The seed repo's encoder as the spec describes it: map, scan, merge, delete, step back."""
    stoi = {char: i for i, char in enumerate(tokenizer.chars)}
    merges = {pair: i for i, pair in enumerate(tokenizer.merges, start=len(tokenizer.chars))}
    ids = [stoi.get(char, 1) for char in text]
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


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The fastest of ``repeats`` runs (the least disturbed by other processes) and its result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of the package encoder")
    parser.add_argument("--path", default=None, help="a copy of input.txt (default: located)")
    args = parser.parse_args()

    text = load_shakespeare(args.path)
    tokenizer = MinGrokTokenizer()
    encode_s, ids = best_time(lambda: tokenizer.encode(text), args.repeats)
    decode_s, decoded = best_time(lambda: tokenizer.decode(ids), args.repeats)
    seed_s, seed_ids = best_time(lambda: seed_encode(text, tokenizer), 1)

    print(f"TinyShakespeare: {len(text):,} characters -> {len(ids):,} tokens")
    for label, seconds in (
        (f"mingrok encode (stack), best of {args.repeats}", encode_s),
        (f"mingrok decode, best of {args.repeats}", decode_s),
        ("seed encode (list deletion), 1 run", seed_s),
    ):
        print(f"{label:<38}{seconds:8.3f} s")
    print(f"speed-up: {seed_s / encode_s:,.0f}x")
    print(f"identical ids: {ids == seed_ids}; round trip exact: {decoded == text}")


if __name__ == "__main__":
    main()
