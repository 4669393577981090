import json

import pytest
import torch

import mingrok.checkpoint as checkpoint_module
from mingrok import MinGrok, __version__
from mingrok.checkpoint import (
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
)

from .conftest import overwrite_inside_tensor, tiny_config


def _saved(tmp_path, **changes):
    model = MinGrok(tiny_config(**changes)).eval()
    path = save_checkpoint(
        tmp_path / "model.safetensors", model, tokenizer_name="test-tok", metadata={"note": [1, 2]}
    )
    return model, path


def test_round_trip_gives_identical_logits_and_metadata(tmp_path):
    model, path = _saved(tmp_path)
    loaded = load_model(path)
    tokens = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, loaded(tokens).logits)
    checkpoint = read_checkpoint(path)
    assert checkpoint.config == model.config
    assert checkpoint.metadata["tokenizer"] == "test-tok"
    assert checkpoint.metadata["mingrok_version"] == __version__
    assert checkpoint.metadata["note"] == [1, 2]


def test_file_is_safetensors_not_a_pickle(tmp_path):
    _, path = _saved(tmp_path)
    raw = path.read_bytes()
    header_length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_length])
    assert header["__metadata__"]["format"] == checkpoint_module.FORMAT
    assert not raw.startswith(b"\x80")  # a pickle's protocol byte
    assert "model.embed.weight" in header


def test_loading_into_a_mismatched_config_names_the_first_differing_field(tmp_path):
    _, path = _saved(tmp_path)
    other = MinGrok(tiny_config(num_layers=3, max_seq_len=64))
    with pytest.raises(CheckpointError, match=r"num_layers=2.*num_layers=3"):
        load_model(path, other)


def test_truncated_file_gives_a_clear_error_and_leaves_files_intact(tmp_path):
    _model, path = _saved(tmp_path)
    good = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.safetensors")
    assert path.read_bytes() == good
    assert truncated.stat().st_size == len(good) // 2


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    model, path = _saved(tmp_path)
    good = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, tokenizer_name="test-tok")
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_other_safetensors_files_are_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a minGrok checkpoint"):
        read_checkpoint(path)


def test_training_tensors_round_trip_under_their_checkpoint_names():
    optimizer_state = {"layers.0.moe.w_gate": {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}}
    generators = {"data": torch.arange(4, dtype=torch.uint8)}
    tensors = checkpoint_module.training_tensors(optimizer_state, generators)
    assert sorted(tensors) == [
        "optimizer.layers.0.moe.w_gate.exp_avg",
        "optimizer.layers.0.moe.w_gate.step",
        "rng.data",
    ]
    assert checkpoint_module.split_training_tensors(tensors) == (optimizer_state, generators)


def test_four_bytes_overwritten_inside_a_tensor_are_refused(tmp_path):
    from safetensors.torch import load_file

    _, path = _saved(tmp_path)
    overwrite_inside_tensor(path, "model.layers.0.moe.w_gate", b"\x00\x00\xc0\x7f")  # a float32 NaN
    assert torch.isnan(load_file(path)["model.layers.0.moe.w_gate"]).any()  # safetensors reads it
    with pytest.raises(CheckpointError, match="is corrupt") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)
    with pytest.raises(CheckpointError, match="is corrupt"):
        load_model(path)


def test_a_finite_change_inside_a_tensor_is_refused_too(tmp_path):
    _, path = _saved(tmp_path)
    overwrite_inside_tensor(path, "model.embed.weight", b"\x00\x00\x80\x3f")  # 1.0: still a number
    with pytest.raises(CheckpointError, match="is corrupt"):
        read_checkpoint(path)


def test_the_checksum_covers_names_dtypes_shapes_and_bytes():
    tensors = {"a": torch.arange(6, dtype=torch.float32), "b": torch.ones(2, 2)}
    digest = checkpoint_module.tensor_checksum(tensors)
    reordered = {"b": torch.ones(4, 2)[::2], "a": torch.arange(6.0)}  # a strided view, other order
    assert checkpoint_module.tensor_checksum(reordered) == digest
    changed = [
        {"c": tensors["a"], "b": tensors["b"]},  # renamed
        {"a": tensors["a"].reshape(2, 3), "b": tensors["b"]},  # same bytes, another shape
        {"a": tensors["a"].view(torch.int32), "b": tensors["b"]},  # same bytes, another dtype
        {"a": tensors["a"] + torch.eye(1, 6)[0], "b": tensors["b"]},  # one value
    ]
    assert all(checkpoint_module.tensor_checksum(other) != digest for other in changed)


def test_a_checkpoint_without_a_checksum_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = MinGrok(tiny_config())
    path = tmp_path / "old.safetensors"
    tensors = {"model." + k: v.contiguous() for k, v in model.state_dict().items()}
    header = {"format": checkpoint_module.FORMAT, "config": model.config.to_json()}
    save_file(tensors, path, metadata=header)
    with pytest.raises(CheckpointError, match="no 'tensors_sha256'"):
        read_checkpoint(path)


def test_weights_saved_with_nan_are_refused_when_loaded(tmp_path):
    model = MinGrok(tiny_config())
    with torch.no_grad():
        model.layers[1].attention.query.weight[0, 0] = float("inf")
    path = save_checkpoint(tmp_path / "diverged.safetensors", model, tokenizer_name="test-tok")
    read_checkpoint(path)  # the file is exactly what was saved ...
    with pytest.raises(CheckpointError, match=r"layers\.1\.attention\.query\.weight.*diverged"):
        load_model(path)  # ... but no model can be made of it
