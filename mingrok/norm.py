"""RMSNorm as Grok-1 computes it: in float32, multiplied by a learned scale (not 1 + scale).

    y = scale ⊙ x / √(mean(x²) + ε)

Grok-1 uses four of these per decoder layer ("sandwich" norms) plus one before the unembedding.
Reference: Zhang & Sennrich (2019); xai-org/grok-1 ``model.py`` class ``RMSNorm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last axis, computed in float32 and cast back."""

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
