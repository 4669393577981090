"""mingrok.download: the dry run lists Grok-1's 770 released files with sizes computed from the
config, equal to chapter 10's total and to the sizes of files xAI's own code wrote, without the
network."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mingrok import GROK1
from mingrok.__main__ import main
from mingrok.download import TOKENIZER_BYTES, released_files
from mingrok.released import checkpoint_dir
from mingrok.scale import weight_bytes

from .conftest import REPO, fixture_path
from .test_parallel_load import fixture_config


def test_dry_run_lists_770_files_and_chapter_10s_bytes(capsys, tmp_path):
    assert main(["download-grok1", "--out", str(tmp_path / "grok-1"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = [line.split() for line in lines if line.split()[1].startswith("ckpt-0/")]
    assert len(files) == 770
    assert [f[1] for f in files[:2]] == ["ckpt-0/tensor00000_000", "ckpt-0/tensor00001_000"]
    sizes = [int(f[0].replace(",", "")) for f in files]
    assert sizes[1] == sizes[9] == 4 * 6144  # norms: the release's 24.7 kB files
    assert sizes[4] == 8 * 6144 * 32768 + 2 * 8 * 32768  # moe/linear_v: its 1.61 GB file
    assert sum(sizes) == weight_bytes(GROK1, "released")  # chapter 10's 296.4 GiB
    total = sum(sizes) + TOKENIZER_BYTES
    assert f"770 tensor files + tokenizer.model: {total:,d} bytes = 296.4 GiB" in lines[-3]
    assert not (tmp_path / "grok-1").exists()


def test_computed_sizes_are_the_payload_of_files_xais_code_wrote():
    config = fixture_config()
    folder = checkpoint_dir(fixture_path("grok1_ckpt_e"))
    listed = [file for file in released_files(config) if file.tensor]
    assert len(listed) == len(list(folder.iterdir())) == 2 + 12 * config.num_layers
    for file in listed:
        size = (folder / file.path.removeprefix("ckpt-0/")).stat().st_size
        assert file.bytes < size <= file.bytes + 400, (file, size)  # + the pickle's framing


def test_dry_run_never_imports_the_hub_client(tmp_path):
    code = (
        "import sys; from mingrok.__main__ import main; "
        f"main(['download-grok1', '--out', {str(tmp_path)!r}, '--dry-run']); "
        "assert 'huggingface_hub' not in sys.modules, 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_out_must_be_a_folder(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SystemExit):
        main(["download-grok1", "--out", str(file), "--dry-run"])
    assert f"--out={str(file)!r} is a file: it must be a folder" in capsys.readouterr().err
