"""TinyShakespeare is found (or fetched) only as the exact expected bytes; batches are reproducible.

Nothing here touches the network or the real user cache: downloads are file:// URLs or a patched
urlopen, and every test that searches runs in a temporary folder with its own cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from mingrok import data
from mingrok.data import (
    DATA_ENV_VAR,
    SHAKESPEARE_NUM_BYTES,
    SHAKESPEARE_SHA256,
    DataError,
    cache_path,
    find_shakespeare,
    load_shakespeare,
    place_shakespeare,
    random_batches,
    split_text,
)

from .conftest import shakespeare_path


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return shakespeare_path().read_bytes()


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """No env var, an empty cache, a cwd outside any project, and no checkout copy to find."""
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "CHECKOUT_ROOT", tmp_path / "no-checkout")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def corrupted(real: bytes) -> bytes:
    return real[:1000] + b"X" + real[1001:]


def test_the_real_file_has_the_published_checksum(real_bytes):
    assert len(real_bytes) == SHAKESPEARE_NUM_BYTES
    assert hashlib.sha256(real_bytes).hexdigest() == SHAKESPEARE_SHA256


def test_load_from_an_explicit_path(isolated):
    text = load_shakespeare(shakespeare_path())
    assert len(text) == 1_115_394
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


def test_split_is_by_characters_at_int_of_ninety_percent(real_bytes):
    text = real_bytes.decode("utf-8")
    train, val = split_text(text)
    assert len(train) == 1_003_854
    assert len(val) == 111_540
    assert train + val == text
    assert split_text("abcdefghij", 0.75) == ("abcdefg", "hij")  # int(7.5) = 7


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_split_rejects_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match=rf"train_fraction must be in \(0, 1\), got {fraction}"):
        split_text("abc", fraction)


def test_a_corrupted_copy_is_rejected(isolated, real_bytes):
    bad = isolated / "input.txt"
    bad.write_bytes(corrupted(real_bytes))
    with pytest.raises(
        DataError, match=rf"{re.escape(str(bad))} is not TinyShakespeare.*{SHAKESPEARE_SHA256}"
    ):
        load_shakespeare(bad)


def test_a_missing_explicit_path_is_an_error_not_a_fallback(isolated):
    with pytest.raises(DataError, match=r"nowhere\.txt, which is not a file"):
        find_shakespeare(isolated / "nowhere.txt")


def test_env_var_is_honoured(isolated, real_bytes, monkeypatch):
    copy = isolated / "elsewhere" / "tiny.txt"
    copy.parent.mkdir()
    copy.write_bytes(real_bytes)
    (isolated / "work" / "input.txt").write_bytes(real_bytes)  # the env var wins over this one
    monkeypatch.setenv(DATA_ENV_VAR, str(copy))
    assert find_shakespeare() == copy
    copy.write_bytes(corrupted(real_bytes))
    with pytest.raises(DataError, match=r"tiny\.txt is not TinyShakespeare"):
        load_shakespeare()
    monkeypatch.setenv(DATA_ENV_VAR, str(isolated / "missing.txt"))
    with pytest.raises(DataError, match=rf"\${DATA_ENV_VAR} names .*missing.txt"):
        load_shakespeare()


def test_search_walks_up_to_the_project_root_only(isolated, real_bytes, monkeypatch):
    project = isolated / "outer" / "project"
    (project / "chapters").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (isolated / "outer" / "input.txt").write_bytes(b"not shakespeare")  # above the root: ignored
    monkeypatch.chdir(project / "chapters")
    assert project / "input.txt" in data.candidate_paths()
    assert isolated / "outer" / "input.txt" not in data.candidate_paths()
    (project / "input.txt").write_bytes(real_bytes)
    assert find_shakespeare() == project / "input.txt"


def test_no_download_when_told_not_to(isolated, monkeypatch):
    monkeypatch.setattr(data, "SHAKESPEARE_URL", "http://unused.invalid/input.txt")
    with pytest.raises(DataError, match=r"not found and download=False(.|\n)*MINGROK_DATA"):
        find_shakespeare(download=False)


def test_cache_honours_xdg_cache_home(isolated):
    assert cache_path() == isolated / "cache" / "mingrok" / "input.txt"


def test_download_is_verified_cached_and_done_once(isolated, real_bytes, monkeypatch):
    source = isolated / "served.txt"
    source.write_bytes(real_bytes)
    monkeypatch.setattr(data, "SHAKESPEARE_URL", source.as_uri())
    assert load_shakespeare() == real_bytes.decode("utf-8")
    assert cache_path().read_bytes() == real_bytes
    assert [p.name for p in cache_path().parent.iterdir()] == ["input.txt"]  # no temp file left

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert find_shakespeare() == cache_path()


def test_a_wrong_download_is_not_cached(isolated, real_bytes, monkeypatch):
    source = isolated / "served.txt"
    source.write_bytes(corrupted(real_bytes))
    monkeypatch.setattr(data, "SHAKESPEARE_URL", source.as_uri())
    with pytest.raises(DataError, match=r"the download from file:.*not TinyShakespeare"):
        load_shakespeare()
    assert not cache_path().exists()


def test_a_failed_download_says_how_to_provide_the_file(isolated, monkeypatch):
    unreachable = (isolated / "absent.txt").as_uri()
    monkeypatch.setattr(data, "SHAKESPEARE_URL", unreachable)
    with pytest.raises(DataError) as raised:
        load_shakespeare()
    message = str(raised.value)
    assert f"Downloading TinyShakespeare from {unreachable} failed" in message
    assert "load_shakespeare(path=" in message
    assert "--data /path/to/input.txt" in message  # what a command-line user types
    assert f"{DATA_ENV_VAR}=/path/to/input.txt" in message
    assert str(cache_path()) in message
    assert SHAKESPEARE_SHA256 in message


def test_a_network_error_is_reported_with_the_canonical_url(isolated, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=rf"{data.SHAKESPEARE_URL} failed: .*no route to host"):
        load_shakespeare()


def test_place_copies_the_shared_file_and_is_idempotent(isolated, real_bytes):
    shared = isolated / "shared" / "input.txt"
    shared.parent.mkdir()
    shared.write_bytes(real_bytes)
    destination = isolated / "repo" / "input.txt"
    assert "copied from" in place_shakespeare(destination, shared_copy=shared)
    assert destination.read_bytes() == real_bytes
    assert "already in place" in place_shakespeare(destination, shared_copy=shared)
    destination.write_bytes(b"my own notes")
    with pytest.raises(DataError, match="not TinyShakespeare"):
        place_shakespeare(destination, shared_copy=shared)
    assert destination.read_bytes() == b"my own notes"  # never overwritten


def test_place_command_line(tmp_path, capsys):
    destination = tmp_path / "input.txt"
    assert data.main(["--place", str(destination)]) == 0
    assert hashlib.sha256(destination.read_bytes()).hexdigest() == SHAKESPEARE_SHA256
    assert "sha256 ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as raised:
        data.main(["--help"])
    assert raised.value.code == 0
    assert DATA_ENV_VAR in capsys.readouterr().out


def test_batches_are_shifted_windows_of_the_data():
    tokens = torch.arange(1000, dtype=torch.int32)
    inputs, targets = random_batches(tokens, 8, 16, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (8, 16)
    assert inputs.dtype == targets.dtype == torch.int64
    assert torch.equal(targets, inputs + 1)  # shifted by one position
    assert torch.equal(inputs - inputs[:, :1], torch.arange(16).expand(8, 16))  # contiguous
    assert int(inputs.min()) >= 0 and int(targets.max()) <= 999


def test_batches_depend_only_on_the_generator():
    tokens = torch.randint(0, 128, (5000,), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    first = random_batches(tokens, 4, 32, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is untouched
    again = random_batches(tokens, 4, 32, torch.Generator().manual_seed(7))
    other = random_batches(tokens, 4, 32, torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    # The seed's get_batch drew its starts the same way: randint(len - T, (B,)).
    starts = torch.randint(len(tokens) - 32, (4,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(first[0][:, 0], tokens[starts].long())


def test_the_longest_window_fits_exactly():
    inputs, targets = random_batches(torch.arange(10), 3, 9, torch.Generator().manual_seed(0))
    assert torch.equal(inputs, torch.arange(9).expand(3, 9))
    assert torch.equal(targets, torch.arange(1, 10).expand(3, 9))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq_len": 10}, r"seq_len=10 is too long for 10 tokens.*seq_len must be <= 9"),
        ({"seq_len": 0}, r"seq_len must be an integer >= 1, got 0"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.0}, r"batch_size must be an integer >= 1, got 2.0"),
        ({"tokens": torch.zeros(2, 10, dtype=torch.long)}, r"1-D tensor .*\(2, 10\)"),
        ({"tokens": torch.zeros(10)}, r"integer ids, got dtype torch.float32"),
    ],
)
def test_batch_arguments_are_validated(kwargs, message):
    arguments = {"tokens": torch.arange(10), "batch_size": 2, "seq_len": 4}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        random_batches(**arguments, generator=torch.Generator().manual_seed(0))


def test_batches_need_an_explicit_generator():
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator, got NoneType"):
        random_batches(torch.arange(10), 2, 4, None)


def test_a_command_run_anywhere_in_a_clone_finds_its_top_level_copy(isolated, real_bytes):
    """`make book` and `make test` put input.txt at the root of the clone; `python -m mingrok`
    started from any folder inside it (here two levels down; the checkout root is elsewhere) finds
    it."""
    clone = isolated / "clone"
    (clone / "mingrok" / "pretrained").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    (clone / "input.txt").write_bytes(real_bytes)
    for folder in (clone, clone / "mingrok" / "pretrained"):
        os.chdir(folder)
        assert find_shakespeare(download=False) == clone / "input.txt"
