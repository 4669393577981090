"""The key/value memory that lets generation feed one new token per step.

Grok-1 (``runners.py``, ``KVMemory``) keeps, per layer, the already-rotated keys and the values of
every earlier position, writes the T new ones at offset ``step`` and advances ``step`` by T. Keys
are stored *after* RoPE, so the cache never has to re-rotate anything, and new queries simply use
positions ``step .. step+T-1``.

This cache holds the same tensors for all layers plus a key-padding mask (left-padded batches
keep their padding masked for the whole generation). All rows share one ``length``: batches with
prompts of different lengths are left-padded, so every row writes at the same offset.

One forward pass is one step of the cache, and the cache owns its bookkeeping: ``start_step``
makes room and says where the new tokens sit, every layer calls ``write`` with its keys and values
(stored at that offset), and ``advance`` ends the step.

When the cache is full, the oldest positions drop out (a sliding window over the last
``capacity`` tokens). RoPE depends only on relative positions, so absolute positions may grow
past the capacity.
"""

from __future__ import annotations

import torch

from .config import is_whole_number


class KVCache:
    """Per-layer keys/values [B, capacity, G, d] and the key mask [B, capacity]."""

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        capacity: int,
        num_kv_heads: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if not is_whole_number(capacity):
            raise ValueError(f"KVCache capacity={capacity!r} is invalid: it must be >= 1")
        shape = (batch_size, capacity, num_kv_heads, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.key_mask = torch.zeros(batch_size, capacity, dtype=torch.bool, device=device)
        self.capacity = capacity
        self.length = 0  # filled slots (the same for every row)
        self.position = 0  # absolute position of the next token (RoPE offset)

    @classmethod
    def for_model(cls, model: torch.nn.Module, batch_size: int, capacity: int | None = None):
        """A cache shaped for ``model`` (a :class:`mingrok.MinGrok`), on its device and dtype."""
        config = model.config
        weight = model.embed.weight
        return cls(
            config.num_layers,
            batch_size,
            capacity or config.max_seq_len,
            config.num_kv_heads,
            config.head_dim,
            dtype=weight.dtype,
            device=weight.device,
        )

    def start_step(self, input_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Make room for the new tokens (input_mask [B, T]); their RoPE positions [T] and key mask.

        The positions continue the sequence (``position .. position+T-1``); the key mask [B, S]
        covers the S = length + T keys the new queries read, cached ones first.
        """
        num_new = input_mask.shape[1]
        self.make_room(num_new, input_mask)
        positions = torch.arange(self.position, self.position + num_new, device=input_mask.device)
        return positions, self.key_mask[:, : self.length + num_new]

    def make_room(self, num_new: int, input_mask: torch.Tensor) -> None:
        """Drop the oldest positions so that ``num_new`` more fit, and record their key mask."""
        if num_new > self.capacity:
            raise ValueError(
                f"cannot write {num_new} tokens into a KV cache of capacity {self.capacity}; "
                "feed at most `capacity` tokens per call"
            )
        overflow = self.length + num_new - self.capacity
        if overflow > 0:
            keep = self.length - overflow
            for tensors in (self.keys, self.values):
                for layer_tensor in tensors:
                    layer_tensor[:, :keep] = layer_tensor[:, overflow : self.length].clone()
            self.key_mask[:, :keep] = self.key_mask[:, overflow : self.length].clone()
            self.length = keep
        self.key_mask[:, self.length : self.length + num_new] = input_mask

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor):
        """Store this layer's new rotated keys and values; return all valid ones [B, S, G, d]."""
        end = self.length + keys.shape[1]
        self.keys[layer][:, self.length : end] = keys
        self.values[layer][:, self.length : end] = values
        return self.keys[layer][:, :end], self.values[layer][:, :end]

    def advance(self, num_new: int) -> None:
        """End the step: called once per forward pass, after every layer has written."""
        self.length += num_new
        self.position += num_new
