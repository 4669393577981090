import argparse
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mingrok import MinGrok, generate
from mingrok.__main__ import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    MODEL_NAME,
    SAMPLE_THREADS,
    build_parser,
    main,
)
from mingrok.checkpoint import read_checkpoint
from mingrok.grok1 import config_from_grok1, grok1_fields, load_checkpoint, save_checkpoint_released
from mingrok.train import TrainConfig

from .conftest import REPO, fixture_path, overwrite_inside_tensor, tiny_config

TINY_TRAIN = ["--steps", "6", "--batch-size", "2", "--warmup-steps", "2", "--eval-interval", "3"]
TINY_EVAL = ["--eval-windows", "4", "--quiet", "--device", "cpu"]


@pytest.fixture
def tiny_config_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(tiny_config(vocab_size=128, max_seq_len=16).to_json())
    return path


def test_train_then_eval_then_sample_end_to_end(tmp_path, tiny_config_file, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["train", "--config", str(tiny_config_file), "--out", str(out), *TINY_TRAIN, *TINY_EVAL]
        )
        == 0
    )
    assert {p.name for p in out.iterdir()} == {CHECKPOINT_NAME, MODEL_NAME, HISTORY_NAME}
    history = json.loads((out / HISTORY_NAME).read_text())
    assert history["eval_step"] == [3, 6]
    summary = read_checkpoint(out / MODEL_NAME).metadata["summary"]
    assert summary["steps"] == 6
    assert summary["val_nats_per_char"] == pytest.approx(history["val_nats_per_char"][-1], abs=1e-3)
    assert summary["command"].startswith("python -m mingrok train --config")
    losses = history["train_loss"]  # 6 steps: all within the last 50
    assert summary["train_loss_last_50_steps"] == pytest.approx(sum(losses) / 6, abs=1e-3)
    capsys.readouterr()

    assert main(["eval", "--checkpoint", str(out), "--max-windows", "4", "--device", "cpu"]) == 0
    assert "nats/char" in capsys.readouterr().out

    args = ["sample", "--checkpoint", str(out / MODEL_NAME), "--prompt", "ROMEO:", "--seed", "1"]
    assert main([*args, "--max-new-tokens", "12", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert greedy.startswith("ROMEO:")
    assert main([*args, "--max-new-tokens", "12", "--temperature", "0", "--no-cache"]) == 0
    assert capsys.readouterr().out == greedy


def test_resume_continues_and_a_used_output_folder_is_not_overwritten(tmp_path, tiny_config_file):
    out = tmp_path / "run"
    base = ["train", "--config", str(tiny_config_file), "--out", str(out), *TINY_EVAL]
    assert main(base + TINY_TRAIN) == 0
    first = read_checkpoint(out / CHECKPOINT_NAME).metadata["step"]
    with pytest.raises(SystemExit) as exit_info:
        main(base + TINY_TRAIN)
    assert exit_info.value.code == 2
    steps = ["--steps", "9", "--batch-size", "2", "--warmup-steps", "2", "--eval-interval", "3"]
    assert main([*base, *steps, "--resume"]) == 0
    assert (first, read_checkpoint(out / CHECKPOINT_NAME).metadata["step"]) == (6, 9)


def test_help_reads_well_and_lists_every_command():
    help_text = build_parser().format_help()
    for command in ("train", "sample", "eval"):
        assert command in help_text
    result = subprocess.run(
        [sys.executable, "-m", "mingrok", "train", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--resume" in result.stdout and "nats" in result.stdout
    # --data's default is a search, described as one: nothing has been looked for yet
    assert "(found)" not in result.stdout and "$MINGROK_DATA" in result.stdout


def test_train_options_are_the_train_config_fields_with_their_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: help text is not wrapped
    parser = build_parser()
    args = parser.parse_args(["train", "--out", "x"])
    fields = dataclasses.fields(TrainConfig)
    assert {f.name: getattr(args, f.name) for f in fields} == TrainConfig().to_dict()
    args = parser.parse_args(["train", "--out", "x", "--lr", "0.01", "--eval-windows", "3"])
    assert (args.learning_rate, args.eval_windows) == (0.01, 3)
    assert parser.parse_args(["train", "--out", "x", "--beta2", "0.9"]).beta2 == 0.9
    help_text = _subcommand_help(parser, "train")
    for field in fields:
        assert f"--{field.name.replace('_', '-')}" in help_text
        assert field.metadata["help"] in help_text


def _subcommand_help(parser, name: str) -> str:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name].format_help()


def test_bad_values_give_an_error_message_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--checkpoint", str(tmp_path / "nothing.safetensors")])
    assert exit_info.value.code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-3", "2.5", "many"])
def test_bad_thread_counts_are_refused_like_any_bad_number(bad, capsys):
    for command in (["sample"], ["eval"], ["train", "--out", "never-written"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--threads", bad])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert f"argument --threads: expected a whole number of at least 1, got '{bad}'" in error
        assert "Traceback" not in error


def test_sample_with_int8_weights_and_its_refusals(capsys):
    greedy = ["sample", "--max-new-tokens", "24", "--temperature", "0"]
    assert main([*greedy, "--weights", "int8"]) == 0
    int8_text = capsys.readouterr().out
    assert main(greedy) == 0
    assert int8_text == capsys.readouterr().out  # the shipped model's choices survive int8
    with pytest.raises(SystemExit) as exit_info:
        main([*greedy, "--weights", "int8", "--no-cache"])
    assert exit_info.value.code == 2
    assert "error: weights='int8' needs the fused decoder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*greedy, "--weights", "int4"])
    assert "argument --weights: invalid choice: 'int4'" in capsys.readouterr().err


def test_sampling_defaults_to_one_thread_and_batches_to_torchs_default():
    parser = build_parser()
    assert parser.parse_args(["sample"]).threads == SAMPLE_THREADS == 1
    assert parser.parse_args(["eval"]).threads is None  # torch's own: one per core
    assert parser.parse_args(["train", "--out", "x"]).threads is None


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "--temperature", "0", "--max-new-tokens", "3"],
        ["sample", "--max-new-tokens", "3"],
        ["eval", "--max-windows", "3"],
    ],
)
def test_a_corrupted_checkpoint_is_refused_with_the_file_named(command, tmp_path, capsys):
    from mingrok import MinGrok
    from mingrok.checkpoint import save_checkpoint
    from mingrok.tokenizer import MinGrokTokenizer

    model = MinGrok(tiny_config(vocab_size=128, max_seq_len=16))
    path = save_checkpoint(
        tmp_path / "model.safetensors", model, tokenizer_name=MinGrokTokenizer().name
    )
    overwrite_inside_tensor(path, "model.layers.0.moe.w_out", b"\x00\x00\xc0\x7f")  # a NaN
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--checkpoint", str(path)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert f"error: checkpoint {str(path)!r} is corrupt" in captured.err
    assert "nats/char" not in captured.out


def test_sample_streams_tokens_while_it_is_still_generating():
    """A long request shows text long before it ends: read the first tokens, then stop it."""
    prompt = "ROMEO:"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mingrok",
            "sample",
            "--prompt",
            prompt,
            "--max-new-tokens",
            "1000000",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        text = b""
        while len(text) < len(prompt) + 40:
            chunk = process.stdout.read1(4096)
            assert chunk, "sample exited before streaming 40 characters"
            text += chunk
        assert process.poll() is None  # a million tokens take minutes: it is still running
    finally:
        process.kill()
        process.wait()
    assert text.decode().startswith(prompt) and len(text.decode().strip()) > len(prompt)


# --- sample --grok1: a checkpoint in the format xAI released Grok-1 in ---


@pytest.fixture(scope="module")
def released_fixture(tmp_path_factory):
    """The shared released-format checkpoint and its config as a --grok1-config file (the
    ``config`` of its metadata, grok-1's field names plus the fixture's own keys)."""
    path = fixture_path("grok1_ckpt_e")
    raw = json.loads(str(np.load(path / "reference.npz")["meta_json"]))["config"]
    config_file = tmp_path_factory.mktemp("grok1") / "config.json"
    config_file.write_text(json.dumps(raw))
    return path, config_file, config_from_grok1(raw["lm"], raw["model"])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sample_from_a_released_checkpoint_is_generate_on_load_checkpoint(
    released_fixture, dtype, capsys
):
    path, config_file, config = released_fixture
    folder = path if dtype == "float32" else path / "ckpt-0"  # either folder names it
    options = ["--grok1", str(folder), "--grok1-config", str(config_file), "--grok1-dtype", dtype]
    greedy = ["--prompt-ids", "41,20,13,19", "--temperature", "0", "--max-new-tokens", "12"]
    assert main(["sample", *options, *greedy]) == 0
    printed = [int(token) for token in capsys.readouterr().out.split()]
    model = load_checkpoint(path, config, dtype=getattr(torch, dtype))
    assert printed == [41, 20, 13, 19, *generate(model, [41, 20, 13, 19], 12, temperature=0)]


def test_sample_from_a_released_checkpoint_with_grok1s_tokenizer(tmp_path, capsys):
    """A random model with Grok-1's vocabulary, written in the released format: the text printed
    token by token is the tokenizer's decoding of all the ids (SentencePiece puts a word's space
    in its piece, so decoding one piece at a time would lose the spaces)."""
    from mingrok.tokenizer import Grok1Tokenizer

    tokenizer_path = fixture_path("grok1_tokenizer.model")
    config = tiny_config(vocab_size=131072, d_model=16, num_layers=1, num_q_heads=2, head_dim=8)
    torch.manual_seed(1)  # a model whose greedy words start with a space ('▁Catarina')
    save_checkpoint_released(MinGrok(config), tmp_path)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(grok1_fields(config)))
    options = ["--grok1", str(tmp_path), "--grok1-config", str(config_file)]
    prompt = ["--tokenizer", str(tokenizer_path), "--prompt", "To be, or not to be"]
    assert main(["sample", *options, *prompt, "--temperature", "0", "--max-new-tokens", "8"]) == 0
    tokenizer = Grok1Tokenizer(tokenizer_path)
    prompt_ids = tokenizer.encode("To be, or not to be")
    new_ids = generate(load_checkpoint(tmp_path, config), prompt_ids, 8, temperature=0)
    assert any(tokenizer.piece(token_id).startswith("▁") for token_id in new_ids)
    assert capsys.readouterr().out == tokenizer.decode(prompt_ids + new_ids) + "\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--prompt-ids", "5"], "a 64-layer config needs 770"),  # Grok-1's config by default
        (["--grok1-config", "{config}"], "--grok1 needs --tokenizer FILE"),
        (["--grok1-config", "{config}", "--prompt-ids", "5,96"], "--prompt-ids holds 96; the "),
        (["--grok1-config", "{config}", "--tokenizer", "{tokenizer}"], "has 131072 pieces; the "),
        (["--grok1-config", "{bad}", "--prompt-ids", "5"], "is not JSON"),
        (["--grok1-config", "{empty}", "--prompt-ids", "5"], 'must hold {"lm": {...}, "model"'),
        (["--checkpoint", "x", "--prompt-ids", "5"], "--checkpoint and --grok1 each name a model"),
    ],
)
def test_sample_grok1_refusals(released_fixture, tmp_path, options, message, capsys):
    path, config_file, _ = released_fixture
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "empty.json").write_text("{}")
    names = dict(
        config=config_file,
        tokenizer=fixture_path("grok1_tokenizer.model"),
        bad=tmp_path / "bad.json",
        empty=tmp_path / "empty.json",
    )
    options = [option.format(**names) for option in options]
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--grok1", str(path), *options])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grok1-config", "c.json"], "error: --grok1-config goes with --grok1 DIR"),
        (["--tokenizer", "t.model"], "error: --tokenizer goes with --grok1 DIR"),
        (["--grok1-dtype", "bfloat16"], "error: --grok1-dtype goes with --grok1 DIR"),
        (["--prompt-ids", "5,x"], "argument --prompt-ids: expected comma-separated token ids"),
        (["--prompt-ids", "5,128"], "error: --prompt-ids holds 128; the model's ids are 0..127"),
        (["--grok1", "missing", "--prompt-ids", "5"], "error: missing/ckpt-0 is not a folder"),
    ],
)
def test_sample_grok1_options_are_checked(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", *options])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
