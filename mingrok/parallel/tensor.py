"""Tensor parallelism: every rank holds a slice of each layer's matrices and all the tokens.

Megatron-LM's scheme (Shoeybi et al. 2019), written with PyTorch's own plans
(:func:`torch.distributed.tensor.parallel.parallelize_module`). Per layer, with R ranks:

* **Attention.** ``query``, ``key`` and ``value`` are split column-wise (``ColwiseParallel``: rank
  r keeps output rows r·n/R … of each weight), so rank r computes H/R query heads and G/R KV
  heads end to end, RoPE and softmax included, with no communication. Because heads
  g·(H/G) … g·(H/G)+H/G−1 read KV head g, the first H/R query heads are exactly the ones that read
  the first G/R KV heads: a rank owns whole KV groups when R divides G. ``out`` is split
  row-wise (``RowwiseParallel``): each rank multiplies its heads' outputs by its rows of W_o and
  one all-reduce sums the R partial outputs.
  With more ranks than KV heads (Grok-1's G = 8 on R = 16 ranks; the course's G = 2 on 4), a KV
  head cannot be split: it is *replicated* on the R/G ranks whose query heads read it (R a
  multiple of G dividing H), each keeping that head's rows of W_k and W_v and computing the same
  K and V, the duplicated work Megatron-LM also accepts. Those copies' weight gradients are then
  per-rank parts (each rank's query heads' share), to be summed over the R/G ranks sharing them.
* **Experts.** Each expert's GeGLU is split along its hidden width F: ``w_gate`` and ``w_value``
  column-wise, ``w_out`` row-wise, so gelu(x W)⊙(x V) stays local and one all-reduce per layer
  sums the partial outputs (R must divide F). Every rank runs every expert on its slice.
* **Router: replicated.** Every rank computes the same logits from the same (all-reduced) input
  with the same float32 weights, so routing is identical on every rank without communication;
  a sharded router would need an all-gather before top-k.
* **Embedding and unembedding: split along D**, as xAI shards Grok-1's tied 131072 × 6144 table
  (1.6 GB in bf16). Rank r keeps columns r·D/R … of E. The lookup gives each rank [B, T, D/R],
  all-gathered to [B, T, D]; the unembedding multiplies the rank's D/R slice of the normed
  hidden state by its slice of E, logits = Σ_r h_r E_rᵀ, one all-reduce of [B, T, V] partials
  (:class:`TensorParallelEmbedding`). R must divide D.
* **Norms: replicated**, they act on whole hidden vectors that every rank holds.

Per layer the forward pass costs two all-reduces of [B, T, D] activations (attention and MoE);
the embedding adds one all-gather of [B, T, D] and one all-reduce of [B, T, V] logits.
The rank's modules see the config of their slice (H/R, G/R heads, F/R hidden), so a KV cache
made by ``KVCache.for_model`` holds only the rank's KV heads.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

from ..config import MinGrokConfig
from ..model import MinGrok, TiedEmbedding
from ..moe import MoELayer, MoEOutput, sparse_moe
from .layouts import all_rows, rows_of_this_rank, sum_gradients, sum_partials

ATTENTION_PLAN = {
    "query": ColwiseParallel(),
    "key": ColwiseParallel(),
    "value": ColwiseParallel(),
    "out": RowwiseParallel(),
}


def check_tensor_parallel(config: MinGrokConfig, world_size: int) -> None:
    """A clear error unless ``world_size`` ranks can split this model's heads and experts."""
    allowed = allowed_tensor_parallel_sizes(config)
    if world_size not in allowed:
        raise ValueError(
            f"world_size={world_size} cannot split num_kv_heads={config.num_kv_heads} KV heads, "
            f"num_q_heads={config.num_q_heads} query heads, ffn_dim={config.ffn_dim} and "
            f"d_model={config.d_model}: each rank needs whole KV groups (or one KV head shared "
            "with others, for world sizes that are multiples of num_kv_heads) and equal slices "
            f"of F and D; allowed: {allowed}"
        )


def allowed_tensor_parallel_sizes(config: MinGrokConfig) -> list[int]:
    """R dividing G (whole KV groups per rank) or R a multiple of G dividing H (a shared KV
    head per rank), and in both cases R dividing the experts' hidden width F and the model
    width D (the embedding's split)."""
    heads, groups = config.num_q_heads, config.num_kv_heads
    return [
        r
        for r in range(1, heads + 1)
        if (groups % r == 0 or (r % groups == 0 and heads % r == 0))
        and config.ffn_dim % r == 0
        and config.d_model % r == 0
    ]


def tensor_parallel_config(config: MinGrokConfig, world_size: int) -> MinGrokConfig:
    """The config of one rank's slice: H/R query heads, G/R KV heads (at least the one it
    shares), hidden width F/R."""
    check_tensor_parallel(config, world_size)
    return config.replace(
        num_q_heads=config.num_q_heads // world_size,
        num_kv_heads=max(1, config.num_kv_heads // world_size),
        ffn_size=config.ffn_dim // world_size,
    )


class TensorParallelMoE(nn.Module):
    """The MoE layer with each expert's hidden width F sliced over the ranks; router replicated.

    y = Σ_r Σ_j g_j · (gelu(x W_e^r) ⊙ (x V_e^r)) U_e^r, with W^r, V^r the rank's F/R columns and
    U^r its F/R rows: the GeGLU is elementwise in F, so the sum over r is the whole expert.
    The router's gates and the experts' input get their gradients summed over ranks
    (:func:`sum_gradients`), since each rank only sees its slice's share of them.
    """

    def __init__(self, moe: MoELayer, mesh: DeviceMesh) -> None:
        super().__init__()
        self.mesh = mesh
        self.router = moe.router
        rank, size = mesh.get_local_rank(), mesh.size()
        self.w_gate = _slice(moe.w_gate, 2, rank, size)
        self.w_value = _slice(moe.w_value, 2, rank, size)
        self.w_out = _slice(moe.w_out, 1, rank, size)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> MoEOutput:
        batch, steps, width = x.shape
        flat = x.reshape(batch * steps, width)
        stats = self.router(flat, None if token_mask is None else token_mask.reshape(-1))
        partial = sparse_moe(
            sum_gradients(flat, self.mesh),
            stats.experts,
            sum_gradients(stats.gates, self.mesh),
            self.w_gate,
            self.w_value,
            self.w_out,
        )
        return MoEOutput(sum_partials(partial, self.mesh).view(batch, steps, width), stats)


class TensorParallelEmbedding(nn.Module):
    """The tied embedding E [V, D] split along D: ``weight`` is the rank's columns r·D/R … .

    Lookup: E[token] = concat_r E_r[token], an all-gather of [B, T, D/R] (its backward keeps the
    rank's block of the gradient, whole on every rank). Unembedding: h Eᵀ = Σ_r h_r E_rᵀ with h_r
    the rank's D/R slice of h, one all-reduce (:func:`sum_partials`); taking the slice gives h's
    gradient as the all-gather of the ranks' slices' gradients.
    """

    def __init__(self, embed: TiedEmbedding, mesh: DeviceMesh) -> None:
        super().__init__()
        self.mesh = mesh
        self.d_model = embed.embedding_dim
        self.weight = _slice(embed.weight, 1, mesh.get_local_rank(), mesh.size())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return all_rows(
            nn.functional.embedding(tokens, self.weight), self.mesh, self.d_model, dim=tokens.dim()
        )

    def unembed(self, normed: torch.Tensor) -> torch.Tensor:
        mine = rows_of_this_rank(normed, self.mesh, dim=normed.dim() - 1)
        return sum_partials(mine @ self.weight.t(), self.mesh)


def tensor_parallel(model: MinGrok, mesh: DeviceMesh) -> MinGrok:
    """Shard ``model`` in place over the 1-D ``mesh`` (every rank holding the same full weights
    beforehand) and return it; its forward pass then equals the unsharded model's on every rank."""
    local_config = tensor_parallel_config(model.config, mesh.size())
    shared_kv = mesh.size() > model.config.num_kv_heads
    plan = {"query": ATTENTION_PLAN["query"], "out": ATTENTION_PLAN["out"]}
    for layer in model.layers:
        parallelize_module(layer.attention, mesh, plan if shared_kv else ATTENTION_PLAN)
        if shared_kv:
            for projection in (layer.attention.key, layer.attention.value):
                _keep_shared_kv_head(projection, model.config, mesh)
        layer.attention.config = local_config
        layer.moe = TensorParallelMoE(layer.moe, mesh)
    model.embed = TensorParallelEmbedding(model.embed, mesh)
    model.config = local_config
    return model


def _slice(weight: nn.Parameter, dim: int, rank: int, size: int) -> nn.Parameter:
    """Rank ``rank``'s block of ``weight`` along ``dim`` (torch.chunk's blocks), as a parameter."""
    block = weight.detach().chunk(size, dim=dim)[rank].clone()
    return nn.Parameter(block, requires_grad=weight.requires_grad)


def _keep_shared_kv_head(projection: nn.Linear, config: MinGrokConfig, mesh: DeviceMesh) -> None:
    """Keep the rows of the one KV head this rank's query heads read (head r·G/R, rounded down);
    its input's gradient is summed over the ranks, as ColwiseParallel's is."""
    head = mesh.get_local_rank() * config.num_kv_heads // mesh.size()
    rows = projection.weight.detach()[head * config.head_dim : (head + 1) * config.head_dim]
    projection.weight = nn.Parameter(rows.clone(), requires_grad=projection.weight.requires_grad)
    projection.out_features = config.head_dim
    projection.register_forward_pre_hook(lambda _, inputs: (sum_gradients(inputs[0], mesh),))
