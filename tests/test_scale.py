"""mingrok.scale: Grok-1's bytes at full scale, per rank, and the bytes each parallelism moves,
checked against the release's shapes, independent counts and a simulated ring all-reduce."""

import math

import pytest

from mingrok import GROK1, SHAKESPEARE, count_parameters
from mingrok.scale import (
    activation_bytes,
    all_reduce_bytes,
    all_to_all_bytes,
    data_parallel_bytes_per_step,
    expert_parallel_bytes_per_token,
    kv_cache_bytes,
    tensor_parallel_bytes_per_token,
    weight_bytes,
    weights,
)

GiB = 2**30


def test_weights_are_every_parameter_once():
    counted = sum(
        math.prod(w.shape) * (GROK1.num_layers if w.per_layer else 1) for w in weights(GROK1)
    )
    assert counted == count_parameters(GROK1)[0] == 315_684_820_992


@pytest.mark.parametrize("storage", ["float32", "bfloat16", "int8"])
def test_plain_storage_is_bytes_per_parameter(storage):
    width = {"float32": 4, "bfloat16": 2, "int8": 1}[storage]
    for config in (GROK1, SHAKESPEARE):
        assert weight_bytes(config, storage) == width * count_parameters(config)[0]


def test_released_storage_matches_the_checkpoints_scale_shapes():
    # grok1_spec §3.4: q [1, 6144], k/v [1, 1024], linear [8, 6144], moe/linear(_v) [8, 1, 32768],
    # moe/linear_1 [8, 8, 6144]; int8 values, bfloat16 scales, embedding/norms/router float32.
    per_layer_scales = 6144 + 2 * 1024 + 8 * 6144 + 2 * 8 * 32768 + 8 * 8 * 6144
    int8_values = 64 * (88_080_384 + 4_831_838_208)
    float_values = count_parameters(GROK1)[0] - int8_values
    expected = int8_values + 2 * 64 * per_layer_scales + 4 * float_values
    assert weight_bytes(GROK1, "released") == expected
    assert round(expected / GiB, 1) == 296.4


def test_each_rank_holds_one_eighth_of_the_split_tensors_and_all_of_the_replicated_ones():
    replicated = 64 * (6144 * 8 + 4 * 6144) + 6144  # routers, norms, final norm
    split = count_parameters(GROK1)[0] - replicated
    assert weight_bytes(GROK1, "bfloat16", ranks=8) == 2 * (split // 8 + replicated)


def test_grok1_shards_on_its_8_way_mesh():
    shards = {w.name: w.shard_shape(8) for w in weights(GROK1)}
    assert shards["multi_head_attention/query"] == (6144, 768)  # 6 query heads
    assert shards["multi_head_attention/key"] == (6144, 128)  # 1 KV head
    assert shards["multi_head_attention/linear"] == (768, 6144)  # rows of its 6 heads
    assert shards["moe/linear"] == (8, 6144, 4096)  # all 8 experts, 1/8 of F each
    assert shards["moe/linear_1"] == (8, 4096, 6144)
    assert shards["router"] == (6144, 8)
    assert shards["in_out_embed"] == (131072, 768)


def test_more_ranks_than_kv_heads_replicate_a_head():
    key = next(w for w in weights(GROK1) if w.name.endswith("/key"))
    assert key.shard_shape(16) == (6144, 128)  # one head, held by 2 ranks
    assert kv_cache_bytes(GROK1, 1, ranks=16) == kv_cache_bytes(GROK1, 1, ranks=8)
    with pytest.raises(ValueError, match=r"ranks=3 must divide the 8 KV heads"):
        kv_cache_bytes(GROK1, 1, ranks=3)


def test_kv_cache():
    assert kv_cache_bytes(GROK1, 1) == 256 * 2**10
    assert kv_cache_bytes(GROK1, 8192) == 2 * GiB
    assert kv_cache_bytes(GROK1, 8192, ranks=8) == GiB // 4
    assert kv_cache_bytes(SHAKESPEARE, 256, 4) == 4 * 2 * 2 * 32 * 256 * 4


def test_activations_of_a_full_context_prefill():
    full = activation_bytes(GROK1, 8192, 8192)
    assert full["attention logits (float32)"] == 48 * 8192 * 8192 * 4 == 12 * GiB
    sharded = activation_bytes(GROK1, 8192, 8192, ranks=8)
    assert sharded["attention logits (float32)"] * 8 == full["attention logits (float32)"]
    assert sharded["residual stream"] == full["residual stream"] == 8192 * 6144 * 2
    assert sharded["expert hidden"] == 8192 * 2 * 2 * 4096 * 2


def simulated_ring_all_reduce_bytes(payload: int, ranks: int) -> int:
    """Count what rank 0 sends in a ring all-reduce: P−1 reduce-scatter steps then P−1 all-gather
    steps, each passing one of P equal chunks to the next rank."""
    chunk = payload / ranks
    values = [[float(r + 1)] * ranks for r in range(ranks)]  # values[rank][chunk]
    sent = 0.0
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(ranks - 1):
            outgoing = []
            for rank in range(ranks):
                index = (rank - step + (0 if phase == "reduce-scatter" else 1)) % ranks
                outgoing.append((rank, index, values[rank][index]))
                sent += chunk if rank == 0 else 0
            for rank, index, value in outgoing:
                target = (rank + 1) % ranks
                if phase == "reduce-scatter":
                    values[target][index] += value
                else:
                    values[target][index] = value
    total = sum(range(1, ranks + 1))
    assert all(v == total for row in values for v in row)  # every rank holds the full sum
    return sent


@pytest.mark.parametrize("ranks", [1, 2, 4, 8])
def test_all_reduce_bytes_match_a_simulated_ring(ranks):
    assert all_reduce_bytes(12288, ranks) == pytest.approx(
        simulated_ring_all_reduce_bytes(12288, ranks)
    )
    assert all_to_all_bytes(12288, ranks) == 12288 * (ranks - 1) / ranks


def test_per_token_communication_for_grok1():
    # two all-reduces of D bf16 values per layer; top-2 dispatch + combine of D bf16 values
    assert tensor_parallel_bytes_per_token(GROK1, 8) == 2 * 2 * 7 / 8 * 6144 * 2 == 43_008
    assert expert_parallel_bytes_per_token(GROK1, 8) == 2 * 7 / 8 * 2 * 6144 * 2 == 43_008
    assert tensor_parallel_bytes_per_token(GROK1, 1) == 0
    step = data_parallel_bytes_per_step(GROK1, 8)
    assert step == 2 * 7 / 8 * 2 * count_parameters(GROK1)[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: weight_bytes(GROK1, "fp8"), r"storage='fp8' is invalid: it must be one of"),
        (lambda: weight_bytes(GROK1, "bfloat16", ranks=0), r"ranks=0 is invalid"),
        (
            lambda: weight_bytes(GROK1, "bfloat16", ranks=5),
            r"ranks=5 must divide the 48 heads of multi_head_attention/query",
        ),
        (lambda: activation_bytes(GROK1, 1, 1, ranks=32), r"ranks=32 does not divide the query"),
        (lambda: weight_bytes(GROK1, "int8", ranks=24), r"ranks=24 must divide the 32768 columns"),
        (lambda: all_reduce_bytes(8, ranks=2.0), r"ranks=2.0 is invalid"),
    ],
)
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()
