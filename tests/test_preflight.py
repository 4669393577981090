"""mingrok.preflight: a rank's bytes from mingrok.scale, and a refusal naming the figures when its
device cannot hold them."""

from __future__ import annotations

import re

import pytest
import torch

from mingrok import GROK1
from mingrok.preflight import RUNTIME_BYTES, check_fits, rank_needs
from mingrok.scale import kv_cache_bytes, weight_bytes

from .conftest import tiny_config

GiB = 2**30
CPU = torch.device("cpu")


def test_grok1_on_its_8_way_mesh_keeps_the_released_bytes_per_rank():
    needs = rank_needs(GROK1, 8, "tensor", "int8")
    # chapter 10's 37.1 GiB: the tied embedding too is split by D, 1/8 of it per rank
    assert needs.parts["weights"] == weight_bytes(GROK1, "released", 8)
    assert round(weight_bytes(GROK1, "released", 8) / GiB, 1) == 37.1
    assert needs.parts["KV cache"] == GiB // 2  # float32, 1 KV head of 8, 8192 positions
    assert needs.parts["reading"] == 4 * 131072 * 6144  # the float32 embedding, the largest file
    assert needs.parts["dequantising"] == 3 * 4 * 8 * 6144 * 4096  # one layer's expert shards
    assert needs.parts["runtime"] == RUNTIME_BYTES
    assert needs.total == sum(needs.parts.values())
    float32 = rank_needs(GROK1, 8, "tensor", "float32")
    assert float32.parts["weights"] == weight_bytes(GROK1, "float32", 8)
    assert "dequantising" not in float32.parts


def test_expert_parallel_replicates_attention_and_its_cache():
    needs = rank_needs(GROK1, 8, "expert", "int8")
    assert needs.parts["KV cache"] == kv_cache_bytes(GROK1, 8192, 4)  # every KV head
    assert needs.parts["weights"] > rank_needs(GROK1, 8, "tensor", "int8").parts["weights"]


def test_a_device_too_small_is_refused_with_the_figures():
    needs = rank_needs(GROK1, 1, "tensor", "float32")
    message = re.escape("one process (the whole model, --weights float32) needs 1184.02 GiB")
    with pytest.raises(ValueError, match=message + r".*weights 1176\.02 GiB.*cpu has .* free"):
        check_fits(needs, CPU)
    with pytest.raises(ValueError, match=r"or --weights int8, or a larger device"):
        check_fits(needs, CPU)


def test_ranks_of_one_host_share_its_memory(monkeypatch):
    needs = rank_needs(tiny_config(), 2, "tensor", "float32")
    assert "cpu has" in check_fits(needs, CPU)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(10**6))
    with pytest.raises(ValueError, match="shared by its 1000000 ranks"):
        check_fits(needs, CPU)


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match=r"weights='int4' is invalid: it must be one of"):
        rank_needs(GROK1, 8, "tensor", "int4")
