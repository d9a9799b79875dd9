"""Audio for ASR tests: committed espeak fixtures, Debian's LibriVox clips, sox noise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


def load(path: Path) -> np.ndarray:
    audio, sr = sf.read(str(path), dtype="float32")
    assert sr == SR and audio.ndim == 1
    return audio


def espeak_clips() -> list[tuple[str, np.ndarray, str]]:
    rows = [line.split("\t") for line in (FIXTURES / "transcripts.tsv").read_text().splitlines() if line]
    return [(name, load(FIXTURES / f"{name}.flac"), text) for name, text in rows]


def librivox_clips() -> list[tuple[str, np.ndarray, str]]:
    """Five LibriVox utterances with transcripts (pocketsphinx-testdata; .ci/run installs it)."""
    d = POCKETSPHINX / "librivox"
    if not d.is_dir():
        pytest.skip("pocketsphinx-testdata is not installed (apt-get install pocketsphinx-testdata)")
    out = []
    for line in (d / "transcription").read_text().splitlines():
        name = line.rpartition("(")[2].strip(") ")
        out.append((name, load(d / f"{name}.wav"), _strip_markers(line)))
    return out


def _strip_markers(line: str) -> str:
    """'<s> ten of clubs </s> (001)' -> 'ten of clubs'."""
    return line.rpartition("(")[0].replace("<s>", "").replace("</s>", "").strip()


def cards_clips() -> list[tuple[str, np.ndarray, str]]:
    d = POCKETSPHINX / "cards"
    if not d.is_dir():
        pytest.skip("pocketsphinx-testdata is not installed")
    names = (d / "cards.fileids").read_text().split()
    texts = [_strip_markers(line) for line in (d / "cards.transcription").read_text().splitlines() if line.strip()]
    return [(f"cards-{n}", load(d / f"{n}.wav"), t) for n, t in zip(names, texts)]


def raw_clips() -> list[tuple[str, np.ndarray]]:
    """The three headerless 16 kHz 16-bit clips (no transcripts shipped)."""
    out = []
    for name in ("goforward", "numbers", "something"):
        p = POCKETSPHINX / f"{name}.raw"
        if p.is_file():
            out.append((name, np.fromfile(p, dtype="<i2").astype(np.float32) / 32768.0))
    return out


def sox_noise(kind: str, seconds: float, volume: float = 0.3, seed: int = 7) -> np.ndarray:
    """pinknoise / whitenoise / brownnoise from sox, or digital silence."""
    if kind == "silence":
        return np.zeros(int(seconds * SR), np.float32)
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    raw = subprocess.run(["sox", "-R", "-n", "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-",
                          "synth", str(seconds), kind, "vol", str(volume)], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)
