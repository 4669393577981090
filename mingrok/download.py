"""``python -m mingrok download-grok1``: fetch xAI's released Grok-1 weights and tokenizer.

The weights are the Hugging Face repository ``xai-org/grok-1``: ``ckpt-0/`` holds one pickle per
parameter tensor, ``tensor{i:05d}_000`` in the order :func:`mingrok.released.checkpoint_names`
gives (2 + 12 per layer: 770 files for Grok-1), and ``tokenizer.model`` is its SentencePiece
model. :func:`released_files` computes every file's size from the configuration alone
(:meth:`mingrok.scale.Weight.released_bytes`: int8 values and bfloat16 scales for the attention
and expert matrices, float32 for the rest), which is what ``--dry-run`` lists without touching the
network. The download itself is ``huggingface_hub.snapshot_download``, which skips the files
already complete in the folder and resumes a partial one, so an interrupted download is
continued by running the same command again.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .config import GROK1, MinGrokConfig
from .scale import Weight, weights

REPOSITORY = "xai-org/grok-1"
PATTERNS = ("ckpt-0/*", "tokenizer.model")
TOKENIZER_BYTES = 2_229_219  # xAI's tokenizer.model at commit 7050ed2 (fixtures/README.md)
# Each pickle adds its own framing to the arrays' bytes: the class and dtype names, the shape and
# the length of each buffer. The tiny released-format fixture measures 147 to 152 bytes for a
# float32 array and 302 for an int8 weight with its scales; a few hundred bytes in 296 GiB.
PICKLE_FRAMING = "a few hundred bytes of pickle framing per file, not counted"


@dataclass(frozen=True)
class ReleasedFile:
    """One file of the release: its path in the repository, the tensor it holds (Haiku path,
    None for the tokenizer) and its bytes (the arrays' payload)."""

    path: str
    tensor: str | None
    bytes: int


def tensor_file_name(index: int) -> str:
    """xAI's name for the ``index``-th tensor of ``ckpt-0`` (its checkpoint.py's pattern)."""
    return f"ckpt-0/tensor{index:05d}_000"


def weight_of(tensor: str, config: MinGrokConfig) -> Weight:
    """The :class:`~mingrok.scale.Weight` a Haiku path names: a layer's module path without
    ``transformer/decoder_layer_<i>/`` and the parameter name, or the model's two ends."""
    module = tensor.removeprefix("params/").rsplit("/", 1)[0]
    by_name = {weight.name: weight for weight in weights(config)}
    if module == "language_model/rms_norm":
        return by_name["rms_norm (final)"]
    name = module.removeprefix("language_model/").split("/", 2)
    key = name[2] if name[0] == "transformer" and len(name) == 3 else "/".join(name)
    if key not in by_name:
        raise ValueError(f"tensor={tensor!r} is not a Grok-1 parameter path")
    return by_name[key]


def released_files(config: MinGrokConfig = GROK1) -> list[ReleasedFile]:
    """Every file ``download-grok1`` fetches for ``config``: ckpt-0's in order, the tokenizer."""
    from .released import checkpoint_names

    files = [
        ReleasedFile(tensor_file_name(i), name, weight_of(name, config).released_bytes())
        for i, name in enumerate(checkpoint_names(config))
    ]
    return [*files, ReleasedFile("tokenizer.model", None, TOKENIZER_BYTES)]


def describe(files: list[ReleasedFile]) -> str:
    """The dry run's listing: one line per file, then the totals."""
    lines = [f"{file.bytes:>15,d}  {file.path}  {file.tensor or ''}".rstrip() for file in files]
    tensors = [file for file in files if file.tensor]
    total = sum(file.bytes for file in files)
    largest = max(tensors, key=lambda file: file.bytes)
    lines += [
        f"{len(tensors)} tensor files + tokenizer.model: {total:,d} bytes = "
        f"{total / 2**30:.1f} GiB ({total / 1e9:.1f} GB; {PICKLE_FRAMING})",
        f"largest file: {largest.path} ({largest.tensor}), {largest.bytes:,d} bytes",
    ]
    return "\n".join(lines)


def download(out: Path) -> Path:
    """Fetch (or complete) ``ckpt-0/`` and ``tokenizer.model`` of xai-org/grok-1 into ``out``."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise OSError(
            "download-grok1 needs huggingface_hub: pip install 'mingrok[download]' "
            "(or pip install huggingface_hub)"
        ) from error
    return Path(snapshot_download(repo_id=REPOSITORY, allow_patterns=list(PATTERNS), local_dir=out))


def add_download_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download-grok1",
        help="download xAI's released Grok-1 weights (about 296 GiB) and tokenizer",
        description=(
            f"Download ckpt-0/ (770 pickles) and tokenizer.model of {REPOSITORY} from the "
            "Hugging Face hub into OUT with huggingface_hub's snapshot_download; run it again to "
            "resume an interrupted download. --dry-run lists the files and their bytes, computed "
            "from Grok-1's configuration, without the network. Then: torchrun --nproc-per-node 8 "
            "-m mingrok sample --grok1 OUT --tokenizer OUT/tokenizer.model --tensor-parallel "
            "--weights int8 --prompt '...'"
        ),
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="folder to download into")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the files and bytes; fetch nothing"
    )
    parser.set_defaults(run=run_download, threads=None)


def run_download(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out={args.out!r} is a file: it must be a folder (new or existing)")
    files = released_files()
    if args.dry_run:
        print(describe(files))
        print(f"would download into {out}")
        return 0
    print(describe(files).splitlines()[-2])
    print(f"downloading {REPOSITORY} into {download(out)}")
    return 0
