"""What a Grok-1-shaped model costs at full scale: bytes of weights, KV cache and activations, what
each rank of a tensor-parallel mesh holds, and the bytes each kind of parallelism moves per token.

Everything follows from a :class:`~mingrok.config.MinGrokConfig`'s shapes. The layout is xAI's
(``model.py``'s partition rules, ``run.py``'s ``local_mesh_config=(1, 8)``): on the ``model`` axis
of P ranks, the query/key/value and expert ``linear``/``linear_v`` matrices are split by output
columns (whole heads, 1/P of every expert's hidden width F), the attention output and expert
``linear_1`` matrices by input rows, the embedding by its width D, and the router and norms are
replicated. Matrices are in Haiku's ``[..., in, out]`` layout, as in :mod:`mingrok.grok1`.

Collective sizes are the bytes one rank *sends*, for the standard algorithms on P ranks:

    all-reduce of N bytes (ring: reduce-scatter, then all-gather)     2·(P−1)/P · N
    all-to-all of N bytes (each rank keeps 1/P of its own rows)        (P−1)/P · N

Reference: xai-org/grok-1 ``model.py`` (``TRANSFORMER_PARTITION_RULES``, ``LM_PARTITION_RULES``,
``MoELayer``), Shoeybi et al. (2019) for the column/row split, Lepikhin et al. (2021) for the
all-to-all of expert parallelism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import MinGrokConfig, count_parameters, is_whole_number

BYTES_PER_VALUE = {"float32": 4, "bfloat16": 2, "int8": 1}
STORAGES = (*BYTES_PER_VALUE, "released")  # "released": int8 matrices + bfloat16 scales, rest f32
RELEASED_SCALE_GROUPS = 8  # the checkpoint's block count along a row-split input axis (8-way mesh)


@dataclass(frozen=True)
class Weight:
    """One parameter tensor, as Grok-1 shards it over the model axis.

    ``split`` is the axis cut over the P ranks (None: every rank holds all of it), in whole
    ``unit``-wide pieces: a head (d_h columns or rows) for attention, one column otherwise. A rank
    holds 1/P of the pieces or, when there are fewer pieces than ranks, one piece that several
    ranks hold alike (Grok-1 on 16 ranks: each of its 8 KV heads on 2). ``quantized`` says the
    released checkpoint stores it as int8 with bfloat16 scales [..., G, N]: ``scale_groups`` = G
    blocks of the input axis, RELEASED_SCALE_GROUPS for the matrices xAI's mesh splits by rows
    (each of its 8 ranks' rows have their own block) and 1 otherwise, whatever split this
    ``Weight`` describes. ``per_layer`` tensors exist once in every layer.
    """

    name: str  # grok-1's module path inside a layer (or the model)
    shape: tuple[int, ...]
    split: int | None
    unit: int = 1
    quantized: bool = False
    per_layer: bool = True
    scale_groups: int = 1

    @property
    def row_split(self) -> bool:
        return self.split is not None and self.split % len(self.shape) == len(self.shape) - 2

    def shard_shape(self, ranks: int) -> tuple[int, ...]:
        """The part one of ``ranks`` ranks holds."""
        _check_ranks(ranks)
        if self.split is None:
            return self.shape
        shape = list(self.shape)
        piece = "heads" if self.unit > 1 else "rows" if self.row_split else "columns"
        pieces = _per_rank(shape[self.split] // self.unit, ranks, f"{piece} of {self.name}")
        shape[self.split] = pieces * self.unit
        return tuple(shape)

    def scale_count(self, ranks: int = 1) -> int:
        """bfloat16 scales of the released int8 tensor that one of ``ranks`` ranks holds."""
        *lead, _, columns = self.shard_shape(ranks)
        groups = self.scale_groups
        if self.row_split:  # [..., G, N]: a rank needs the blocks its rows fall in
            groups = _per_rank(groups, ranks, "scale blocks")
        return math.prod(lead) * groups * columns

    def released_bytes(self, ranks: int = 1) -> int:
        """Bytes of one rank's part as the release stores it (once, not per layer): int8 values
        and their bfloat16 scales for a quantised matrix, float32 otherwise."""
        size = math.prod(self.shard_shape(ranks))
        return size + 2 * self.scale_count(ranks) if self.quantized else 4 * size


def _split_evenly(size: int, ranks: int, what: str) -> int:
    if size % ranks:
        raise ValueError(
            f"ranks={ranks!r} does not divide {what} (size {size}): it must be a divisor of {size}"
        )
    return size // ranks


def _per_rank(count: int, ranks: int, what: str) -> int:
    """count/P per rank when P divides count; 1 (replicated P/count times) when count divides P."""
    if count % ranks == 0:
        return count // ranks
    if ranks % count == 0:
        return 1
    raise ValueError(
        f"ranks={ranks!r} must divide the {count} {what} or be a multiple of it, so that every "
        "rank holds whole ones"
    )


def _check_ranks(ranks: int) -> None:
    if not is_whole_number(ranks):
        raise ValueError(f"ranks={ranks!r} is invalid: it must be a positive integer")


LAYOUTS = ("tensor", "expert")


def weights(config: MinGrokConfig, layout: str = "tensor") -> list[Weight]:
    """Every parameter tensor of one layer and of the model ends, with its split over the ranks.

    ``layout`` "tensor" is xAI's model axis (above); "expert" is :mod:`mingrok.parallel.expert`'s:
    each rank whole experts (the expert axis split), everything else replicated.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is invalid: it must be one of {LAYOUTS}")
    d, dh, e, f = config.d_model, config.head_dim, config.num_experts, config.ffn_dim
    h, g = config.num_q_heads * dh, config.num_kv_heads * dh
    router_columns = e * (2 if config.router_noise == "noisy_topk" else 1)
    tensor = layout == "tensor"
    heads = {"unit": dh, "quantized": True}
    rows = RELEASED_SCALE_GROUPS
    return [
        Weight("multi_head_attention/query", (d, h), split=1 if tensor else None, **heads),
        Weight("multi_head_attention/key", (d, g), split=1 if tensor else None, **heads),
        Weight("multi_head_attention/value", (d, g), split=1 if tensor else None, **heads),
        Weight(
            "multi_head_attention/linear",
            (h, d),
            split=0 if tensor else None,
            scale_groups=rows,
            **heads,
        ),
        Weight("router", (d, router_columns), split=None),
        Weight("moe/linear", (e, d, f), split=2 if tensor else 0, quantized=True),
        Weight("moe/linear_v", (e, d, f), split=2 if tensor else 0, quantized=True),
        Weight(
            "moe/linear_1", (e, f, d), split=1 if tensor else 0, quantized=True, scale_groups=rows
        ),
        *(Weight(f"rms_norm{s}", (d,), split=None) for s in ("", "_1", "_2", "_3")),
        Weight(
            "in_out_embed", (config.vocab_size, d), split=1 if tensor else None, per_layer=False
        ),
        Weight("rms_norm (final)", (d,), split=None, per_layer=False),
    ]


def weight_bytes(
    config: MinGrokConfig, storage: str, ranks: int = 1, layout: str = "tensor"
) -> int:
    """Bytes of the weights one rank holds on a model axis of ``ranks`` (1: the whole model),
    split by ``layout`` (see :func:`weights`).

        Σ_tensors  |shard| · bytes(storage)            (× num_layers for the per-layer ones)

    ``storage`` is "float32", "bfloat16", "int8", or "released": the checkpoint's format, where
    the attention and expert matrices are int8 (1 byte) plus their bfloat16 block scales
    (W = q · s, see :func:`mingrok.grok1.dequantize`) and the embedding, norms and router float32.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage={storage!r} is invalid: it must be one of {STORAGES}")
    _check_ranks(ranks)
    total = 0
    for weight in weights(config, layout):
        if storage == "released":
            size = weight.released_bytes(ranks)
        else:
            size = math.prod(weight.shard_shape(ranks)) * BYTES_PER_VALUE[storage]
        total += size * (config.num_layers if weight.per_layer else 1)
    return total


def kv_cache_bytes(
    config: MinGrokConfig, num_tokens: int, bytes_per_value: int = 2, ranks: int = 1
) -> int:
    """Keys and values one rank caches for ``num_tokens`` tokens of one sequence, every layer:

        layers · 2 (K and V) · G/P KV heads · d_h · tokens · bytes      (one head when P > G)

    Grok-1 (bfloat16): 256 KiB per token, 2 GiB per 8,192-token sequence; 32 KiB on each of 8.
    """
    _check_ranks(ranks)
    heads = _per_rank(config.num_kv_heads, ranks, "KV heads")
    return config.num_layers * 2 * heads * config.head_dim * num_tokens * bytes_per_value


def activation_bytes(
    config: MinGrokConfig, num_tokens: int, num_keys: int, ranks: int = 1
) -> dict[str, int]:
    """The largest tensors of one layer's forward pass for one sequence, on one rank, as Grok-1
    computes them (bfloat16, except the float32 attention logits):

        residual stream       T · D · 2           (whole on every rank here: it is all-reduced)
        queries               T · H/P · d_h · 2
        attention logits      H/P · T · S · 4     (float32, [heads, queries, keys], before softmax)
        expert hidden         T · k · 2 · F/P · 2 (the gate and value branches of the k experts)

    A training step keeps such tensors for every layer until the backward pass; inference only
    needs one layer's at a time (plus the KV cache).
    """
    _check_ranks(ranks)
    d, dh, k = config.d_model, config.head_dim, config.num_experts_per_token
    heads = _split_evenly(config.num_q_heads, ranks, "the query heads")
    hidden = _split_evenly(config.ffn_dim, ranks, "the expert hidden width")
    return {
        "residual stream": num_tokens * d * 2,
        "queries": num_tokens * heads * dh * 2,
        "attention logits (float32)": heads * num_tokens * num_keys * 4,
        "expert hidden": num_tokens * k * 2 * hidden * 2,
    }


def all_reduce_bytes(payload: float, ranks: int) -> float:
    """Bytes one rank sends in a ring all-reduce of ``payload`` bytes: 2·(P−1)/P · N
    (a reduce-scatter and an all-gather, each moving (P−1)/P of the data); 0 on one rank."""
    _check_ranks(ranks)
    return 2 * (ranks - 1) / ranks * payload


def all_to_all_bytes(payload: float, ranks: int) -> float:
    """Bytes one rank sends in an all-to-all of its ``payload`` bytes, spread evenly: (P−1)/P · N
    (the 1/P addressed to itself stays)."""
    _check_ranks(ranks)
    return (ranks - 1) / ranks * payload


def tensor_parallel_bytes_per_token(
    config: MinGrokConfig, ranks: int, bytes_per_value: int = 2
) -> float:
    """Bytes one rank sends per token and layer under tensor parallelism: the row-split attention
    output and expert ``linear_1`` each leave a partial sum of the D-wide output on every rank,
    so each is one all-reduce of D values:

        2 · 2·(P−1)/P · D · bytes
    """
    return 2 * all_reduce_bytes(config.d_model * bytes_per_value, ranks)


def expert_parallel_bytes_per_token(
    config: MinGrokConfig, ranks: int, bytes_per_value: int = 2
) -> float:
    """Bytes one rank sends per token and MoE layer under expert parallelism (whole experts on
    ranks, routing spread evenly): the token's D-wide input goes to each of its k experts
    (dispatch) and each expert's output comes back (combine), two all-to-alls of k·D values:

        2 · (P−1)/P · k · D · bytes
    """
    payload = config.num_experts_per_token * config.d_model * bytes_per_value
    return 2 * all_to_all_bytes(payload, ranks)


def data_parallel_bytes_per_step(
    config: MinGrokConfig, ranks: int, bytes_per_value: int = 2
) -> float:
    """Bytes one rank sends per training step under data parallelism: one all-reduce of every
    gradient (as many values as parameters), whatever the number of tokens in the step:

        2·(P−1)/P · parameters · bytes
    """
    return all_reduce_bytes(count_parameters(config)[0] * bytes_per_value, ranks)
