import argparse
import dataclasses
import json
import subprocess
import sys

import pytest

from mingrok.__main__ import CHECKPOINT_NAME, HISTORY_NAME, MODEL_NAME, build_parser, main
from mingrok.checkpoint import read_checkpoint
from mingrok.train import TrainConfig

from .conftest import REPO, tiny_config

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
