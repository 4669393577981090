"""Checks for chapter 10 (Grok-1 at full scale)."""

from __future__ import annotations

import math

from ..config import GROK1, SHAKESPEARE
from ..scale import (
    expert_parallel_bytes_per_token,
    tensor_parallel_bytes_per_token,
    weight_bytes,
    weights,
)
from ._core import CheckFailed, call, exercise
from .model import _ODD as ODD_SHAPES

# (config, ranks): odd shapes with top-3 routing (first, so that k = 2 hides no mistake), Grok-1's
# own mesh, Grok-1 on more ranks than KV heads, the course model on 2.
_MESHES = ((ODD_SHAPES, 2), (GROK1, 8), (GROK1, 16), (SHAKESPEARE, 2))


def _number(got: object, what: str) -> float:
    try:
        return float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"return the {what} as a number; got {got!r:.60}") from None


def _replicated_and_split(config) -> tuple[int, int]:
    """Parameters every rank holds whole, and parameters that are split (all layers)."""
    replicated = split = 0
    for weight in weights(config):
        count = math.prod(weight.shape) * (config.num_layers if weight.per_layer else 1)
        if weight.split is None:
            replicated += count
        else:
            split += count
    return replicated, split


@exercise("10.1")
def check_rank_weight_bytes(rank_weight_bytes) -> str:
    """``rank_weight_bytes(config, ranks, bytes_per_value) -> int``: one rank's weights."""
    for config, ranks in _MESHES:
        got = _number(call(rank_weight_bytes, config, ranks, 2), "bytes")
        expected = weight_bytes(config, "bfloat16", ranks)
        if got == expected:
            continue
        total = 2 * sum(_replicated_and_split(config))
        replicated = 2 * _replicated_and_split(config)[0]
        embedding = 2 * config.vocab_size * config.d_model
        kv = 2 * config.num_layers * 2 * config.d_model * config.num_kv_heads * config.head_dim
        if math.isclose(got, total / ranks):
            raise CheckFailed(
                "you divided everything by the ranks; the router and the norms are replicated: "
                "every rank holds all of them (routing must be the same on every rank)"
            )
        if math.isclose(got, expected + embedding * (ranks - 1) / ranks):
            raise CheckFailed("the embedding is split too: each rank holds D/P of its columns")
        fractional_heads = expected - kv / config.num_kv_heads + kv / ranks
        if ranks > config.num_kv_heads and math.isclose(got, fractional_heads):
            raise CheckFailed(
                f"with {ranks} ranks and {config.num_kv_heads} KV heads a rank cannot hold "
                f"1/{ranks} of the heads: it holds one whole KV head, which "
                f"{ranks // config.num_kv_heads} ranks hold alike (its keys and values are "
                "replicated)"
            )
        if math.isclose(got, expected - replicated):
            raise CheckFailed("you left out the replicated router and norm scales")
        raise CheckFailed(
            f"{ranks} ranks: you gave {got:,.0f} bytes, expected {expected:,} = 2 bytes · (router "
            "and norms whole + 1/P of the query, output and expert matrices and of the embedding "
            "+ G/P KV heads' keys and values, at least one)"
        )
    per_rank = weight_bytes(GROK1, "bfloat16", 8) / 2**30
    return f"each of Grok-1's 8 ranks holds {per_rank:.1f} GiB of bfloat16 weights."


def _compare_bytes(answer, expected_fn, describe: str, wrong: dict) -> str:
    """Compare ``answer(config, ranks, 2)`` with ``expected_fn`` on every mesh; a known wrong
    formula (one that gives the answer's value on every mesh) gets its hint."""
    answers = [_number(call(answer, config, ranks, 2), "bytes") for config, ranks in _MESHES]
    for hint, value in wrong.items():
        if all(math.isclose(a, value(*mesh)) for a, mesh in zip(answers, _MESHES, strict=True)):
            raise CheckFailed(hint)
    for got, (config, ranks) in zip(answers, _MESHES, strict=True):
        expected = expected_fn(config, ranks, 2)
        if not math.isclose(got, expected):
            raise CheckFailed(
                f"{ranks} ranks: you gave {got:,.1f} bytes per token and layer, expected "
                f"{expected:,.1f} = {describe}"
            )
    return f"{expected_fn(GROK1, 8, 2):,.0f} bytes per token and layer on Grok-1's 8 ranks."


def _ring(config, ranks: int) -> float:
    """One ring all-reduce of D bfloat16 values."""
    return 2 * (ranks - 1) / ranks * config.d_model * 2


@exercise("10.2")
def check_tensor_parallel_bytes(tensor_parallel_bytes) -> str:
    """``tensor_parallel_bytes(config, ranks, bytes_per_value)``: sent per token and layer."""
    return _compare_bytes(
        tensor_parallel_bytes,
        tensor_parallel_bytes_per_token,
        "2 all-reduces · 2·(P−1)/P · D · bytes",
        {
            "you gave half: a layer has two row-split matrices (attention output, expert "
            "linear_1), so two all-reduces, and a ring all-reduce (a reduce-scatter, then an "
            "all-gather) sends 2·(P−1)/P of the data per rank": _ring,
            "a ring all-reduce sends 2·(P−1)/P of the data per rank, not 2·(P−1) times it: each "
            "step passes one chunk of N/P": lambda c, p: 2 * _ring(c, p) * p,
            "what is summed is the D-wide output, not the F-wide hidden layer (that stays split "
            "on its ranks)": lambda c, p: 2 * _ring(c, p) * c.ffn_dim / c.d_model,
        },
    )


def _dispatch(config, ranks: int) -> float:
    """One all-to-all of a token's k copies of D bfloat16 values."""
    return (ranks - 1) / ranks * config.num_experts_per_token * config.d_model * 2


@exercise("10.3")
def check_expert_parallel_bytes(expert_parallel_bytes) -> str:
    """``expert_parallel_bytes(config, ranks, bytes_per_value)``: sent per token and MoE layer."""
    return _compare_bytes(
        expert_parallel_bytes,
        expert_parallel_bytes_per_token,
        "2 all-to-alls (dispatch, combine) · (P−1)/P · k · D · bytes",
        {
            "the expert outputs come back too (combine): two all-to-alls, not one": _dispatch,
            "each token goes to k experts: k copies of its D values": lambda c, p: (
                2 * _dispatch(c, p) / c.num_experts_per_token
            ),
            "with routing spread evenly, 1/P of the rows are for the rank's own experts and "
            "stay: (P−1)/P of them leave": lambda c, p: 2 * _dispatch(c, p) * p / (p - 1),
        },
    )
