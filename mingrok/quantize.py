"""Weight-only int8 for decoding: int8 values and one bfloat16 scale per output column.

This is the released Grok-1 checkpoint's format (:func:`mingrok.grok1.dequantize`) with a single
block along the input axis (G = 1):

    W[i, n] ≈ q[i, n] · s[n],   s[n] = max_i |W[i, n]| / 127,   q = round(W / s) ∈ [−127, 127]

A batch-1 decoding step reads every weight of the experts it routes to once per token, so its
time is the bytes it reads: int8 values are a quarter of float32's. The product runs on PyTorch's
int8 weight-only kernel (``torch._weight_int8pack_mm``, the one torchao's int8 weight-only
quantisation uses), which multiplies bfloat16 activations: the input row is rounded to bfloat16
(8 significant bits) and the result comes back in bfloat16. That kernel returns wrong numbers,
silently, when the input width is not a multiple of 16, so :class:`Int8Matrix` refuses such
weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .grok1 import dequantize
from .released import quantize

INPUT_MULTIPLE = 16  # the int8 kernel's input width must be a multiple of this


@dataclass(frozen=True)
class Int8Matrix:
    """A weight W [K, N] (read as x @ W) stored as int8 rows ``values`` [N, K] (the kernel's
    layout: one row per output) and bfloat16 ``scales`` [N]."""

    values: torch.Tensor
    scales: torch.Tensor

    @classmethod
    def of(cls, weight: torch.Tensor) -> Int8Matrix:
        """Quantise a float weight [K, N], one scale per output column (an all-zero column gets
        scale 1 and stays zero)."""
        if weight.dim() != 2 or weight.shape[0] % INPUT_MULTIPLE:
            raise ValueError(
                f"int8 weights need a matrix [K, N] with K a multiple of {INPUT_MULTIPLE} "
                f"(the int8 kernel's input width); got shape {tuple(weight.shape)}"
            )
        released = quantize(weight, groups=1)  # the release's rule, one block: q [K, N], s [1, N]
        return cls(released.weight.t().contiguous(), released.scales[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, K] → x @ W [M, N] in bfloat16 (x is rounded to bfloat16 first)."""
        return torch._weight_int8pack_mm(x.bfloat16(), self.values, self.scales)

    def dequantized(self) -> torch.Tensor:
        """The float32 weight [K, N] these int8 values and scales stand for."""
        return dequantize(self.values.t(), self.scales[None])
