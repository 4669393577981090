"""Fast one-token decoding: the function of ``MinGrok.forward`` on one new token, in fewer ops.

A cached generation step works on one position, so every matmul is a matrix-vector product and
the eager step's time goes to launching ops (about 1,600 ATen calls as ``torch.profiler`` counts
them, nested ones included, a few µs each) and to reading the expert weights, not to arithmetic.
:class:`FusedDecoder` computes the same step with about 600 such calls, from weights rearranged
once when it is built (the model's parameters and state dict are untouched):

* q, k, v **and the RoPE partners** come from one matmul. ``rotate_half`` is a signed permutation
  of a head's output rows, so it folds into a copy of the weight, and RoPE becomes
  ``q' = q ⊙ cos θ + (x W_rot) ⊙ sin θ``, one multiply and one fused multiply-add, with cos and
  sin read from a table.
* The query comes out in per-group blocks ([H, G·d], zeros outside a head's own KV group), so the
  scores of all heads are one matmul with the cached keys [S, G·d], and the output projection reads
  the same blocks: grouped-query attention without a reshape or a copy. Both products keep the
  short dimension (H) first, [H, G·d] × [G·d, S] and [H, S] × [S, G·d]: on one CPU core BLAS runs
  that orientation 4-5x faster than [S, G·d] × [G·d, H] at these shapes.
* The soft cap costs one sigmoid: c·tanh(z) = 2c·σ(2z) − c, and softmax ignores the constant −c,
  so the probabilities are softmax(2c·σ(q'·k)) with the query rows prescaled to q' = q·2m/c
  (m the attention multiplier). On this kind of CPU a sigmoid is ~3x cheaper than a tanh.
* RMSNorm's scale folds into the matrix that reads the norm, and 1/rms is one dot product; the
  embedding multiplier √D and the output multiplier 1/√3 fold into copies of the tied embedding.
* Each expert's gate and value matrices are concatenated ([D, 2F], one matmul per chosen expert),
  and the k outputs are weighted and summed by one [1, k] × [k, D] product.
* The KV cache is a ring (no shifting once the context is full).
* Post-norm residuals are one fused multiply-add each: h + r·(a ⊙ s), r = 1/rms(a).
* Optionally (``weights="int8"``) the attention and expert matrices are stored as int8 with a
  bfloat16 scale per output column, the released checkpoint's format (:mod:`mingrok.quantize`):
  a step reads a quarter of the bytes, most of its time at batch 1, for a measured cost in quality
  (``benchmarks/bench_generate.py`` prints both). The embedding and the router stay float32.

With float32 weights the arithmetic is the eager path's up to float rounding (the logits agree
within 1e-4, ``tests/test_decode.py``). It covers the case the course generates in: one sequence
(batch 1, nothing padded) of a float32 model in eval mode; :func:`supports` says when, and
:func:`mingrok.generate` takes the eager path otherwise.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from .attention import Attention
from .config import MinGrokConfig
from .kv_cache import KVCache
from .model import MinGrok
from .moe import MoELayer, gelu_tanh
from .quantize import Int8Matrix
from .rope import rope_inverse_frequencies

WEIGHTS = ("float32", "int8")  # how FusedDecoder stores the matrices a step multiplies by

Matrix = Callable[[torch.Tensor], torch.Tensor]  # x [1, K] → x @ W [1, N] (float32 or bfloat16)


def _matrix(weight: torch.Tensor, weights: str) -> Matrix:
    """A weight [K, N] as the product it is read by, in the storage ``weights`` names."""
    if weights == "int8":
        return Int8Matrix.of(weight)
    return partial(torch.mm, mat2=weight.contiguous())


def supports(model: MinGrok, batch_size: int) -> bool:
    """True when :class:`FusedDecoder` computes ``model``'s step: batch 1, float32, eval mode,
    the model's own layers holding whole tensors.

    Batch 1 has no padding to mask; other dtypes keep their own casts (norms and RoPE in float32,
    say), which the eager path owns; training mode has dropout and router noise. A sharded model
    (:mod:`mingrok.parallel` swaps in its own MoE modules and DTensor weights) holds only a rank's
    part of each weight, which the fused weights cannot be built from: its eager step runs.
    """
    weight = model.embed.weight
    # moe_bf16_casts (grok-1's two hard-coded bf16 casts in a float32 model) are the eager MoE's
    casts = model.config.moe_bf16_casts
    own_layers = all(
        type(layer.attention) is Attention and type(layer.moe) is MoELayer for layer in model.layers
    )
    whole = all(type(p) in (torch.Tensor, torch.nn.Parameter) for p in model.parameters())
    plain = own_layers and whole
    return (
        batch_size == 1
        and weight.dtype == torch.float32
        and not model.training
        and not casts
        and plain
    )


def _rotate_half_rows(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rows [H·d, D] of a projection → the rows whose outputs are rotate_half of its outputs.

    rotate_half maps each head's [x1, x2] to [−x2, x1]; on the rows producing them, that is the
    same swap with a sign.
    """
    heads = weight.view(num_heads, -1, weight.shape[-1])
    first, second = heads.chunk(2, dim=1)
    return torch.cat((-second, first), dim=1).reshape_as(weight)


def _per_group_blocks(rows: torch.Tensor, config: MinGrokConfig) -> torch.Tensor:
    """Rows [H·d, C] indexed (head n, dim i) → rows [H·G·d, C] indexed (head n, group g, dim i):
    row n·d+i where g is n's KV group (g = n // (H/G)), zero elsewhere.

    A query laid out so, viewed [H, G·d], multiplies the cached keys [S, G·d] in one matmul:
    (Q Kᵀ)[n, s] = Σ_i q[n, i] K[s, g(n), i], each head reading only its own group's keys.
    """
    heads, kv_heads, head_dim = config.num_q_heads, config.num_kv_heads, config.head_dim
    blocks = rows.new_zeros(heads, kv_heads, head_dim, rows.shape[-1])
    per_head = rows.view(heads, head_dim, -1)
    for head in range(heads):
        blocks[head, head // config.queries_per_kv_head] = per_head[head]
    return blocks.reshape(-1, rows.shape[-1])


@dataclass(frozen=True)
class _LayerWeights:
    """One decoder layer's weights, rearranged for a one-token step (see the module docstring).

    Each matrix is stored [inputs, outputs] (x @ W, the fast layout for one row), and a pre-norm's
    scale s is folded into the rows of the matrices that read it: (x/r ⊙ s) W = (x/r)(diag(s) W).
    """

    qkv_rot: Matrix  # [D, 2R + G·d], R = H·G·d + G·d: (q·2m/c in blocks, k), rotated, v
    out: Matrix  # [H·G·d, D]: attention's output projection in the same blocks
    post_attention: torch.Tensor  # [D]: post-norm scale
    router: torch.Tensor  # [D, E]
    gate_value: list[Matrix]  # per expert x ↦ x [W_e | V_e] ([D, 2F])
    expert_out: list[Matrix]  # per expert x ↦ x U_e ([F, D])
    post_moe: torch.Tensor  # [D]

    @classmethod
    def of(cls, layer, config: MinGrokConfig, weights: str) -> _LayerWeights:
        attention, moe = layer.attention, layer.moe
        query = attention.query.weight * (2 * config.attn_scale / config.attn_logit_softcap)
        key = attention.key.weight
        qkv_rot = torch.cat(
            [
                _per_group_blocks(query, config),
                key,
                _per_group_blocks(_rotate_half_rows(query, config.num_q_heads), config),
                _rotate_half_rows(key, config.num_kv_heads),
                attention.value.weight,
            ]
        )
        pre_moe = layer.pre_moe_norm.scale[:, None]
        return cls(
            qkv_rot=_matrix((qkv_rot * layer.pre_attention_norm.scale).t(), weights),
            out=_matrix(_per_group_blocks(attention.out.weight.t(), config), weights),
            post_attention=layer.post_attention_norm.scale.clone(),
            router=moe.router.linear.weight.t() * pre_moe,
            gate_value=[
                _matrix(torch.cat([gate, value], dim=1) * pre_moe, weights)
                for gate, value in zip(moe.w_gate, moe.w_value, strict=True)
            ],
            expert_out=[_matrix(w.clone(), weights) for w in moe.w_out],
            post_moe=layer.post_moe_norm.scale.clone(),
        )


@dataclass(frozen=True)
class _ModelWeights:
    """A model's weights rearranged for the step, and the parameter stamp they were built from."""

    stamp: tuple[tuple[int, int], ...]
    embed_in: torch.Tensor  # [V, D]: the embedding × √D
    embed_out: torch.Tensor  # [D, V]: the tied embedding × output multiplier × final norm scale
    layers: list[_LayerWeights]

    @classmethod
    def of(cls, model: MinGrok, weights: str) -> _ModelWeights:
        config = model.config
        with torch.no_grad():
            embed = model.embed.weight
            scaled_out = embed * config.output_multiplier * model.final_norm.scale
            return cls(
                stamp=_parameter_stamp(model),
                embed_in=embed * config.embedding_scale,
                embed_out=scaled_out.t().contiguous(),
                layers=[_LayerWeights.of(layer, config, weights) for layer in model.layers],
            )


_BUILT: weakref.WeakKeyDictionary[MinGrok, dict[str, _ModelWeights]] = weakref.WeakKeyDictionary()


def _parameter_stamp(model: MinGrok) -> tuple[tuple[int, int], ...]:
    """Each parameter's storage address and in-place version counter: an optimizer step,
    ``load_state_dict`` or any in-place write bumps the counter, a new tensor moves the address."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def _model_weights(model: MinGrok, weights: str) -> _ModelWeights:
    """``model``'s rearranged weights, rebuilt only when a parameter changed since the last build.

    ``generate`` builds a decoder per call; rearranging (and, for int8, quantising) every matrix
    takes ~25 ms, about 5% of a 500-token generation, so the result is kept while the model
    lives and its parameters stay as they were.
    """
    built = _BUILT.setdefault(model, {})
    if weights not in built or built[weights].stamp != _parameter_stamp(model):
        built[weights] = _ModelWeights.of(model, weights)
    return built[weights]


def _inverse_rms(x: torch.Tensor, eps: float) -> float:
    """1/√(mean(x²) + ε) of a row x [1, D], as a number: one dot product, the rest in Python
    (F.rms_norm costs ~20 µs on a row this small; this, ~4)."""
    flat = x.view(-1)
    return 1 / math.sqrt(float(torch.dot(flat, flat)) / flat.numel() + eps)


class _RopeTable:
    """cos and sin of position · θ_i for every rotated value of the fused projection, per
    position: (n, g, i) of the query blocks and (g, i) of the keys read θ_i (i < d/2) or θ_{i−d/2},
    the split-half pairing of :func:`mingrok.rope.apply_rope`. Computed for a block of positions
    at once, extended when generation goes past it."""

    def __init__(self, config: MinGrokConfig, device: torch.device) -> None:
        inverse = rope_inverse_frequencies(config.head_dim, config.rope_base, device=device)
        inverse = torch.cat([inverse, inverse])  # [d]
        groups, heads = config.num_kv_heads, config.num_q_heads
        query = inverse.expand(heads, groups, -1).reshape(-1)
        self.inverse_frequencies = torch.cat([query, inverse.repeat(groups)])
        self.cos = self.sin = self.inverse_frequencies[None, :0]
        self.block = config.max_seq_len

    def at(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        if position >= len(self.cos):
            size = (position // self.block + 1) * self.block
            positions = torch.arange(size, device=self.cos.device, dtype=torch.float32)
            phase = positions[:, None] * self.inverse_frequencies
            self.cos, self.sin = torch.cos(phase), torch.sin(phase)
        return self.cos.select(0, position), self.sin.select(0, position)


class FusedDecoder:
    """One sequence's generation state: a ring-buffer KV cache and the rearranged weights.

    ``prefill(tokens)`` runs the prompt through the model itself (one pass, :class:`KVCache`) and
    keeps its keys and values; each ``step(token)`` then gives the logits [1, V] that
    ``model(token[:, None], cache=cache)`` gives, and remembers the token's key and value.

    The cache is a ring: past ``capacity`` tokens, the new key overwrites the oldest one. The
    eager :class:`KVCache` shifts every key down instead; softmax does not care where a key sits,
    and RoPE has already written its position into it, so both attend to the same keys.

    Built from a float32 MinGrok in eval mode (:func:`supports`); reads the weights as they are
    when built (a decoder built after training further reads the new ones). ``weights`` is one of
    :data:`WEIGHTS`: "int8" stores the attention and expert matrices quantised
    (:mod:`mingrok.quantize`), which needs d_model, H·G·d_h and the FFN width to be multiples of 16.
    """

    def __init__(
        self, model: MinGrok, capacity: int | None = None, weights: str = "float32"
    ) -> None:
        if not supports(model, 1):
            raise ValueError(
                "FusedDecoder needs a float32 MinGrok in eval mode; got dtype "
                f"{model.embed.weight.dtype}, training={model.training}"
            )
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {weights!r}")
        config = model.config
        self.model, self.config = model, config
        self.capacity = capacity or config.max_seq_len
        prepared = _model_weights(model, weights)
        self.embed_in, self.embed_out = prepared.embed_in, prepared.embed_out
        self.layers = prepared.layers
        embed = model.embed.weight
        self.rope = _RopeTable(config, embed.device)
        width = config.num_kv_heads * config.head_dim
        self.keys = embed.new_zeros(config.num_layers, width, self.capacity)  # rotated, transposed
        self.values = embed.new_zeros(config.num_layers, self.capacity, width)
        # each layer's weights and views of its cache, split once rather than at every step
        self._per_layer = list(zip(self.layers, self.keys, self.values, strict=True))
        self.position = 0  # absolute position of the next token
        self.filled = 0  # slots in use

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [1, T] (the prompt, T ≤ capacity) → logits [1, V] of its last position."""
        length = tokens.shape[1]
        cache = KVCache.for_model(self.model, 1, self.capacity)
        logits = self.model(tokens, cache=cache).logits[:, -1]
        for layer in range(self.config.num_layers):
            self.keys[layer, :, :length] = cache.keys[layer][0, :length].flatten(1).t()
            self.values[layer, :length] = cache.values[layer][0, :length].flatten(1)
        self.position = self.filled = length
        return logits

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token [1] (int) at the next position → logits [1, V] float32.

        Inference mode, not just no_grad: without version counters and autograd bookkeeping each
        of the step's ~550 small ops costs less (the step measured ~1.14x faster). The logits are
        an inference tensor: read them freely, but do not modify them in place."""
        eps = self.config.rms_norm_eps
        cos, sin = self.rope.at(self.position)
        slot = self.position % self.capacity
        self.filled = min(self.filled + 1, self.capacity)
        h = F.embedding(token, self.embed_in)  # [1, D]
        for layer, keys, values in self._per_layer:
            normed = h * _inverse_rms(h, eps)
            attended = self._attention(normed, layer, cos, sin, keys, values, slot)
            h = torch.addcmul(h, attended, layer.post_attention, value=_inverse_rms(attended, eps))
            moe_out = self._moe(h * _inverse_rms(h, eps), layer)
            h = torch.addcmul(h, moe_out, layer.post_moe, value=_inverse_rms(moe_out, eps))
        self.position += 1
        return torch.mm(h * _inverse_rms(h, eps), self.embed_out)

    def _attention(self, x, weights: _LayerWeights, cos, sin, keys, values, slot: int):
        """x [1, D] normalised (scale folded) → attention output [1, D]; stores k, v at
        ``slot`` of this layer's ring ``keys`` [G·d, capacity] (stored transposed, the layout the
        scores' matmul reads) and ``values`` [capacity, G·d]."""
        config = self.config
        query_width = config.num_kv_heads * config.head_dim * config.num_q_heads
        rotated_width = len(cos)
        # (tensor methods rather than indexing syntax below: at this size, parsing an index costs
        # more than the op it makes)
        projected = weights.qkv_rot(x).float().view(-1)
        plain, partner, value = projected.split([rotated_width, rotated_width, values.shape[1]])
        rotated = torch.addcmul(plain * cos, partner, sin)  # RoPE: x cos θ + rotate_half(x) sin θ
        keys.select(1, slot).copy_(rotated.narrow(0, query_width, values.shape[1]))
        values.select(0, slot).copy_(value)
        if self.filled < self.capacity:
            keys, values = keys.narrow(1, 0, self.filled), values.narrow(0, 0, self.filled)
        query = rotated.narrow(0, 0, query_width).view(config.num_q_heads, values.shape[1])
        logits = torch.mm(query, keys)  # [H, S], already × 2m/c
        probs = torch.softmax(torch.sigmoid(logits).mul_(2 * config.attn_logit_softcap), dim=-1)
        out = torch.mm(probs, values)  # [H, G·d]: head n's output in its group's columns
        return weights.out(out.view(1, -1)).float()

    def _moe(self, x, weights: _LayerWeights) -> torch.Tensor:
        """x [1, D] normalised (scale folded) → Σ_j g_j · FFN_{e_j}(x) [1, D].

        The GeGLU runs in the dtype the expert matrices give (bfloat16 for int8 weights, which
        saves converting each product back and forth); the gated sum is float32."""
        config = self.config
        probs = torch.softmax(torch.mm(x, weights.router), dim=-1)
        gates, experts = probs.topk(config.num_experts_per_token, dim=-1)
        if config.renormalize_gates:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        ffn = config.ffn_dim
        outputs = []
        for expert in experts.tolist()[0]:
            gate_value = weights.gate_value[expert](x)
            hidden = gelu_tanh(gate_value.narrow(1, 0, ffn)) * gate_value.narrow(1, ffn, ffn)
            outputs.append(weights.expert_out[expert](hidden))
        return torch.mm(gates, torch.cat(outputs).float())


@torch.no_grad()
def teacher_forced_nats_per_char(
    decoder: FusedDecoder, ids: torch.Tensor, char_lengths: torch.Tensor
) -> float:
    """Mean −log p(next token) over ``ids[1:]`` [T], fed one at a time through ``decoder`` (a fresh
    one: the cache slides past the context), per character of those tokens: how well a decoding
    step predicts, to compare float32 and int8 weights."""
    logits = decoder.prefill(ids[None, :1])
    nats = 0.0
    for index in range(1, len(ids)):
        nats -= float(torch.log_softmax(logits[0], dim=-1)[ids[index]])
        logits = decoder.step(ids[index : index + 1])
    return nats / float(char_lengths[ids[1:]].sum())
