"""Load Grok-1's own parameters: its config field names, its Haiku parameter tree, its int8 weights.

The official checkpoint is a Haiku tree ``{module_path: {param_name: array}}``. Its matrices are
stored as ``[in, out]`` (``y = x @ W``), the transpose of ``torch.nn.Linear.weight``; the expert
tensors keep their leading expert axis, which :class:`mingrok.moe.MoELayer` keeps too. Attention
and expert matrices are int8 with per-block scales (``QuantizedWeight8bit``), see
:func:`dequantize`. Reference: xai-org/grok-1 ``model.py``, ``checkpoint.py``, ``run.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import GROK1, MinGrokConfig
from .model import MinGrok
from .released import (
    QuantizedWeight8bit,
    iter_checkpoint,
    quantize,
    tensor_specs,
    write_checkpoint,
)

# Defaults of grok-1's TransformerConfig / LanguageModelConfig for fields a config may omit.
_GROK_DEFAULTS = {
    "widening_factor": 4.0,
    "attn_output_multiplier": 1.0,
    "num_experts": -1,
    "num_selected_experts": 1,
    "embedding_multiplier_scale": 1.0,
    "output_multiplier_scale": 1.0,
    "sequence_len": 8192,
}
_GROK_ROPE_BASE = 10000.0  # hard-coded in grok-1's RotaryEmbedding
_GROK_RMS_EPS = 1e-5  # grok-1's RMSNorm default


def config_from_grok1(lm: Mapping[str, Any], model: Mapping[str, Any]) -> MinGrokConfig:
    """A MinGrokConfig from grok-1's ``LanguageModelConfig`` (lm) and ``TransformerConfig`` (model)
    field names, with grok-1's defaults for omitted fields."""

    def get(source: Mapping[str, Any], name: str) -> Any:
        if name in source:
            return source[name]
        if name in _GROK_DEFAULTS:
            return _GROK_DEFAULTS[name]
        raise ValueError(f"grok-1 config is missing the required field {name!r}")

    key_size = get(model, "key_size")
    value_size = model.get("value_size") or key_size
    if value_size != key_size:
        raise ValueError(
            f"grok-1 config value_size={value_size!r} differs from key_size={key_size!r}; "
            "minGrok (like every released Grok-1) needs value_size == key_size"
        )
    num_experts = get(model, "num_experts")
    if num_experts < 1:
        raise ValueError(
            f"grok-1 config num_experts={num_experts!r}: a dense (non-MoE) grok-1 transformer "
            "is not supported; it must be >= 1"
        )
    vocab_size = lm.get("vocab_size", model.get("vocab_size"))
    if vocab_size is None:
        raise ValueError("grok-1 config is missing the required field 'vocab_size'")
    return MinGrokConfig(
        vocab_size=vocab_size,
        d_model=get(model, "emb_size"),
        num_layers=get(model, "num_layers"),
        num_q_heads=get(model, "num_q_heads"),
        num_kv_heads=get(model, "num_kv_heads"),
        head_dim=key_size,
        widening_factor=float(get(model, "widening_factor")),
        num_experts=num_experts,
        num_experts_per_token=get(model, "num_selected_experts"),
        max_seq_len=get(lm, "sequence_len"),
        rope_base=_GROK_ROPE_BASE,
        rms_norm_eps=_GROK_RMS_EPS,
        attn_logit_multiplier=float(get(model, "attn_output_multiplier")),
        attn_logit_softcap=30.0,
        embedding_multiplier=float(get(lm, "embedding_multiplier_scale")),
        output_multiplier=float(get(lm, "output_multiplier_scale")),
    )


def dequantize(weight: Any, scales: Any) -> torch.Tensor:
    """Grok-1's int8 weight × scales → float32, with the scales grouped along the input axis.

        W[..., i, n] = q[..., i, n] · s[..., ⌊i / (K/G)⌋, n]       q: [..., K, N], s: [..., G, N]

    G = 1 gives one scale per output column; G = 8 matches an input axis sharded 8 ways (e.g.
    ``moe/linear_1`` has scales [8, 8, 6144] for weights [8, 32768, 6144]). The product is taken
    in float32; xAI's code rounds it to bfloat16 (:meth:`mingrok.released.QuantizedWeight8bit.
    dequantize`, what loading a released checkpoint uses).
    """
    q = torch.as_tensor(np.asarray(weight) if not isinstance(weight, torch.Tensor) else weight)
    s = torch.as_tensor(np.asarray(scales) if not isinstance(scales, torch.Tensor) else scales)
    if q.dim() < 2 or s.dim() != q.dim():
        raise ValueError(
            f"dequantize needs weight [..., K, N] and scales [..., G, N] of the same rank; got "
            f"weight {tuple(q.shape)} and scales {tuple(s.shape)}"
        )
    *lead, k, n = q.shape
    groups = s.shape[-2]
    if s.shape[-1] != n or k % groups or list(s.shape[:-2]) not in (list(lead), [1] * len(lead)):
        raise ValueError(
            f"scales {tuple(s.shape)} do not fit weight {tuple(q.shape)}: expected [..., G, {n}] "
            f"with G dividing {k}"
        )
    grouped = q.float().reshape(*lead, groups, k // groups, n)
    return (grouped * s.float().unsqueeze(-2)).reshape(*lead, k, n)


def flatten_haiku_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``{module: {name: array}}`` (Haiku) or an already flat ``{"module/name": array}`` dict →
    flat; quantized weights (objects with ``.weight`` and ``.scales``) are dequantized."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            for name, array in value.items():
                flat[f"{key}/{name}"] = array
        else:
            flat[key] = value
    for key, value in flat.items():
        if isinstance(value, QuantizedWeight8bit):  # read from a released file: xAI's rounding
            flat[key] = value.dequantize()
        elif hasattr(value, "weight") and hasattr(value, "scales"):
            flat[key] = dequantize(value.weight, value.scales)
    return flat


def haiku_to_torch_names(config: MinGrokConfig) -> dict[str, tuple[str, bool]]:
    """Haiku path → (state_dict name, whether to transpose [in, out] → [out, in])."""
    names = {
        "language_model/in_out_embed/embeddings": ("embed.weight", False),
        "language_model/rms_norm/scale": ("final_norm.scale", False),
    }
    for i in range(config.num_layers):
        haiku, torch_ = f"transformer/decoder_layer_{i}", f"layers.{i}"
        names.update(
            {
                f"{haiku}/rms_norm/scale": (f"{torch_}.pre_attention_norm.scale", False),
                f"{haiku}/rms_norm_1/scale": (f"{torch_}.post_attention_norm.scale", False),
                f"{haiku}/rms_norm_2/scale": (f"{torch_}.pre_moe_norm.scale", False),
                f"{haiku}/rms_norm_3/scale": (f"{torch_}.post_moe_norm.scale", False),
                f"{haiku}/multi_head_attention/query/w": (f"{torch_}.attention.query.weight", True),
                f"{haiku}/multi_head_attention/key/w": (f"{torch_}.attention.key.weight", True),
                f"{haiku}/multi_head_attention/value/w": (f"{torch_}.attention.value.weight", True),
                f"{haiku}/multi_head_attention/linear/w": (f"{torch_}.attention.out.weight", True),
                f"{haiku}/router/w": (f"{torch_}.moe.router.linear.weight", True),
                f"{haiku}/moe/linear/w": (f"{torch_}.moe.w_gate", False),
                f"{haiku}/moe/linear_v/w": (f"{torch_}.moe.w_value", False),
                f"{haiku}/moe/linear_1/w": (f"{torch_}.moe.w_out", False),
            }
        )
    return names


def from_haiku_params(params: Mapping[str, Any], config: MinGrokConfig) -> MinGrok:
    """A float32 MinGrok holding grok-1's parameters (flat or nested Haiku dict, [in, out]).

    Every expected key must be present with its exact shape, and nothing else may be: a
    missing, unexpected or mis-shaped key raises ``KeyError``/``ValueError`` naming it.
    """
    flat = flatten_haiku_params(params)
    names = haiku_to_torch_names(config)
    missing = sorted(set(names) - set(flat))
    if missing:
        raise KeyError(
            f"grok-1 parameters are missing {len(missing)} key(s), first: {missing[0]!r}"
        )
    unexpected = sorted(set(flat) - set(names))
    if unexpected:
        raise KeyError(
            f"unexpected grok-1 parameter key(s) for a {config.num_layers}-layer config, first: "
            f"{unexpected[0]!r}"
        )
    model = MinGrok(config)
    target = model.state_dict()
    state = {}
    for haiku_name, (torch_name, transpose) in names.items():
        value = torch.as_tensor(np.asarray(flat[haiku_name], dtype=np.float32))
        expected = tuple(target[torch_name].shape)
        expected_haiku = expected[::-1] if transpose else expected
        if tuple(value.shape) != expected_haiku:
            raise ValueError(
                f"grok-1 parameter {haiku_name!r} has shape {tuple(value.shape)}; the config "
                f"needs {expected_haiku}"
            )
        state[torch_name] = value.t() if transpose else value
    model.load_state_dict(state)
    return model.eval()


def grok1_fields(config: MinGrokConfig) -> dict[str, dict[str, Any]]:
    """The inverse of :func:`config_from_grok1`: ``{"lm": ..., "model": ...}`` in grok-1's field
    names (what ``--grok1-config`` reads), for a config grok-1's classes can express."""
    fixed = {
        "rope_base": _GROK_ROPE_BASE,
        "rms_norm_eps": _GROK_RMS_EPS,
        "attn_logit_softcap": 30.0,
        "router_noise": "none",
        "renormalize_gates": False,
    }
    for name, value in fixed.items():
        if getattr(config, name) != value:
            raise ValueError(
                f"MinGrokConfig.{name}={getattr(config, name)!r} has no grok-1 config field: "
                f"grok-1's code fixes it at {value!r}"
            )
    model = {
        "emb_size": config.d_model,
        "key_size": config.head_dim,
        "num_q_heads": config.num_q_heads,
        "num_kv_heads": config.num_kv_heads,
        "num_layers": config.num_layers,
        "widening_factor": config.widening_factor,
        "attn_output_multiplier": config.attn_scale,
        "num_experts": config.num_experts,
        "num_selected_experts": config.num_experts_per_token,
    }
    lm = {
        "vocab_size": config.vocab_size,
        "sequence_len": config.max_seq_len,
        "embedding_multiplier_scale": config.embedding_scale,
        "output_multiplier_scale": config.output_multiplier,
    }
    if config_from_grok1(lm, model).ffn_dim != config.ffn_dim:
        raise ValueError(
            f"MinGrokConfig.ffn_size={config.ffn_size!r} is not grok-1's rule for "
            f"widening_factor={config.widening_factor!r} (ffn {config.ffn_dim}); grok-1's config "
            "has no ffn_size field"
        )
    return {"lm": lm, "model": model}


LOAD_DTYPES = (torch.float32, torch.bfloat16)


def load_checkpoint(
    path: str | Path,
    config: MinGrokConfig = GROK1,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> MinGrok:
    """A MinGrok holding a released-format checkpoint (``path``: the folder holding ``ckpt-0/``,
    or ``ckpt-0/`` itself), as xAI's code computes with it.

    The model is laid out on the meta device first, and nothing is allocated before the folder
    holds the files ``config`` needs with the shapes it needs, each file's header read without
    its arrays (:func:`mingrok.released.iter_checkpoint`; nothing a file names is run). A
    quantised weight becomes ``bf16(q · s)`` as in xAI's ``Linear``; ``dtype`` float32 computes
    in float32 (``config.replace(moe_bf16_casts=True)`` for the casts xAI's MoE makes even
    then), bfloat16 is production's precision (norm scales and router stay float32,
    :mod:`mingrok.precision`).
    """
    if dtype not in LOAD_DTYPES:
        raise ValueError(f"dtype={dtype!r} is invalid: it must be one of {LOAD_DTYPES}")
    device = torch.device(device if device is not None else "cpu")
    names = haiku_to_torch_names(config)
    with torch.device("meta"):
        model = MinGrok(config).to(dtype)  # each parameter's dtype under the model's own rules
    target = model.state_dict()
    state = {}
    for haiku_name, value in iter_checkpoint(path, config):
        torch_name, transpose = names[haiku_name]
        wanted = target[torch_name].dtype
        if isinstance(value, QuantizedWeight8bit):
            tensor = value.dequantize(wanted)
        else:
            tensor = torch.from_numpy(value).to(wanted)
        if transpose:
            tensor = tensor.t()
        state[torch_name] = tensor.contiguous().to(device)
    model.load_state_dict(state, assign=True)
    return model.eval()


class _ReleasedParameters(Mapping):
    """A model's parameters as the release stores them, made one at a time when asked for."""

    def __init__(self, model: MinGrok) -> None:
        self.state = model.state_dict()
        self.names = haiku_to_torch_names(model.config)
        self.specs = {spec.name: spec for spec in tensor_specs(model.config)}

    def __getitem__(self, haiku_name: str) -> Any:
        torch_name, transpose = self.names[haiku_name]
        tensor = self.state[torch_name].detach().to("cpu", torch.float32)
        tensor = tensor.t() if transpose else tensor
        groups = self.specs[haiku_name].scale_groups
        return tensor.contiguous().numpy() if groups is None else quantize(tensor, groups)

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)


def save_checkpoint_released(model: MinGrok, path: str | Path) -> Path:
    """Write ``model`` as xAI released Grok-1: ``ckpt-0/tensor{i:05d}_000``, the attention and
    expert matrices int8 with bfloat16 scales per model-axis block
    (:func:`mingrok.released.quantize`), the rest float32. One tensor is converted at a time.
    Returns the ``ckpt-0`` folder; :func:`load_checkpoint` with ``model.config`` reads it back."""
    return write_checkpoint(_ReleasedParameters(model), path)


def input_mask_from_tokens(tokens: torch.Tensor, pad_token: int = 0) -> torch.Tensor:
    """grok-1's padding rule ``tokens > pad_token``. Not for the 128-token minGrok tokenizer,
    where id 0 is the newline."""
    return tokens > pad_token


@dataclass
class Grok1Reference:
    """A reference file produced by xAI's official code: parameters, inputs and outputs."""

    config: MinGrokConfig
    params: dict[str, np.ndarray]
    tokens: torch.Tensor
    input_mask: torch.Tensor
    arrays: Mapping[str, np.ndarray]
    raw_config: dict[str, Any]

    def model(self) -> MinGrok:
        return from_haiku_params(self.params, self.config)


def load_reference(path: str | Path) -> Grok1Reference:
    """Read a reference ``.npz`` (like ``grok1_tiny_a.npz``): parameters are the keys under
    ``language_model/`` and ``transformer/``; ``config_json`` holds grok-1's field names."""
    arrays = np.load(path)
    raw = json.loads(str(arrays["config_json"]))
    params = {
        key: arrays[key]
        for key in arrays.files
        if key.startswith(("language_model/", "transformer/"))
    }
    tokens = torch.as_tensor(arrays["tokens"]).long()
    if "input_mask" in arrays.files:  # as the official code computed it
        input_mask = torch.as_tensor(arrays["input_mask"]).bool()
    else:
        input_mask = input_mask_from_tokens(tokens, raw["lm"].get("pad_token", 0))
    return Grok1Reference(
        config_from_grok1(raw["lm"], raw["model"]), params, tokens, input_mask, arrays, raw
    )
