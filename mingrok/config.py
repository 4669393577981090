"""The model's hyperparameters, Grok-1's official values, and an analytic parameter count.

Every number that shapes the network lives in :class:`MinGrokConfig`. Fields left at ``None`` follow
Grok-1's own rules (FFN width from the widening factor, attention multiplier 1/√d_h, embedding
multiplier √D), so a config written for a tiny model still behaves like a scaled-down Grok-1.
Reference: xai-org/grok-1 ``model.py`` (``TransformerConfig``, ``LanguageModelConfig``), ``run.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, TypeVar

ROUTER_NOISE_KINDS = ("none", "gaussian", "jitter", "noisy_topk")

SettingsT = TypeVar("SettingsT", bound="Settings")


def is_whole_number(value: Any, minimum: int = 1) -> bool:
    """An ``int`` ≥ ``minimum``, the check behind every count (``True`` and 2.0 are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its documentation: ``help`` is what ``--help`` prints for it."""
    return dataclasses.field(default=default, metadata={"help": help})


class Settings:
    """What every frozen settings dataclass shares (:class:`MinGrokConfig`, ``TrainConfig``):
    dict and JSON round trips that refuse unknown names, ``replace`` (validated again), and errors
    that name the class, the field, its value and what is allowed."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[SettingsT], values: dict[str, Any]) -> SettingsT:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; allowed fields are {sorted(known)}"
            )
        return cls(**values)

    @classmethod
    def from_json(cls: type[SettingsT], text: str) -> SettingsT:
        return cls.from_dict(json.loads(text))

    def replace(self: SettingsT, **changes: Any) -> SettingsT:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def _require(self, valid: bool, name: str, allowed: str) -> None:
        """Raise unless ``valid``: "<Class>.<name>=<value> is invalid: it must be <allowed>"."""
        if not valid:
            raise ValueError(
                f"{type(self).__name__}.{name}={getattr(self, name)!r} is invalid: it must be "
                f"{allowed}"
            )

    def _require_whole_numbers(
        self, *names: str, minimum: int = 1, none_means: str | None = None
    ) -> None:
        """Each field named is an integer >= ``minimum``, or None where ``none_means`` says what
        None stands for."""
        allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if none_means is not None:
            allowed += f" or None ({none_means})"
        for name in names:
            value = getattr(self, name)
            optional = value is None and none_means is not None
            self._require(optional or is_whole_number(value, minimum), name, allowed)


def ffn_size(emb_size: int, widening_factor: float) -> int:
    """Grok-1's expert hidden width: ⌊w·D⌋·2 // 3, rounded up to a multiple of 8.

    The 2/3 keeps a gated (three-matrix) FFN at the parameter count of a plain two-matrix FFN of
    width w·D. For Grok-1, ffn_size(6144, 8) = 32768, so F/D = 5.33, not 8.
    """
    size = int(widening_factor * emb_size) * 2 // 3
    return size + (8 - size) % 8


@dataclass(frozen=True)
class MinGrokConfig(Settings):
    """Hyperparameters of a Grok-1-shaped decoder. The defaults are the course's small model."""

    vocab_size: int = 128
    d_model: int = 128  # Grok-1: emb_size 6144
    num_layers: int = 4  # Grok-1: 64
    num_q_heads: int = 4  # Grok-1: 48
    num_kv_heads: int = 2  # Grok-1: 8 (grouped-query attention, 6 query heads per KV head)
    head_dim: int = 32  # Grok-1: key_size 128; independent of d_model (H·d_h need not equal D)
    widening_factor: float = 8.0  # Grok-1: 8, turned into the FFN width by ffn_size()
    ffn_size: int | None = None  # explicit expert hidden width; None = ffn_size(d_model, widening)
    num_experts: int = 4  # Grok-1: 8
    num_experts_per_token: int = 2  # Grok-1: 2 (top-2 routing)
    max_seq_len: int = 256  # Grok-1: 8192 (the KV-cache length)
    rope_base: float = 10000.0  # Grok-1: 10000, over the full head dim
    rms_norm_eps: float = 1e-5  # Grok-1: 1e-5
    attn_logit_multiplier: float | None = None  # None = 1/√head_dim (Grok-1: 0.08838 = 1/√128)
    attn_logit_softcap: float = 30.0  # Grok-1: logits ← 30·tanh(logits/30)
    embedding_multiplier: float | None = None  # None = √d_model (Grok-1: 78.38 = √6144)
    output_multiplier: float = 1 / math.sqrt(3)  # Grok-1: 0.5773502691896257
    # Router options for training. All off = exactly Grok-1's inference-time router.
    router_noise: str = "none"  # one of ROUTER_NOISE_KINDS
    router_noise_std: float = 0.0  # strength: Gaussian std, jitter ε, or noisy-top-k multiplier
    router_aux_loss_coef: float = 0.0  # Switch load-balancing loss weight (paper: 1e-2)
    router_z_loss_coef: float = 0.0  # ST-MoE router z-loss weight (paper: 1e-3)
    renormalize_gates: bool = False  # Mixtral renormalises the top-k gates; Grok-1 does not
    # Grok-1's MoELayer casts its gates and its output to bfloat16 even when the model computes
    # in float32 (the fixture's "official" mode). Off = float32 throughout (its "f32" mode, what
    # XLA's compiler makes of the same code). A bfloat16 model rounds there either way.
    moe_bf16_casts: bool = False
    dropout: float = 0.0  # Grok-1 has none (its released code is inference-only)

    def __post_init__(self) -> None:
        require = self._require
        self._require_whole_numbers(
            "vocab_size",
            "d_model",
            "num_layers",
            "num_q_heads",
            "num_kv_heads",
            "head_dim",
            "num_experts",
            "num_experts_per_token",
            "max_seq_len",
        )
        require(
            self.num_q_heads % self.num_kv_heads == 0,
            "num_kv_heads",
            f"a divisor of num_q_heads={self.num_q_heads} (each KV head serves a group of "
            "query heads)",
        )
        require(self.head_dim % 2 == 0, "head_dim", "an even number (RoPE rotates pairs of dims)")
        require(
            self.num_experts_per_token <= self.num_experts,
            "num_experts_per_token",
            f"at most num_experts={self.num_experts}",
        )
        self._require_whole_numbers("ffn_size", none_means="Grok-1's rule")
        require(self.widening_factor > 0, "widening_factor", "a positive number")
        require(
            self.ffn_size is not None or ffn_size(self.d_model, self.widening_factor) >= 1,
            "widening_factor",
            "large enough to give ffn_size >= 1",
        )
        for name in ("rope_base", "rms_norm_eps", "attn_logit_softcap", "output_multiplier"):
            require(getattr(self, name) > 0, name, "a positive number")
        for name in ("attn_logit_multiplier", "embedding_multiplier"):
            value = getattr(self, name)
            require(value is None or value > 0, name, "a positive number or None (Grok-1's rule)")
        require(
            self.router_noise in ROUTER_NOISE_KINDS, "router_noise", f"one of {ROUTER_NOISE_KINDS}"
        )
        require(self.router_noise_std >= 0, "router_noise_std", "a number >= 0")
        require(
            self.router_noise != "jitter" or self.router_noise_std < 1,
            "router_noise_std",
            "below 1 for jitter (inputs are scaled by U(1-ε, 1+ε))",
        )
        for name in ("router_aux_loss_coef", "router_z_loss_coef"):
            require(getattr(self, name) >= 0, name, "a number >= 0")
        require(0 <= self.dropout < 1, "dropout", "a probability in [0, 1)")
        for name in ("renormalize_gates", "moe_bf16_casts"):
            require(isinstance(getattr(self, name), bool), name, "True or False")

    # Grok-1's rules for the fields left at None.
    @property
    def ffn_dim(self) -> int:
        """Expert hidden width F actually used."""
        return (
            self.ffn_size
            if self.ffn_size is not None
            else ffn_size(self.d_model, self.widening_factor)
        )

    @property
    def attn_scale(self) -> float:
        """Multiplier on q·k before the soft-cap (Grok-1's ``attn_output_multiplier``)."""
        if self.attn_logit_multiplier is not None:
            return self.attn_logit_multiplier
        return 1 / math.sqrt(self.head_dim)

    @property
    def embedding_scale(self) -> float:
        """Multiplier on the token embeddings (Grok-1's ``embedding_multiplier_scale``)."""
        if self.embedding_multiplier is not None:
            return self.embedding_multiplier
        return math.sqrt(self.d_model)

    @property
    def queries_per_kv_head(self) -> int:
        return self.num_q_heads // self.num_kv_heads


# Grok-1 as released by xAI (run.py + model.py defaults). 315,684,820,992 parameters in total,
# 83,756,587,008 used per token (top-2 of 8 experts). Build it on torch.device("meta") only.
GROK1 = MinGrokConfig(
    vocab_size=131072,  # 128·1024 SentencePiece pieces; pad 0, BOS 1, EOS 2
    d_model=6144,  # 48 heads × 128
    num_layers=64,
    num_q_heads=48,
    num_kv_heads=8,  # GQA: query heads 6g..6g+5 share KV head g
    head_dim=128,
    widening_factor=8.0,  # ffn_size(6144, 8) = 32768
    num_experts=8,
    num_experts_per_token=2,
    max_seq_len=8192,
    rope_base=10000.0,
    rms_norm_eps=1e-5,
    attn_logit_multiplier=0.08838834764831845,  # 1/√128
    attn_logit_softcap=30.0,
    embedding_multiplier=78.38367176906169,  # √6144
    output_multiplier=0.5773502691896257,  # 1/√3
)

# The course's default: Grok-1's shape at Shakespeare size (the shipped pretrained model).
# Grok-1's router has no balancing loss (its code is inference-only); training from scratch needs
# one to keep all experts in use, and the z-loss keeps the router logits small.
SHAKESPEARE = MinGrokConfig(router_aux_loss_coef=1e-2, router_z_loss_coef=1e-3)


def count_parameters(config: MinGrokConfig) -> tuple[int, int]:
    """Total and per-token active parameter counts, computed from the shapes alone.

    The tied embedding is counted once. "Active" counts k of the E experts in every layer (and
    everything else), which is what one token's forward pass touches.
    """
    d, h, g, dh, e, k = (
        config.d_model,
        config.num_q_heads,
        config.num_kv_heads,
        config.head_dim,
        config.num_experts,
        config.num_experts_per_token,
    )
    attention = d * h * dh + 2 * d * g * dh + h * dh * d
    router = d * e * (2 if config.router_noise == "noisy_topk" else 1)
    norms = 4 * d
    expert = 3 * d * config.ffn_dim
    shared = config.vocab_size * d + d  # embedding (tied) + final norm
    total = shared + config.num_layers * (attention + router + norms + e * expert)
    active = shared + config.num_layers * (attention + router + norms + k * expert)
    return total, active
