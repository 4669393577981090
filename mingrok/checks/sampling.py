"""Checks for chapter 9 (sampling with a KV cache)."""

from __future__ import annotations

import torch

from ..sampling import top_k_filter, top_p_filter
from ._core import CheckFailed, call, exercise

REMOVED_BELOW = -1e9  # a filtered logit must be at most this (grok-1 uses −1e10; −inf is fine too)


def _kept(logits: torch.Tensor, filtered: object, what: str) -> torch.Tensor:
    """The mask of logits the reader's filter kept unchanged; every other one must be removed."""
    filtered = torch.as_tensor(filtered).float()
    if filtered.shape != logits.shape:
        raise CheckFailed(
            f"{what} returned shape {tuple(filtered.shape)}; return logits of the input's shape "
            f"{tuple(logits.shape)}, with the removed ones set to a very negative number"
        )
    kept = filtered == logits
    if not (filtered[~kept] <= REMOVED_BELOW).all():
        raise CheckFailed(
            "keep each logit unchanged or replace it by a very negative number (grok-1: −1e10); "
            "do not rescale the ones you keep"
        )
    return kept


@exercise("9.1")
def check_temperature(temperature_probs) -> str:
    """``temperature_probs(logits [V], T) -> probs [V]``: softmax(logits / T); T = 0 is greedy."""
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0, 0.0])
    for temperature in (1.0, 0.5, 2.0, 0.1):
        expected = torch.softmax(logits / temperature, dim=-1)
        got = torch.as_tensor(call(temperature_probs, logits.clone(), temperature)).float()
        if got.shape != expected.shape:
            raise CheckFailed(f"return probabilities of shape {tuple(logits.shape)}")
        if torch.allclose(got, expected, atol=1e-6):
            continue
        if torch.allclose(got, torch.softmax(logits * temperature, dim=-1), atol=1e-6):
            raise CheckFailed("divide the logits by T (a low T must sharpen), don't multiply")
        raise CheckFailed(f"at T = {temperature}: expected softmax(logits / T)")
    greedy = torch.as_tensor(call(temperature_probs, logits.clone(), 0.0)).float()
    if not torch.equal(greedy, torch.eye(len(logits))[logits.argmax()]):
        raise CheckFailed(
            "T = 0 is greedy decoding: all the probability on the argmax (logits / 0 is not a "
            "number; treat 0 as a special case)"
        )
    return "softmax(logits / T), and T = 0 puts everything on the most likely token."


@exercise("9.2")
def check_top_p_filter(nucleus_filter) -> str:
    """``nucleus_filter(logits [B, V], p) -> logits`` with grok-1's rule; the rest removed."""
    generator = torch.Generator().manual_seed(9)
    logits = torch.randn(64, 50, generator=generator) * 2
    ties = torch.tensor([[3.0, 1.0, 1.0, 1.0, 0.0, -2.0]])  # p = 0.75: the threshold is a tie
    for batch, p in ((logits, 0.9), (logits, 0.5), (logits, 0.05), (logits, 1.0), (ties, 0.75)):
        kept = _kept(batch, call(nucleus_filter, batch.clone(), p), "your filter")
        expected = top_p_filter(batch, p) == batch
        if torch.equal(kept, expected):
            continue
        row = int((kept != expected).any(-1).nonzero()[0])
        probs = torch.softmax(batch[row], -1)
        if batch is ties:
            raise CheckFailed(
                f"with logits {batch[0].tolist()} and p = {p}, grok-1 keeps every logit ≥ the "
                "threshold logit, so tokens tied with it are kept too"
            )
        raise CheckFailed(
            f"p = {p}, row {row}: you kept {int(kept[row].sum())} tokens holding "
            f"{probs[kept[row]].sum():.3f} of the probability; grok-1 keeps "
            f"{int(expected[row].sum())} holding {probs[expected[row]].sum():.3f}. Sort "
            "ascending, find the first index where the cumulative probability reaches 1 − p, "
            "and keep every logit ≥ the logit there (the kept mass is then > p)"
        )
    return "grok-1's nucleus: the smallest top set with probability > p, ties included."


@exercise("9.3")
def check_top_k_filter(keep_top_k) -> str:
    """``keep_top_k(logits [B, V], k) -> logits`` with all but the k largest of each row removed."""
    generator = torch.Generator().manual_seed(10)
    logits = torch.randn(16, 40, generator=generator)
    for k in (1, 5, 40):
        kept = _kept(logits, call(keep_top_k, logits.clone(), k), "your filter")
        expected = top_k_filter(logits, k) == logits
        if torch.equal(kept, expected):
            continue
        counts = kept.sum(-1)
        if (counts == k).all():
            raise CheckFailed(f"k = {k}: keep the k LARGEST logits of each row (dim=-1)")
        raise CheckFailed(
            f"k = {k}: you kept {counts.min().item()}–{counts.max().item()} logits per row; "
            "keep the logits ≥ the k-th largest of their row"
        )
    return "the k largest logits of each row survive, the others are removed."
