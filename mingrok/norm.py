"""RMSNorm as Grok-1 computes it: in float32, multiplied by a learned scale (not 1 + scale).

    y = scale ⊙ x / √(mean(x²) + ε)

Grok-1 uses four of these per decoder layer ("sandwich" norms) plus one before the unembedding.
Reference: Zhang & Sennrich (2019); xai-org/grok-1 ``model.py`` class ``RMSNorm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import Float32Parameters


class RMSNorm(Float32Parameters):
    """Root-mean-square norm over the last axis, computed in float32 and cast back.

    The scale stays float32 when the model is cast to bfloat16, as in Grok-1, so the output is
    rounded once, at the end."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """scale = 1, so the norm starts as a pure normalisation. (Grok-1's code initialises it
        with a zero placeholder; its checkpoint supplies the values.)"""
        nn.init.ones_(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.rms_norm is exactly scale ⊙ x · rsqrt(mean(x²) + ε), in one fused op.
        y = F.rms_norm(x.float(), self.scale.shape, self.scale.float(), self.eps)
        return y.to(x.dtype)
