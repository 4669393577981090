"""Grok-1's released checkpoint format: the fixture written by xAI's own checkpoint.py is read as
it is, refused where it is broken or hostile, and written back byte for byte; checkpoints of other
shapes round-trip."""

import json
import os
import pickle
import pickletools
import shutil
import subprocess

import numpy as np
import pytest
import torch

from mingrok import GROK1, MinGrok
from mingrok.grok1 import config_from_grok1, haiku_to_torch_names, save_checkpoint_released
from mingrok.released import (
    ALLOWED_GLOBALS,
    CheckpointError,
    QuantizedWeight8bit,
    TensorHeader,
    UnsafeCheckpointError,
    checkpoint_names,
    encode_tensor,
    file_name,
    iter_checkpoint,
    quantize,
    read_header,
    read_tensor,
    tensor_specs,
    write_checkpoint,
)

from .conftest import fixture_path, tiny_config

FIXTURE = "grok1_ckpt_e"


@pytest.fixture(scope="module")
def fixture_dir():
    return fixture_path(FIXTURE)


@pytest.fixture(scope="module")
def meta(fixture_dir):
    return json.loads(str(np.load(fixture_dir / "reference.npz")["meta_json"]))


@pytest.fixture(scope="module")
def config(meta):
    return config_from_grok1(meta["config"]["lm"], meta["config"]["model"])


@pytest.fixture(scope="module")
def released(fixture_dir, config):
    return dict(iter_checkpoint(fixture_dir, config))


@pytest.fixture
def copy(fixture_dir, tmp_path):
    """A writable copy of the fixture's ckpt-0 folder."""
    return shutil.copytree(fixture_dir / "ckpt-0", tmp_path / "ckpt-0")


def test_file_order_is_xais_tree_flatten_order(meta, config):
    assert checkpoint_names(config) == [
        name.removeprefix("params/") for name in meta["tensor_names"]
    ]


def test_grok1s_770_files_sort_layer_10_before_layer_2():
    """The release's own facts: 770 files, file 1 and file 9 norms of 24.6 kB, file 4 an expert
    matrix of 1.61 GB; the string sort puts layers 10-19 between layers 1 and 2."""
    specs = tensor_specs(GROK1)
    assert len(specs) == 770 == 2 + 12 * 64
    assert [specs[i].name for i in (1, 9)] == [
        "language_model/rms_norm/scale",
        "transformer/decoder_layer_0/rms_norm/scale",
    ]
    assert specs[1].shape == specs[9].shape == (6144,)
    assert specs[4].name == "transformer/decoder_layer_0/moe/linear_v/w"
    assert np.prod(specs[4].shape) == 8 * 6144 * 32768  # 1.61e9 int8 values
    layers = [spec.name.split("/")[1] for spec in specs[2::12]]
    assert layers[:4] == [
        "decoder_layer_0",
        "decoder_layer_1",
        "decoder_layer_10",
        "decoder_layer_11",
    ]
    assert layers.index("decoder_layer_2") == 12 and layers[-1] == "decoder_layer_9"
    assert sorted(checkpoint_names(GROK1)) == sorted(haiku_to_torch_names(GROK1))


def test_fixture_tensors_are_what_the_readme_says(released, meta):
    for name, value in released.items():
        kind = meta["quantized"]["params/" + name]
        if kind is None:
            assert isinstance(value, np.ndarray) and value.dtype == np.float32, name
            continue
        assert isinstance(value, QuantizedWeight8bit), name
        assert value.weight.dtype == torch.int8 and value.scales.dtype == torch.bfloat16
        assert value.groups == (8 if kind == "rows" else 1), name  # row-split: a block per shard
        # the int8 range is used to the full in every block column: max |q| = 127, never -128
        *lead, k, n = value.shape
        blocks = value.weight.reshape(*lead, value.groups, k // value.groups, n)
        assert (blocks.abs().amax(dim=-2) == 127).all() and value.weight.min() == -127, name


def fixture_globals(path) -> set[str]:
    """The globals a pickle names, read from its opcodes without loading it: STACK_GLOBAL takes the
    two strings pushed before it, each written out or fetched from the memo."""
    pushed, memo, names = [], [], set()
    for opcode, arg, _ in pickletools.genops(path.read_bytes()):
        if opcode.name == "MEMOIZE":
            memo.append(pushed[-1])
        elif opcode.name == "BINGET":
            pushed.append(memo[arg])
        elif opcode.name == "STACK_GLOBAL":
            pushed.append(".".join(pushed[-2:]))
            names.add(pushed[-1])
        else:
            pushed.append(arg if opcode.name.endswith("BINUNICODE") else None)
    return names


def test_fixture_names_only_allowed_globals(fixture_dir):
    named = set().union(*(fixture_globals(p) for p in (fixture_dir / "ckpt-0").iterdir()))
    assert named == {
        "numpy.core.multiarray._reconstruct",
        "numpy.ndarray",
        "numpy.dtype",
        "__main__.QuantizedWeight8bit",
        "ml_dtypes.bfloat16",
    }
    assert named < set(ALLOWED_GLOBALS)


def test_writer_reproduces_every_fixture_file_byte_for_byte(released, fixture_dir, tmp_path):
    folder = write_checkpoint(released, tmp_path)
    assert folder == tmp_path / "ckpt-0"
    originals = sorted((fixture_dir / "ckpt-0").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in originals]
    for original in originals:
        assert (folder / original.name).read_bytes() == original.read_bytes(), original.name


def test_writer_frames_large_arrays_as_cpythons_pickler(tmp_path):
    """Above 64 KiB a payload leaves the frame: the opcodes equal pickle.dumps' for numpy arrays,
    apart from numpy 2's module name ``numpy._core``."""

    def opcodes(data):
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "FRAME":
                arg = None  # the module names differ in length by one
            elif arg == "numpy._core.multiarray":
                arg = "numpy.core.multiarray"
            yield opcode.name, arg

    rng = np.random.default_rng(0)
    for size in (1000, 16383, 16384, 70_000):
        array = rng.standard_normal(size).astype(np.float32)
        assert list(opcodes(encode_tensor(array))) == list(opcodes(pickle.dumps(array, 4)))
    big = quantize(torch.randn(4, 128, 160), 8)  # an 80 kB int8 payload, then the scales
    again = read_tensor_bytes(encode_tensor(big), tmp_path)
    assert torch.equal(again.weight, big.weight) and torch.equal(again.scales, big.scales)


def read_tensor_bytes(data: bytes, folder) -> np.ndarray | QuantizedWeight8bit:
    path = folder / "tensor"
    path.write_bytes(data)
    return read_tensor(path)


def test_quantiser_reproduces_the_fixtures_int8(released):
    """The release's rule, s = bf16(max|W| / 127) per block column and q = round(W / s): fed the
    fixture's q·s (in float32), it gives back the fixture's q and s exactly."""
    for name, value in released.items():
        if isinstance(value, QuantizedWeight8bit):
            *lead, k, n = value.shape
            blocks = value.weight.reshape(*lead, value.groups, k // value.groups, n).float()
            exact = (blocks * value.scales.float().unsqueeze(-2)).reshape(value.shape)
            again = quantize(exact, value.groups)
            assert torch.equal(again.weight, value.weight), name
            assert torch.equal(again.scales, value.scales), name


def test_dequantize_rounds_the_product_to_bfloat16():
    q = torch.tensor([[127, -3], [5, 101]], dtype=torch.int8)
    s = torch.tensor([[0.0123, 0.77]], dtype=torch.bfloat16)
    weight = QuantizedWeight8bit(q, s)
    exact = q.float() * s.float()
    assert torch.equal(weight.dequantize(), exact.bfloat16().float())
    assert not torch.equal(weight.dequantize(), exact)  # 127 · 0.0123 needs more than 8 bits
    blocks = QuantizedWeight8bit(q, torch.tensor([[1.0, 2.0], [3.0, 4.0]]).bfloat16())
    assert blocks.dequantize().tolist() == [[127, -6], [15, 404]]  # one scale row per block


def test_quantised_weight_refuses_mismatched_parts():
    q = torch.zeros(8, 4, dtype=torch.int8)
    with pytest.raises(ValueError, match=r"scales \(3, 4\) do not fit weight \(8, 4\)"):
        QuantizedWeight8bit(q, torch.ones(3, 4, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="must be a bfloat16 tensor"):
        QuantizedWeight8bit(q, torch.ones(1, 4))
    with pytest.raises(ValueError, match="must be an int8 tensor"):
        QuantizedWeight8bit(q.float(), torch.ones(1, 4, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match=r"splits into 3 blocks; got shape \(8, 4\)"):
        quantize(torch.ones(8, 4), 3)


# --- refusals ------------------------------------------------------------------------------


class _Payload:
    """A pickle whose loading calls ``function(*args)``, as an attacker would write it."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def hostile_payloads(marker) -> list[_Payload]:
    return [
        _Payload(os.system, f"touch {marker}"),
        _Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        _Payload(subprocess.check_call, ["touch", str(marker)]),
    ]


@pytest.mark.parametrize("which", range(3), ids=["os.system", "builtins.eval", "subprocess"])
def test_hostile_global_is_refused_without_running(tmp_path, which):
    marker = tmp_path / "ran"
    attack = hostile_payloads(marker)[which]
    name = f"{attack.function.__module__}.{attack.function.__name__}"  # posix.system on Linux
    payload = pickle.dumps(attack, protocol=4)
    path = tmp_path / file_name(0)
    path.write_bytes(payload)
    with pytest.raises(UnsafeCheckpointError) as refused:
        read_tensor(path)
    assert f"{path} names the global {name}, " in str(refused.value)
    assert "refused without running it" in str(refused.value)
    assert not marker.exists()
    pickle.loads(payload)  # what xAI's loader does with the same file: the attack runs
    assert marker.exists()


def test_hostile_global_inside_a_quantised_weight_is_refused(copy, config, tmp_path):
    """The allowed class may carry an attack in its state: it is refused there too."""
    marker = tmp_path / "ran"
    original = (copy / file_name(5)).read_bytes()
    body = original[11:]  # without PROTO and the FRAME header (frames are optional)
    attack = pickle.dumps(_Payload(os.system, f"touch {marker}"), protocol=2)[2:-1]
    start = body.index(b"weight") + len(b"weight") + 1  # after the key and its MEMOIZE
    (copy / file_name(5)).write_bytes(original[:2] + body[:start] + attack + body[start:])
    with pytest.raises(UnsafeCheckpointError, match=rf"{file_name(5)} names the global posix"):
        list(iter_checkpoint(copy, config))
    assert not marker.exists()


def test_truncated_file(copy, config):
    path = copy / file_name(3)
    path.write_bytes(path.read_bytes()[:10_000])
    with pytest.raises(CheckpointError, match=rf"{file_name(3)} is truncated \(pickle data was"):
        list(iter_checkpoint(copy, config))


def test_corrupt_data_length(copy, config):
    path = copy / file_name(1)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"K\x01K \x85", b"K\x01K!\x85", 1))  # shape (32,) → (33,)
    with pytest.raises(CheckpointError, match=r"needs 132 bytes of data; it has 128"):
        read_tensor(path)


def test_missing_file(copy, config):
    (copy / file_name(7)).unlink()
    with pytest.raises(
        CheckpointError,
        match=r"holds 37 tensor files; a 3-layer config needs 38 .*missing tensor00007_000",
    ):
        next(iter_checkpoint(copy.parent, config))


def test_wrong_file_count(fixture_dir, config):
    with pytest.raises(
        CheckpointError,
        match=r"holds 38 tensor files; a 2-layer config needs 26 .*unexpected tensor00026_000",
    ):
        next(iter_checkpoint(fixture_dir, config.replace(num_layers=2)))


def test_wrong_shapes_name_the_parameter_and_both_shapes(fixture_dir, config):
    with pytest.raises(
        CheckpointError,
        match=r"tensor00000_000 holds language_model/in_out_embed/embeddings as float32 "
        r"\(96, 32\); the config needs float32 \(100, 32\)",
    ):
        next(iter_checkpoint(fixture_dir, config.replace(vocab_size=100)))
    with pytest.raises(
        CheckpointError,
        match=r"tensor00002_000 holds transformer/decoder_layer_0/moe/linear/w with shape "
        r"\(8, 32, 88\) \(scales \(8, 1, 88\)\); the config needs \(4, 32, 88\)",
    ):
        list(iter_checkpoint(fixture_dir, config.replace(num_experts=4)))


def test_every_header_is_checked_before_any_array_is_read(tmp_path):
    """A download truncated in its last file is refused before the first value comes out: the
    header scan reads each file's shapes and skips its large arrays, whose length must fit the
    file (here a 262 kB embedding and 74 kB expert matrices)."""
    config = tiny_config(vocab_size=4096, d_model=16, num_q_heads=2, head_dim=8, widening_factor=6)
    folder = save_checkpoint_released(MinGrok(config), tmp_path)
    header = read_header(folder / file_name(0))
    assert header == TensorHeader((4096, 16), None)
    assert read_header(folder / file_name(2)) == TensorHeader((4, 16, 64), (4, 1, 64))
    last = folder / file_name(len(checkpoint_names(config)) - 1)
    for path in (folder / file_name(2), last):  # a skipped payload, then a read one
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match=rf"{path.name} is truncated \(pickle data was"):
            next(iter_checkpoint(folder, config))
        path.write_bytes(data)


def test_headers_are_what_the_files_hold(fixture_dir, released):
    for index, value in enumerate(released.values()):
        assert read_header(fixture_dir / "ckpt-0" / file_name(index)) == TensorHeader.of(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], r"opcode b'\]' at byte \d+, which the release never uses"),  # EMPTY_LIST
        (_Payload(np.ndarray, (3,)), r"a call of numpy.ndarray, not a release object"),
        (_Payload(np.dtype, "f8"), r"dtype 'f8' is not one the release uses"),
    ],
)
def test_what_the_release_never_holds_is_refused(tmp_path, value, message):
    path = tmp_path / file_name(0)
    path.write_bytes(pickle.dumps(value, protocol=4))
    with pytest.raises(
        CheckpointError, match=rf"{path.name} is corrupt or not a released .*{message}"
    ):
        read_tensor(path)


def test_unlisted_dtype_is_refused(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(pickle.dumps(np.zeros(3), protocol=4))  # float64
    with pytest.raises(CheckpointError, match=r"dtype 'f8' is not one the release uses"):
        read_tensor(path)


def test_writer_refuses_a_folder_with_files_and_other_dtypes(released, fixture_dir, tmp_path):
    with pytest.raises(CheckpointError, match="already holds 38 tensor files"):
        write_checkpoint(released, fixture_dir)
    bad = dict(released)
    bad["language_model/rms_norm/scale"] = np.zeros(32)
    with pytest.raises(ValueError, match=r"language_model/rms_norm/scale: .* float32 array"):
        write_checkpoint(bad, tmp_path)


# --- other shapes round-trip -----------------------------------------------------------------

OTHER_CONFIGS = {
    # 12 layers: the string sort puts decoder_layer_10 and _11 between _1 and _2
    "12-layers": tiny_config(num_layers=12, d_model=16, head_dim=8, num_q_heads=2, num_kv_heads=1),
    "hd-ne-D-gqa3": tiny_config(d_model=40, num_q_heads=6, num_kv_heads=2, head_dim=8),
    "mqa": tiny_config(d_model=32, num_q_heads=4, num_kv_heads=1, head_dim=8, num_experts=8),
    "4-experts-top-3": tiny_config(num_experts=4, num_experts_per_token=3, head_dim=16),
}


@pytest.mark.parametrize("config", OTHER_CONFIGS.values(), ids=OTHER_CONFIGS.keys())
def test_other_configs_round_trip(config, tmp_path):
    model = MinGrok(config)
    names = haiku_to_torch_names(config)
    folder = save_checkpoint_released(model, tmp_path)
    assert len(list(folder.iterdir())) == 2 + 12 * config.num_layers
    state = model.state_dict()
    for index, (name, value) in enumerate(iter_checkpoint(folder, config)):
        assert name == checkpoint_names(config)[index]
        torch_name, transpose = names[name]
        expected = state[torch_name].t() if transpose else state[torch_name]
        if isinstance(value, np.ndarray):  # stored exactly
            assert torch.equal(torch.from_numpy(value), expected), name
            continue
        groups = 8 if name.endswith(("attention/linear/w", "moe/linear_1/w")) else 1
        assert value.groups == groups, name
        # what was written is read back exactly: q within half a step s of the float weight,
        # and xAI's bfloat16 product q·s one more rounding (at most half a bfloat16
        # step, 2^-8 of |q·s|) away
        assert torch.equal(value.weight, quantize(expected, groups).weight), name
        k = value.shape[-2]
        step = value.scales.float().repeat_interleave(k // groups, dim=-2)
        exact = value.weight.float() * step
        assert ((exact - expected).abs() <= 0.5 * step).all(), name
        assert ((value.dequantize() - exact).abs() <= exact.abs() * 2**-8).all(), name
    if config.num_layers > 10:
        assert checkpoint_names(config)[2 + 12 * 2].startswith("transformer/decoder_layer_10/")
