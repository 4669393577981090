"""Grok-1's mixed precision: what stays float32 when the model computes in bfloat16.

Grok-1 runs with ``fprop_dtype=bfloat16`` (``runners.py``), but its parameters are declared
float32 and only cast where they are used. Most casts round a weight to bfloat16 before a matmul,
which is what a bfloat16 copy of the weight gives, so ``model.to(torch.bfloat16)`` reproduces
them. Two kinds of parameter are never rounded, and a plain ``.to(torch.bfloat16)`` would round
them:

* the RMSNorm scales: the norm computes ``scale ⊙ x / √(mean(x²) + ε)`` in float32 and rounds
  once, at the end;
* the router matrix: router logits and softmax are float32 throughout (``Router._router_weights``
  casts ``w`` to the float32 dtype of its input).

:class:`Float32Parameters` keeps such a module's parameters float32 under any cast to a narrower
float, while they still follow device moves and casts to wider floats (``.double()``).

Scalar multipliers round too. JAX multiplies a bfloat16 array by a Python float in bfloat16: the
float is weakly typed and becomes bfloat16 first, so ``x · (1/√3)`` is ``x · 0.578125``.
:func:`multiplier_in` gives the multiplier as the activation dtype holds it; in float32 that is the
float32 rounding PyTorch applies anyway, so float32 results do not change. (The MoE's own casts,
gates rounded to bfloat16 and experts finished in float32, are in :mod:`mingrok.moe`.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn


class Float32Parameters(nn.Module):
    """A module whose parameters (its children's too) stay float32 when cast to bf16 or fp16."""

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True):
        def keep_float32(tensor: torch.Tensor) -> torch.Tensor:
            converted = fn(tensor)
            narrowed = converted.is_floating_point() and converted.element_size() < 4
            if tensor.dtype == torch.float32 and narrowed:
                return tensor.to(device=converted.device)  # follow the move, not the cast
            return converted

        return super()._apply(keep_float32, recurse)


@functools.lru_cache(maxsize=64)
def multiplier_in(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to the significand of ``dtype`` (half to even), as JAX rounds a
    weak-typed scalar: multiplier_in(1/√3, torch.bfloat16) = 0.578125.

        value = m · 2^e, ½ ≤ m < 1   →   round(m · 2^p) · 2^(e−p),   p = 1 − log₂ eps(dtype)

    (p = 8 for bfloat16, 24 for float32.) Plain Python, so a compiled forward folds it into a
    constant; multipliers are normal numbers, so subnormals need no care.
    """
    significand_bits = 1 - round(math.log2(torch.finfo(dtype).eps))
    mantissa, exponent = math.frexp(value)
    return math.ldexp(round(mantissa * 2**significand_bits), exponent - significand_bits)
