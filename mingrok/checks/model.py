"""Checks for chapter 7 (the full model)."""

from __future__ import annotations

import torch

from ..config import GROK1, SHAKESPEARE, MinGrokConfig, count_parameters
from ..grok1 import haiku_to_torch_names
from ..model import MinGrok
from ..scale import kv_cache_bytes
from ._core import CheckFailed, call, exercise

# Shapes other than the course's: H·d_h ≠ D, three query heads per KV head, top-3 of 5 experts.
_ODD = MinGrokConfig(
    vocab_size=100,
    d_model=40,
    num_layers=3,
    num_q_heads=6,
    num_kv_heads=2,
    head_dim=10,
    widening_factor=3.0,
    num_experts=5,
    num_experts_per_token=3,
    max_seq_len=64,
)


@exercise("7.1")
def check_parameter_count(count) -> str:
    """``count(config) -> (total, active)`` from the config's shapes alone."""
    for name, config in (("GROK1", GROK1), ("SHAKESPEARE", SHAKESPEARE), ("an odd config", _ODD)):
        got = call(count, config)
        try:
            total, active = (int(v) for v in got)
        except (TypeError, ValueError):
            raise CheckFailed(f"return a pair (total, active); got {got!r:.60}") from None
        expected_total, expected_active = count_parameters(config)
        if (total, active) == (expected_total, expected_active):
            continue
        d, e, k = config.d_model, config.num_experts, config.num_experts_per_token
        expert = 3 * d * config.ffn_dim
        layers = config.num_layers
        if total - expected_total == config.vocab_size * d:
            raise CheckFailed(
                f"{name}: you counted the embedding twice; the unembedding is the same matrix "
                "(tied), so it adds no parameters"
            )
        if total == expected_total and active == expected_total:
            raise CheckFailed(
                f"{name}: your total is right, but a token visits only {k} of the {e} experts: "
                "the other experts' weights are not active"
            )
        if total == expected_total and active - expected_active == layers * (k - e) * expert:
            raise CheckFailed(f"{name}: active counts k = {k} experts per layer, not {e}")
        if expected_total - total in (4 * d * layers, 4 * d * layers + d, d):
            raise CheckFailed(
                f"{name}: you left out the RMSNorm scales: 4 per layer plus the final norm, "
                "D parameters each"
            )
        if expected_total - total == config.num_layers * d * e:
            raise CheckFailed(f"{name}: you left out the router, a [D, E] matrix in every layer")
        raise CheckFailed(
            f"{name}: you gave ({total:,}, {active:,}), expected ({expected_total:,}, "
            f"{expected_active:,}). Per layer: attention D·H·d_h + 2·D·G·d_h + H·d_h·D, router "
            "D·E, 4 norms of D, E experts of 3·D·F; plus the tied embedding V·D and a final norm D"
        )
    return "Grok-1: 315,684,820,992 parameters, 83,756,587,008 active per token."


@exercise("7.2")
def check_kv_cache_bytes(answer) -> str:
    """``kv_cache_bytes(config, num_tokens, bytes_per_value) -> int``."""
    for config, tokens, width in (
        (GROK1, 8192, 2),
        (GROK1, 1, 2),
        (_ODD, 64, 4),
        (SHAKESPEARE, 256, 4),
    ):
        got = call(answer, config, tokens, width)
        expected = kv_cache_bytes(config, tokens, width)
        if got == expected:
            continue
        if got == expected * config.queries_per_kv_head and config.queries_per_kv_head > 1:
            raise CheckFailed(
                "you used the query heads; the cache holds keys and values only, one per "
                f"KV head (G = {config.num_kv_heads}, not H = {config.num_q_heads})"
            )
        if got * 2 == expected:
            raise CheckFailed("the cache holds two tensors per layer: the keys and the values")
        if got * config.num_layers == expected:
            raise CheckFailed("every layer has its own cache: multiply by the number of layers")
        raise CheckFailed(
            f"{tokens} tokens at {width} bytes: expected {expected:,} bytes = layers · 2 (K and "
            "V) · KV heads · d_h · tokens · bytes per value"
        )
    return "Grok-1's cache: 256 KiB per token, 2 GiB per 8192-token sequence (bf16)."


@exercise("7.3")
def check_haiku_to_torch(haiku_to_torch) -> str:
    """``haiku_to_torch(path, array) -> (state_dict name, tensor)`` for one Haiku parameter."""
    config = _ODD.replace(num_layers=2)
    target = MinGrok(config).state_dict()
    generator = torch.Generator().manual_seed(73)
    for path, (name, transpose) in haiku_to_torch_names(config).items():
        shape = tuple(target[name].shape)
        array = torch.randn(shape[::-1] if transpose else shape, generator=generator)
        got = call(haiku_to_torch, path, array.clone())
        try:
            got_name, got_tensor = got
        except (TypeError, ValueError):
            raise CheckFailed(f"return a pair (name, tensor); got {got!r:.60}") from None
        if got_name != name:
            raise CheckFailed(
                f"{path!r} is {name!r} in MinGrok's state_dict, you said {got_name!r}"
            )
        got_tensor = torch.as_tensor(got_tensor)
        if tuple(got_tensor.shape) != shape or not torch.equal(
            got_tensor, array.t() if transpose else array
        ):
            if transpose:
                raise CheckFailed(
                    f"{path!r} is [in, out] = {tuple(array.shape)} (y = x @ W); nn.Linear.weight "
                    f"is [out, in] = {shape}: transpose it"
                )
            raise CheckFailed(
                f"{path!r} keeps its layout {tuple(array.shape)}: "
                + (
                    "MoELayer stores the expert weights as grok-1 does, [E, in, out]"
                    if "/moe/" in path
                    else "embeddings and norm scales need no transpose"
                )
            )
    return "every Haiku parameter lands on its PyTorch name, transposed where nn.Linear needs it."
