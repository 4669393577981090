"""Exercise checks: each prints PASS / NOT ATTEMPTED YET / FAIL with a hint, and never raises.

Chapters call them right after the reader's code, e.g. ``check_soft_cap(my_soft_cap)``.
"""

from ._core import FAIL, NOT_ATTEMPTED, PASS, CheckResult, history, parse_line
from .attention import check_attention_mask, check_kv_head_for_query, check_soft_cap
from .embeddings import check_initial_loss, check_rms_norm, check_sandwich_block
from .experts import check_ffn_size, check_geglu_expert, check_sparse_dispatch
from .model import check_haiku_to_torch, check_kv_cache_bytes, check_parameter_count
from .real_grok1 import check_allowed_global, check_dequantize_released
from .rope import check_inverse_frequencies, check_rope, check_rotate_half
from .router import check_load_balancing_loss, check_top_k_gates, check_z_loss
from .sampling import check_temperature, check_top_k_filter, check_top_p_filter
from .scale import (
    check_expert_parallel_bytes,
    check_rank_weight_bytes,
    check_tensor_parallel_bytes,
)
from .tokenizer import check_char_encoder, check_greedy_merge, check_most_frequent_pair
from .training import check_cosine_lr, check_nats_per_char

__all__ = [
    "FAIL",
    "NOT_ATTEMPTED",
    "PASS",
    "CheckResult",
    "check_allowed_global",
    "check_attention_mask",
    "check_char_encoder",
    "check_cosine_lr",
    "check_dequantize_released",
    "check_expert_parallel_bytes",
    "check_ffn_size",
    "check_geglu_expert",
    "check_greedy_merge",
    "check_haiku_to_torch",
    "check_initial_loss",
    "check_inverse_frequencies",
    "check_kv_cache_bytes",
    "check_kv_head_for_query",
    "check_load_balancing_loss",
    "check_most_frequent_pair",
    "check_nats_per_char",
    "check_parameter_count",
    "check_rank_weight_bytes",
    "check_rms_norm",
    "check_rope",
    "check_rotate_half",
    "check_sandwich_block",
    "check_soft_cap",
    "check_sparse_dispatch",
    "check_temperature",
    "check_tensor_parallel_bytes",
    "check_top_k_filter",
    "check_top_k_gates",
    "check_top_p_filter",
    "check_z_loss",
    "history",
    "parse_line",
]
