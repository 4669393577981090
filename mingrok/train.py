"""The training loop every chapter and the CLI share, and validation loss in nats per character.

One step: a batch of random windows, cross-entropy on the next token plus the router's weighted
auxiliary losses, backward, gradient clipping, AdamW with a warm-up-then-cosine learning rate:

    lr(s) = lr_max · (s + 1) / warmup                              while s < warmup
    lr(s) = lr_min + ½ (lr_max − lr_min)(1 + cos(π · progress))    after, progress 0 → 1

Losses are compared **per character**, not per token, so that models with different tokenizers
compare: a window's summed cross-entropy (nats) divided by the number of characters its target
tokens stand for. bits/char = nats/char / ln 2.

Determinism: every random draw has its own seeded generator: batches (``data_generator``), each
router's noise (``model.seed_router_noise``) and dropout (torch's global generator, seeded here:
``nn.Dropout`` takes no generator). The same seed gives the same history on a CPU, and all three
states go into a checkpoint so that a resumed run equals an uninterrupted one.

On R processes (``torchrun``, :class:`mingrok.parallel.DataParallel`) ``batch_size`` stays the
global batch: every rank draws the same windows from the same batch generator and trains on its
B/R rows, so the history equals one process's up to float rounding. Dropout and router noise
are per rank: rank r seeds dropout with seed + r and its routers with seed + r·num_layers + i
(rank 0's streams are one process's), and the checkpoint keeps every rank's states.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .checkpoint import split_training_tensors, training_tensors
from .config import Settings, setting
from .data import random_batches
from .model import MinGrok
from .parallel.data_parallel import DataParallel
from .router import Router

# TrainConfig.autocast → the dtype torch.autocast computes the matmuls in (None: no autocast).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class TrainConfig(Settings):
    """How to train. The defaults are the recipe of the shipped ``shakespeare`` model; each field's
    help is what ``python -m mingrok train --help`` prints for its option."""

    steps: int = setting(1000, "optimizer steps")
    batch_size: int = setting(16, "windows of text per step")
    learning_rate: float = setting(2e-3, "peak learning rate, reached after the warm-up")
    min_learning_rate: float = setting(2e-4, "learning rate at the end of the cosine")
    warmup_steps: int = setting(100, "steps of linear warm-up to the peak")
    weight_decay: float = setting(
        0.1, "AdamW weight decay, on matrices only (never norms, embeddings or the router)"
    )
    beta1: float = setting(0.9, "AdamW's first-moment decay")
    beta2: float = setting(0.95, "AdamW's second-moment decay")
    grad_clip: float = setting(1.0, "max global gradient norm; 0 = no clipping")
    eval_interval: int = setting(250, "steps between validation passes (and at the last step)")
    eval_windows: int | None = setting(
        None, "validate on the first N windows (default: the whole validation text)"
    )
    eval_batch_size: int = setting(32, "validation windows per forward pass")
    seed: int = setting(0, "seeds the batches, dropout and the router noise")
    autocast: str = setting(
        "off",
        "training forward and loss under torch.autocast: off (float32) or bfloat16 (matmuls in "
        "bfloat16; weights, gradients, AdamW and evaluation stay float32)",
    )

    def __post_init__(self) -> None:
        require = self._require
        self._require_whole_numbers("steps", "batch_size", "eval_interval", "eval_batch_size")
        self._require_whole_numbers("warmup_steps", minimum=0)
        self._require_whole_numbers("eval_windows", none_means="all")
        require(self.learning_rate > 0, "learning_rate", "a positive number")
        require(
            0 <= self.min_learning_rate <= self.learning_rate,
            "min_learning_rate",
            f"a number in [0, learning_rate={self.learning_rate}]",
        )
        for name in ("weight_decay", "grad_clip"):
            require(getattr(self, name) >= 0, name, "a number >= 0")
        for name in ("beta1", "beta2"):
            require(0 <= getattr(self, name) < 1, name, "a number in [0, 1)")
        require(self.autocast in AUTOCAST_DTYPES, "autocast", f"one of {tuple(AUTOCAST_DTYPES)}")


def learning_rate_at(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from the peak down to the minimum.

    ``progress`` (0 → 1) is the fraction of the cosine done; by default it is counted in steps
    after the warm-up. A time-limited run (the benchmark) passes elapsed / budget instead.
    """
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if progress is None:
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only.

    Norm scales, the token embedding (tied with the unembedding) and the router are left undecayed:
    decay would pull the norms towards 0, shrink rare tokens' rows, and flatten the routing.
    """
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        undecayed = parameter.dim() < 2 or name.startswith("embed.") or ".router." in name
        (no_decay if undecayed else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), foreach=True
    )


def token_char_lengths(tokenizer: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """chars[i] = how many characters token id i stands for (float32 [V])."""
    lengths = [len(tokenizer.decode([i])) for i in range(tokenizer.vocab_size)]
    return torch.tensor(lengths, dtype=torch.float32, device=device)


@torch.no_grad()
def evaluate_nats_per_char(
    model: MinGrok,
    token_ids: torch.Tensor,
    char_lengths: torch.Tensor,
    *,
    batch_size: int = 32,
    max_windows: int | None = None,
) -> float:
    """Σ cross-entropy (nats) / Σ characters of the predicted tokens, over the whole text.

    The ids are cut into non-overlapping windows of the model's full context T: window w reads
    ids[wT : wT+T] and predicts ids[wT+1 : wT+T+1], so every token but the first is predicted
    exactly once (the last window may be shorter). ``max_windows`` keeps only the first ones.
    """
    context = model.config.max_seq_len
    device = model.embed.weight.device
    ids = token_ids.to(device=device, dtype=torch.long).reshape(-1)
    if ids.numel() < 2:
        raise ValueError(f"token_ids has {ids.numel()} ids; evaluation needs at least 2")
    char_lengths = char_lengths.to(device)
    starts = list(range(0, ids.numel() - 1, context))[:max_windows]
    full = [s for s in starts if s + context + 1 <= ids.numel()]
    windows = [full[i : i + batch_size] for i in range(0, len(full), batch_size)]
    windows += [[s] for s in starts[len(full) :]]  # the shorter tail window, alone
    was_training = model.training
    model.eval()
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    total_chars = torch.zeros((), dtype=torch.float64, device=device)
    for group in windows:
        length = min(context, ids.numel() - 1 - group[0])
        index = torch.tensor(group, device=device)[:, None] + torch.arange(length, device=device)
        inputs, targets = ids[index], ids[index + 1]
        logits = model(inputs).logits
        nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        total_nats += nats.double()
        total_chars += char_lengths[targets].sum().double()
    model.train(was_training)
    nats_per_char = (total_nats / total_chars).item()
    if not math.isfinite(nats_per_char):
        raise ValueError(
            f"evaluation gave {nats_per_char} nats/char: the model's outputs are not finite (its "
            "weights hold NaN or inf, e.g. after the training diverged): there is no loss to report"
        )
    return nats_per_char


@dataclass
class TrainHistory:
    """What a run recorded, ready to plot: one entry per step, one per evaluation.

    ``expert_fraction[s][layer][e]`` is the share of the step's routed (token, slot) pairs that
    layer sent to expert e (1/E each when perfectly balanced).
    """

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # cross-entropy, nats per token
    train_nats_per_char: list[float] = field(default_factory=list)
    aux_loss: list[float] = field(default_factory=list)  # weighted router losses
    learning_rate: list[float] = field(default_factory=list)
    expert_fraction: list[list[list[float]]] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    val_nats_per_char: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # training wall time, evaluation included
    world_size: int = 1  # processes that shared each batch
    rank_batch_size: int | None = None  # windows each of them trained on per step

    @property
    def val_bits_per_char(self) -> list[float]:
        return [nats / math.log(2) for nats in self.val_nats_per_char]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainHistory:
        return cls(**values)


class Trainer:
    """Owns the model, optimizer, generators and history of one run; one :meth:`step` at a time.

    ``train_ids`` / ``val_ids`` are 1-D token id tensors of the two splits; ``char_lengths``
    [V] converts token counts to characters (see :func:`token_char_lengths`). Seeding happens
    here, so build the model first (its initialisation uses the caller's seed). ``parallel``
    spreads each batch over torchrun's processes (default: this process alone).
    """

    def __init__(
        self,
        model: MinGrok,
        train_ids: torch.Tensor,
        val_ids: torch.Tensor,
        char_lengths: torch.Tensor,
        config: TrainConfig | None = None,
        parallel: DataParallel | None = None,
    ) -> None:
        self.model = model
        self.config = config or TrainConfig()
        self.parallel = parallel or DataParallel()
        rank_batch = self.parallel.rank_batch_size(self.config.batch_size)
        device = model.embed.weight.device
        self.train_ids = train_ids.to(device)
        self.val_ids = val_ids.to(device)
        self.char_lengths = char_lengths.to(device)
        self.module = self.parallel.wrap(model)  # what the steps call: DDP, FSDP2 or the model
        self.optimizer = make_optimizer(model, self.config)
        self.data_generator = torch.Generator(device="cpu")
        self.data_generator.manual_seed(self.config.seed)
        rank = self.parallel.run.rank
        torch.manual_seed(self.config.seed + rank)  # dropout's stream
        model.seed_router_noise(self.config.seed + rank * model.config.num_layers)
        self.step_index = 0
        self.history = TrainHistory(world_size=self.parallel.world_size, rank_batch_size=rank_batch)

    @property
    def done(self) -> bool:
        return self.step_index >= self.config.steps

    def step(self, progress: float | None = None) -> float:
        """One optimisation step; returns its training loss (nats per token)."""
        config, model = self.config, self.model
        lr = learning_rate_at(self.step_index, config, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = random_batches(
            self.train_ids, config.batch_size, model.config.max_seq_len, self.data_generator
        )
        parallel = self.parallel
        inputs, targets = parallel.this_rank(inputs), parallel.this_rank(targets)
        self.module.train()
        with self._autocast():
            output = self.module(inputs)
            loss = F.cross_entropy(output.logits.flatten(0, 1), targets.flatten())
            router_loss = parallel.router_loss(output)
        self.optimizer.zero_grad(set_to_none=True)
        (loss + router_loss).backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=True)
        self.optimizer.step()

        with torch.no_grad():  # the whole batch's figures, whatever the number of processes
            loss_value = parallel.mean(loss).item()
            chars = parallel.sum(self.char_lengths[targets].sum()).item()
            fractions = parallel.mean(torch.stack([s.expert_fraction for s in output.router_stats]))
        history = self.history
        history.step.append(self.step_index)
        history.train_loss.append(loss_value)
        history.train_nats_per_char.append(
            loss_value * targets.numel() * parallel.world_size / chars
        )
        history.aux_loss.append(parallel.mean(router_loss).item())
        history.learning_rate.append(lr)
        history.expert_fraction.append(fractions.tolist())
        self.step_index += 1
        return loss_value

    def _autocast(self) -> torch.autocast:
        """The training forward's precision: ``config.autocast``'s dtype for the matmuls.

        Autocast rounds each matmul's inputs to bfloat16 and keeps the parameters float32, so
        AdamW updates float32 master weights (a bfloat16 copy, ``model.to(torch.bfloat16)``,
        would lose updates below its 3 significant digits). The model's own float32 islands
        stay: RMSNorm, the router and the attention softmax compute in float32 either way.
        It pays where large matmuls dominate on hardware with fast bfloat16 (AVX512-BF16 or AMX,
        a GPU): on one AMD EPYC thread (AVX512-BF16) a step of the shipped model (FFN 688) on
        8 × 256 tokens took 644 ms instead of 847 (1.3x faster), while the quick recipe's small
        matmuls (``benchmarks/bench_train_cpu.py``, FFN 176) ran 0.92x: the casts cost more than
        they save.
        """
        dtype = AUTOCAST_DTYPES[self.config.autocast]
        device = self.model.embed.weight.device.type
        return torch.autocast(device, dtype=dtype, enabled=dtype is not None)

    def evaluate(self) -> float:
        """Validation nats/char now (float32, whatever ``config.autocast``); recorded in the
        history."""
        value = evaluate_nats_per_char(
            self.model,
            self.val_ids,
            self.char_lengths,
            batch_size=self.config.eval_batch_size,
            max_windows=self.config.eval_windows,
        )
        self.parallel.reshard(self.model)
        self.history.eval_step.append(self.step_index)
        self.history.val_nats_per_char.append(value)
        return value

    def run(
        self,
        *,
        quiet: bool = False,
        on_evaluate: Callable[[Trainer], None] | None = None,
    ) -> TrainHistory:
        """Train up to ``config.steps``, evaluating every ``eval_interval`` steps and at the end.

        ``quiet`` drops the tqdm bar (notebooks store no progress bars; ranks other than 0 never
        show one); ``on_evaluate`` runs after each evaluation on every rank, e.g. to save a
        checkpoint (its collectives need them all; rank 0 alone writes).
        """
        config = self.config
        bar = None
        if not quiet and self.parallel.run.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.steps, initial=self.step_index, unit="step", dynamic_ncols=True)
        started = time.perf_counter() - self.history.elapsed_s
        try:
            while not self.done:
                loss = self.step()
                at_eval = self.step_index % config.eval_interval == 0 or self.done
                if at_eval:
                    self.evaluate()
                self.history.elapsed_s = time.perf_counter() - started
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(self._postfix(loss), refresh=False)
                if at_eval and on_evaluate is not None:
                    on_evaluate(self)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _postfix(self, loss: float) -> dict[str, str]:
        postfix = {"loss": f"{loss:.3f}", "lr": f"{self.history.learning_rate[-1]:.1e}"}
        if self.history.val_nats_per_char:
            postfix["val nats/char"] = f"{self.history.val_nats_per_char[-1]:.3f}"
        return postfix

    # --- state for checkpoints (tensors for safetensors, the rest as JSON) ---

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer moments and every rank's generator states, as checkpoint tensors (no
        pickles). Under torchrun every rank must call it (sharded moments are gathered)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        optimizer_state = {
            names[id(p)]: {key: self.parallel.full(value) for key, value in state.items()}
            for p, state in self.optimizer.state.items()
        }
        return training_tensors(
            optimizer_state, self.parallel.gather_states(self._generator_states())
        )

    def whole_model(self) -> MinGrok:
        """The model with whole tensors, to save: itself, or under FSDP2 an unsharded copy
        (every rank must call it: the shards are gathered)."""
        if not self.parallel.sharded or not self.parallel.run.distributed:
            return self.model
        state = {name: self.parallel.full(value) for name, value in self.model.state_dict().items()}
        with torch.device("meta"):  # no initialisation drawn from (dropout's) global generator
            whole = MinGrok(self.model.config)
        whole.load_state_dict(state, assign=True)
        return whole

    def _generator_states(self) -> dict[str, torch.Tensor]:
        """Every random stream of the run, by name: batches, dropout, each router's noise."""
        states = {"data": self.data_generator.get_state(), "dropout": torch.get_rng_state()}
        for index, router in enumerate(_routers(self.model)):
            states[f"router.{index}"] = router.noise_generator().get_state()
        return states

    def state_metadata(self) -> dict[str, Any]:
        return {
            "step": self.step_index,
            "world_size": self.parallel.world_size,
            "train_config": self.config.to_dict(),
            "history": self.history.to_dict(),
        }

    def load_state(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Restore what :meth:`state_tensors` / :meth:`state_metadata` saved."""
        saved = TrainConfig.from_dict(metadata["train_config"])
        differences = [
            name
            for name in ("batch_size", "seed", "learning_rate", "warmup_steps", "autocast")
            if getattr(saved, name) != getattr(self.config, name)
        ]
        if differences:
            name = differences[0]
            raise ValueError(
                f"cannot resume: the checkpoint was trained with {name}="
                f"{getattr(saved, name)!r}, this run asks for {getattr(self.config, name)!r}"
            )
        saved_world = metadata.get("world_size", 1)
        if saved_world != self.parallel.world_size:
            raise ValueError(
                f"cannot resume: the checkpoint was trained by world_size={saved_world} "
                f"processes (each with its own dropout and router-noise streams), this run has "
                f"{self.parallel.world_size}; resume with --nproc-per-node {saved_world}"
            )
        optimizer_state, generator_states = split_training_tensors(tensors)
        parameters = dict(self.model.named_parameters())
        for name, saved_state in optimizer_state.items():
            parameter = parameters[name]
            state = self.optimizer.state[parameter]
            for key, value in saved_state.items():
                state[key] = (
                    value.clone() if key == "step" else self.parallel.like(value, parameter)
                )
        own = self.parallel.state_name
        self.data_generator.set_state(generator_states["data"])
        torch.set_rng_state(generator_states[own("dropout")])
        for index, router in enumerate(_routers(self.model)):
            router.noise_generator().set_state(generator_states[own(f"router.{index}")])
        self.step_index = int(metadata["step"])
        self.history = TrainHistory.from_dict(metadata["history"])


def _routers(model: MinGrok) -> Sequence[Router]:
    return [layer.moe.router for layer in model.layers]
