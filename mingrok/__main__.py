"""``python -m mingrok``: train, sample from and evaluate minGrok models from the command line.

Each subcommand lives in one ``add_<name>_command`` function that registers its arguments and its
``run`` function, so another command group (e.g. ``course``) is one more function in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .arguments import (
    OneLineErrorParser,
    UsageError,
    device_name,
    file_or_folder_holding,
    non_empty_text,
    non_negative,
    positive,
    real_number,
    seed,
    shakespeare_file,
    token_ids,
)
from .course.cli import add_course_parser
from .decode import WEIGHTS
from .download import add_download_command

PRESETS = ("shakespeare",)
CHECKPOINT_NAME = "checkpoint.safetensors"  # resumable: model + optimizer + generator states
MODEL_NAME = "model.safetensors"  # weights only, what `sample`, `eval` and the package ship
HISTORY_NAME = "history.json"
# Decoding one sequence multiplies a [1, D] row by each weight matrix: too little work per op for a
# second thread to pay for its hand-off, and while other processes keep the cores busy, OpenMP's
# threads wait for each other at every one of the ~600 ops per token. Measured on a 2-core machine
# (greedy, the shipped model): idle, 200 tokens in 0.75-0.79 s on one thread and 0.79-0.84 s on two;
# at load average 4, 300 tokens in 2.8-3.5 s on one and 16-18 s on two. Batches and training keep
# torch's default of one thread per core.
SAMPLE_THREADS = 1
SHORT_FLAGS = {"learning_rate": ("--lr",), "min_learning_rate": ("--min-lr",)}  # extra spellings


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option with a value shows its default; none says "(default: None)" or a repeat."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_value = action.default is None or action.default is False  # (0 is a real default)
        if action.required or no_value or action.default is argparse.SUPPRESS or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def add_train_command(subparsers: argparse._SubParsersAction) -> None:
    from .train import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train a model on TinyShakespeare",
        description=(
            "Train minGrok on the first 90% of TinyShakespeare and report the validation loss on "
            "the last 10% in nats and bits per character. The defaults are the recipe of the "
            "shipped `shakespeare` model. Every evaluation writes OUT/checkpoint.safetensors "
            "(resumable with --resume); the end writes OUT/model.safetensors (weights only) and "
            "OUT/history.json."
        ),
        formatter_class=_HelpFormatter,
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--preset", choices=PRESETS, default="shakespeare", help="model config")
    model.add_argument("--config", metavar="JSON", help="a JSON file of MinGrokConfig fields")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint")
    parser.add_argument(
        "--fsdp",
        action="store_true",
        help="under torchrun, shard parameters, gradients and optimizer state over the "
        "processes (FSDP2) instead of a whole copy on each (DDP)",
    )
    _add_settings_options(parser.add_argument_group("training (TrainConfig)"), TrainConfig)
    _add_common(parser)
    parser.set_defaults(run=run_train)


def _add_settings_options(parser: argparse._ActionsContainer, settings: type) -> None:
    """One option per field of the ``settings`` dataclass: ``--field-name``, its type, its default
    and its documented help (:func:`mingrok.config.setting`), so a new field is a new option."""
    hints = typing.get_type_hints(settings)
    for field in dataclasses.fields(settings):
        optional = [t for t in typing.get_args(hints[field.name]) if t is not type(None)]
        value_type = optional[0] if optional else hints[field.name]  # int | None → int
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            *SHORT_FLAGS.get(field.name, ()),
            dest=field.name,
            type=value_type,
            default=field.default,
            metavar=value_type.__name__.upper(),
            help=field.metadata["help"],
        )


def _settings_from_args(settings: type, args: argparse.Namespace) -> Any:
    """The ``settings`` dataclass built from the options :func:`_add_settings_options` added."""
    return settings(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(settings)}
    )


def add_sample_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="generate text from a checkpoint",
        description="Continue a prompt with a trained model (the shipped one by default).",
        epilog="Grok-1 as xAI released it, on 8 GPUs (NCCL; gloo on CPUs), after `python -m "
        "mingrok download-grok1 --out DIR`: torchrun --nproc-per-node 8 -m mingrok sample "
        "--grok1 DIR --tokenizer DIR/tokenizer.model --tensor-parallel --weights int8 --prompt "
        "'...' (or --expert-parallel). Each rank reads only its part of every file, after saying "
        "what it will hold (stderr) and refusing when its device cannot.",
        formatter_class=_HelpFormatter,
    )
    _add_checkpoint(parser)
    _add_grok1_options(parser)
    parser.add_argument(
        "--prompt",
        type=non_empty_text,
        default="JULIET:\nO Romeo, Romeo! wherefore art thou",
        help="text to continue",
    )
    parser.add_argument(
        "--max-new-tokens", type=non_negative, default=300, help="tokens to generate"
    )
    parser.add_argument("--temperature", type=real_number(0), default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=positive, default=None, help="keep the k likeliest tokens")
    parser.add_argument(
        "--top-p", type=real_number(0, 1, above=True), default=None, help="nucleus (grok-1's rule)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sampler")
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context")
    parser.add_argument(
        "--weights",
        choices=WEIGHTS,
        default="float32",
        help="how the fast decoder stores its matrices: int8 is 1.5 to 2 times as fast, for a "
        "small cost in quality (benchmarks/bench_generate.py measures both). With --grok1, "
        "int8 keeps the released int8 matrices and their scales as they are (a quarter of "
        "float32's memory) and decodes on the eager path",
    )
    split = parser.add_mutually_exclusive_group()
    split.add_argument(
        "--tensor-parallel",
        action="store_true",
        help="under torchrun, split every layer's heads and experts over the processes (with "
        "--grok1, each rank reads only its part of every file)",
    )
    split.add_argument(
        "--expert-parallel",
        action="store_true",
        help="under torchrun, give each process whole experts, attention replicated",
    )
    _add_common(parser, data=False, threads=SAMPLE_THREADS)
    parser.set_defaults(run=run_sample, check=check_sample)


def check_sample(args: argparse.Namespace) -> None:
    """The rules between ``sample``'s options (each option's own range is its argparse type)."""
    if args.weights != "float32" and args.no_cache:
        raise UsageError(
            f"argument --weights: {args.weights!r} needs the fused decoder, which --no-cache "
            "turns off: use --weights float32 with --no-cache"
        )
    if args.grok1 is None:
        for flag in ("grok1_config", "tokenizer"):
            if getattr(args, flag) is not None:
                raise UsageError(f"argument --{flag.replace('_', '-')}: goes with --grok1 DIR")
        if args.grok1_dtype != "float32":
            raise UsageError("argument --grok1-dtype: goes with --grok1 DIR")
        return
    if args.checkpoint is not None:
        raise UsageError("--checkpoint and --grok1 each name a model to sample from; give one")
    if args.tokenizer is None and args.prompt_ids is None:
        raise UsageError(
            "--grok1 needs --tokenizer FILE (Grok-1's tokenizer.model) or --prompt-ids"
        )


def add_eval_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="validation nats/char of a checkpoint",
        description=(
            "Cross-entropy per character on the last 10% of TinyShakespeare, over non-overlapping "
            "windows of the model's full context."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_checkpoint(parser)
    parser.add_argument(
        "--split", choices=("val", "train"), default="val", help="last 10%% or first 90%%"
    )
    parser.add_argument("--max-windows", type=positive, default=None, help="first N windows (all)")
    parser.add_argument("--batch-size", type=positive, default=32, help="windows per forward pass")
    _add_common(parser)
    parser.set_defaults(run=run_eval)


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_train_command,
    add_sample_command,
    add_eval_command,
    add_course_parser,  # run chapters with papermill, student copies, grading (mingrok.course)
    add_download_command,  # xAI's released weights from the Hugging Face hub (mingrok.download)
)


def _add_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=file_or_folder_holding(MODEL_NAME),
        metavar="PATH",
        default=None,
        help="a .safetensors file or a training output folder (default: the shipped model)",
    )


def _add_common(
    parser: argparse.ArgumentParser, data: bool = True, threads: int | None = None
) -> None:
    parser.add_argument(
        "--device", type=device_name, default="auto", help="auto (CUDA if present), cpu, cuda, mps"
    )
    parser.add_argument(
        "--threads",
        type=positive,
        default=threads,
        help="CPU threads for torch" + ("" if threads else " (default: torch's, one per core)"),
    )
    if data:
        parser.add_argument(
            "--data",
            type=shakespeare_file,
            metavar="PATH",
            default=None,
            help="TinyShakespeare; default: $MINGROK_DATA, else input.txt in the current folder "
            "or a parent up to the project root, the checkout root or the user cache, else a "
            "download (sha256-checked)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m mingrok",
        description="minGrok: Grok-1 in miniature. Train, sample and evaluate from the terminal.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if hasattr(args, "check"):  # before anything is loaded or printed
        try:
            args.check(args)
        except UsageError as error:
            parser.exit(2, f"{parser.prog} {args.command}: error: {error}\n")
    args.command_line = "python -m mingrok " + " ".join(argv)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from .data import DataError

    try:
        return args.run(args)
    except (ValueError, OSError, DataError) as error:  # bad values, missing or unreadable files
        parser.exit(2, f"error: {error}\n")


# --- the commands ---


def run_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import check_config, load_model_state, read_checkpoint, save_checkpoint
    from .config import SHAKESPEARE, MinGrokConfig
    from .device import resolve_device
    from .model import MinGrok
    from .parallel import DataParallel, init_distributed, shutdown_distributed
    from .train import TrainConfig, Trainer

    run = init_distributed(resolve_device(args.device))  # torchrun's group, or this process
    device = run.device
    config = MinGrokConfig.from_json(Path(args.config).read_text()) if args.config else SHAKESPEARE
    train_config = _settings_from_args(TrainConfig, args)
    tokenizer, train_ids, val_ids, char_lengths = _shakespeare_ids(args.data)
    out = Path(args.out)
    checkpoint_path = out / CHECKPOINT_NAME
    torch.manual_seed(train_config.seed)  # the initial weights (the same on every rank)
    model = MinGrok(config).to(device)
    if args.resume:  # into the whole model, before FSDP2 shards it
        checkpoint = read_checkpoint(checkpoint_path)
        check_config(config, checkpoint.config, f"checkpoint {str(checkpoint_path)!r}")
        load_model_state(model, checkpoint)
    elif checkpoint_path.exists():
        raise ValueError(
            f"{checkpoint_path} exists: pass --resume to continue it, or choose another --out"
        )
    parallel = DataParallel(run, sharded=args.fsdp)
    trainer = Trainer(model, train_ids, val_ids, char_lengths, train_config, parallel)
    if args.resume:
        trainer.load_state(checkpoint.training_state, checkpoint.metadata)

    def save(trainer: Trainer) -> None:
        """Every rank gathers (sharded tensors, every rank's generators); rank 0 alone writes."""
        tensors, whole = trainer.state_tensors(), trainer.whole_model()
        if run.is_main:
            save_checkpoint(
                checkpoint_path,
                whole,
                tokenizer_name=tokenizer.name,
                metadata=trainer.state_metadata(),
                extra_tensors=tensors,
            )

    if run.is_main:
        print(
            f"training {_describe_model(config)} on {run.world_size} × {device} for "
            f"{train_config.steps} steps"
        )
    history = trainer.run(quiet=args.quiet, on_evaluate=save)
    summary = _summary(trainer, args.command_line)
    whole = trainer.whole_model()
    if run.is_main:
        save_checkpoint(
            out / MODEL_NAME,
            whole,
            tokenizer_name=tokenizer.name,
            metadata={"train_config": train_config.to_dict(), "summary": summary},
        )
        (out / HISTORY_NAME).write_text(json.dumps(_rounded(history.to_dict())) + "\n")
        print(json.dumps(summary, indent=1))
    shutdown_distributed()
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .parallel import init_distributed, shutdown_distributed
    from .sampling import generate

    run = init_distributed(resolve_device(args.device))
    strategy = "tensor" if args.tensor_parallel else "expert" if args.expert_parallel else None
    # --grok1 split over ranks or kept int8: streamed into each rank's part (mingrok.parallel.load)
    streamed = args.grok1 is not None and (strategy is not None or args.weights == "int8")
    model, tokenizer, prompt_ids = _sample_model_and_prompt(args, run, strategy, streamed)
    if strategy and run.distributed and not streamed:  # (one process: nothing to split)
        from torch.distributed.device_mesh import init_device_mesh

        from .parallel import parallelize

        parallelize(model, init_device_mesh(run.device.type, (run.world_size,)), strategy)

    def write(token_ids) -> None:  # each token's text as soon as it is chosen
        sys.stdout.write(tokenizer.decode(token_ids))
        sys.stdout.flush()

    # every rank draws the same tokens (same seed, same logits): rank 0 alone writes them
    if run.is_main:
        write(prompt_ids)
    started = time.perf_counter()
    new_ids = generate(
        model,
        prompt_ids,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        use_cache=not args.no_cache,
        fused=not (streamed and args.weights == "int8"),  # the fused decoder copies to float32
        weights="float32" if streamed else args.weights,  # a streamed model holds its own
        on_token=write if run.is_main else None,
    )
    elapsed = time.perf_counter() - started
    if run.is_main:
        print()
        print(f"\n[{len(new_ids)} tokens in {elapsed:.2f} s]", file=sys.stderr)
    shutdown_distributed()
    return 0


# --- sample --grok1: a checkpoint in the format xAI released Grok-1 in ---


def _add_grok1_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Grok-1's released format",
        "Sample from ckpt-0/ as xAI released Grok-1 (tensor00000_000, ...), read with an "
        "allow-list unpickler that runs nothing a file names (mingrok.released).",
    )
    group.add_argument(
        "--grok1", metavar="DIR", default=None, help="the folder holding ckpt-0/, or ckpt-0/ itself"
    )
    group.add_argument(
        "--grok1-config",
        metavar="FILE",
        default=None,
        help='JSON {"lm": {...}, "model": {...}} with grok-1\'s field names (default: Grok-1)',
    )
    group.add_argument(
        "--grok1-dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16 is Grok-1's production precision",
    )
    group.add_argument(
        "--tokenizer", metavar="FILE", default=None, help="Grok-1's SentencePiece tokenizer.model"
    )
    group.add_argument(
        "--prompt-ids",
        metavar="IDS",
        type=token_ids,
        default=None,
        help="the prompt as token ids, e.g. 5,6,7, instead of --prompt (with --grok1 and no "
        "--tokenizer, the output is token ids too)",
    )


class _TokenIds:
    """Stands in for a tokenizer when there is none: token ids are written as numbers."""

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return "".join(f"{token_id} " for token_id in ids)


class _StreamingText:
    """Writes a growing sequence of ids as the tokenizer decodes the whole, one addition at a time:
    SentencePiece decodes a lone piece without its leading space ('▁the' → 'the'), and byte
    pieces only make a character together, so Grok-1's ids cannot be decoded one by one."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.ids, self.written = tokenizer, [], ""

    def decode(self, ids) -> str:
        self.ids += ids.tolist() if hasattr(ids, "tolist") else list(ids)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.written):  # a character unfinished
            return ""
        added, self.written = text[len(self.written) :], text
        return added


def _sample_model_and_prompt(
    args: argparse.Namespace, run, strategy: str | None, streamed: bool
) -> tuple[Any, Any, list[int]]:
    """The model, the tokenizer and the prompt's ids ``sample`` uses, every option checked before
    anything is printed (and, with --grok1, before the weights are read: the files are there, the
    rank count splits them, and each rank's device holds its part, mingrok.preflight)."""
    device = run.device
    if args.grok1 is None:
        model, tokenizer = _load(args.checkpoint, str(device))
        prompt_ids = args.prompt_ids or tokenizer.encode(args.prompt, errors="replace")
        _check_prompt_ids(prompt_ids, model.config.vocab_size)
        return model, tokenizer, prompt_ids
    import torch

    from .config import GROK1
    from .grok1 import load_checkpoint

    config = GROK1 if args.grok1_config is None else _grok1_config(args.grok1_config)
    if args.tokenizer is not None:
        grok1_tokenizer = _grok1_tokenizer(args.tokenizer, config.vocab_size)
        prompt_ids = args.prompt_ids or grok1_tokenizer.encode(args.prompt)
        tokenizer = _StreamingText(grok1_tokenizer)
    else:
        tokenizer, prompt_ids = _TokenIds(), args.prompt_ids
    _check_prompt_ids(prompt_ids, config.vocab_size)
    from .preflight import preflight_released

    if streamed and args.grok1_dtype != "float32":
        raise ValueError(
            "--grok1-dtype bfloat16 goes with one process and --weights float32: split over "
            "ranks or kept int8, the matrices are float32 or int8"
        )
    storage = args.weights if streamed else args.grok1_dtype
    needs = preflight_released(args.grok1, config, run, strategy, storage)
    if run.is_main:
        print(needs, file=sys.stderr)
    if streamed:
        from .parallel.load import load_sharded

        return load_sharded(args.grok1, config, run, strategy, args.weights), tokenizer, prompt_ids
    dtype = getattr(torch, args.grok1_dtype)
    return load_checkpoint(args.grok1, config, dtype=dtype, device=device), tokenizer, prompt_ids


def _grok1_config(path: str):
    """A MinGrokConfig from grok-1's field names in a JSON file (extra keys are ignored, so the
    ``config`` of a fixture's metadata reads as it is)."""
    from .grok1 import config_from_grok1

    try:
        fields = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"--grok1-config {path!r} is not JSON: {error}") from None
    if not (
        isinstance(fields, dict) and all(isinstance(fields.get(k), dict) for k in ("lm", "model"))
    ):
        raise ValueError(
            f'--grok1-config {path!r} must hold {{"lm": {{...}}, "model": {{...}}}} (grok-1\'s '
            "LanguageModelConfig and TransformerConfig fields)"
        )
    return config_from_grok1(fields["lm"], fields["model"])


def _grok1_tokenizer(path: str, vocab_size: int):
    from .tokenizer import Grok1Tokenizer

    tokenizer = Grok1Tokenizer(path)
    if tokenizer.vocab_size != vocab_size:
        raise ValueError(
            f"--tokenizer {path!r} has {tokenizer.vocab_size} pieces; the model's vocab_size is "
            f"{vocab_size}"
        )
    return tokenizer


def _check_prompt_ids(prompt_ids: list[int], vocab_size: int) -> None:
    too_large = [token_id for token_id in prompt_ids if token_id >= vocab_size]
    if too_large:
        raise ValueError(
            f"--prompt-ids holds {too_large[0]}; the model's ids are 0..{vocab_size - 1}"
        )


def run_eval(args: argparse.Namespace) -> int:
    from .train import evaluate_nats_per_char

    model, tokenizer = _load(args.checkpoint, args.device)
    _, train_ids, val_ids, char_lengths = _shakespeare_ids(args.data, tokenizer)
    ids = val_ids if args.split == "val" else train_ids
    nats = evaluate_nats_per_char(
        model, ids, char_lengths, batch_size=args.batch_size, max_windows=args.max_windows
    )
    print(f"{args.split}: {nats:.4f} nats/char = {nats / math.log(2):.4f} bits/char")
    return 0


# --- helpers ---


def _shakespeare_ids(path: str | None, tokenizer=None):
    """Tokenizer, train ids, validation ids and chars per token for the 90/10 character split."""
    import torch

    from .data import load_shakespeare, split_text
    from .tokenizer import MinGrokTokenizer
    from .train import token_char_lengths

    tokenizer = tokenizer or MinGrokTokenizer()
    train_text, val_text = split_text(load_shakespeare(path))
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
    return tokenizer, train_ids, val_ids, token_char_lengths(tokenizer)


def _load(checkpoint: str | None, device_name: str):
    from .device import resolve_device

    device = resolve_device(device_name)
    if checkpoint is None:
        from .pretrained import load

        return load(device=device)
    from .checkpoint import load_model_and_tokenizer

    path = Path(checkpoint)
    return load_model_and_tokenizer(path / MODEL_NAME if path.is_dir() else path, device=device)


def _rounded(value, digits: int = 5):
    """Floats to ``digits`` significant digits, recursively: a history small enough to ship."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item, digits) for item in value]
    return value


def _describe_model(config) -> str:
    from .config import count_parameters

    total, active = count_parameters(config)
    return (
        f"minGrok ({total / 1e6:.2f} M parameters, {active / 1e6:.2f} M active per token, "
        f"{config.num_layers} layers, {config.num_experts} experts, "
        f"top-{config.num_experts_per_token}, context {config.max_seq_len})"
    )


def _summary(trainer, command: str) -> dict:
    import os
    import platform

    import torch

    history = trainer.history
    fractions = history.expert_fraction[-50:]  # [steps][layer][expert]
    losses = history.train_loss[-50:]
    mean_fractions = [
        [round(sum(expert) / len(fractions), 4) for expert in zip(*layer, strict=True)]
        for layer in zip(*fractions, strict=True)
    ]
    nats = history.val_nats_per_char[-1]
    return {
        "command": command,
        "steps": trainer.step_index,
        "wall_time_s": round(history.elapsed_s, 1),
        "val_nats_per_char": round(nats, 4),
        "val_bits_per_char": round(nats / math.log(2), 4),
        "train_loss_last_50_steps": round(sum(losses) / len(losses), 4),
        "expert_fraction_last_50_steps": mean_fractions,
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
