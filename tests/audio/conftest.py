"""Audio fixtures, made with sox at test time: nothing binary is checked in."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SOX = shutil.which("sox")

# Every matrix file: channel 1 a 440 Hz tone, channel 2 (if any) a 1 kHz tone, others silent.
TONE_A = (440.0, 0.5)
TONE_B = (1000.0, 0.25)
MATRIX_SECONDS = 2.0

_ENCODINGS = {
    "s16": ["-b", "16", "-e", "signed-integer"],
    "s24": ["-b", "24", "-e", "signed-integer"],
    "s32": ["-b", "32", "-e", "signed-integer"],
    "f32": ["-b", "32", "-e", "floating-point"],
}


def sox(*args: str | Path) -> None:
    if SOX is None:
        pytest.skip("sox is not installed (Debian: apt-get install sox libsox-fmt-all)")
    # -D: no dither, so lossless files hold exactly the tones asked for.
    subprocess.run([SOX, "-D", *map(str, args)], check=True, capture_output=True)


def synth(
    path: Path,
    *,
    rate: int,
    channels: int,
    seconds: float,
    tones: Sequence[tuple[float, float]],
    encoding: str | None = None,
) -> Path:
    """Write `tones[i]` = (Hz, amplitude) on channel i; channels past len(tones) are silent."""
    specs = [w for freq, _ in tones for w in ("sine", f"{freq:g}")]
    remix = [f"{i + 1}v{amp:g}" for i, (_, amp) in enumerate(tones)]
    remix += ["0"] * (channels - len(tones))
    enc = _ENCODINGS[encoding] if encoding else []
    sox("-n", "-r", str(rate), "-c", str(channels), *enc, path,
        "synth", f"{seconds:g}", *specs, "remix", *remix)
    return path


@dataclass(frozen=True)
class Case:
    ext: str
    rate: int
    channels: int
    encoding: str | None = None  # None for lossy formats, which have no bit depth

    @property
    def id(self) -> str:
        return f"{self.ext}-{self.rate}Hz-{self.channels}ch-{self.encoding or 'lossy'}"

    @property
    def lossy(self) -> bool:
        return self.ext in ("ogg", "mp3")


# Every rate, channel count and bit depth appears at least once, in each container that has it.
MATRIX = [
    Case("wav", 8000, 1, "s16"),
    Case("wav", 16000, 1, "s16"),
    Case("wav", 16000, 2, "f32"),
    Case("wav", 22050, 2, "s24"),
    Case("wav", 44100, 2, "s16"),
    Case("wav", 44100, 6, "s32"),
    Case("wav", 48000, 1, "s24"),
    Case("wav", 48000, 2, "f32"),
    Case("wav", 48000, 6, "s16"),
    Case("wav", 11025, 1, "s32"),
    Case("wav", 37800, 2, "s16"),
    Case("flac", 8000, 2, "s24"),
    Case("flac", 16000, 1, "s24"),
    Case("flac", 22050, 1, "s16"),
    Case("flac", 44100, 2, "s16"),
    Case("flac", 48000, 6, "s24"),
    Case("ogg", 8000, 1),
    Case("ogg", 16000, 6),
    Case("ogg", 22050, 2),
    Case("ogg", 44100, 2),
    Case("ogg", 48000, 1),
    Case("mp3", 8000, 2),
    Case("mp3", 16000, 1),
    Case("mp3", 22050, 2),
    Case("mp3", 44100, 2),
    Case("mp3", 48000, 1),
]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("matrix")
    files: dict[str, Path] = {}
    for case in MATRIX:
        tones = [TONE_A, TONE_B][: case.channels]
        files[case.id] = synth(
            folder / f"{case.id}.{case.ext}",
            rate=case.rate,
            channels=case.channels,
            seconds=MATRIX_SECONDS,
            tones=tones,
            encoding=case.encoding,
        )
    return files


@pytest.fixture(scope="session")
def sweep_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Broadband content (a sweep plus noise) where any seam between blocks would show."""
    folder = tmp_path_factory.mktemp("sweep")
    specs = {
        "wav-48000Hz-2ch": ("wav", 48000, 2, "s16"),
        "flac-44100Hz-6ch": ("flac", 44100, 6, "s24"),
        "wav-11025Hz-1ch": ("wav", 11025, 1, "f32"),
        "wav-16000Hz-2ch": ("wav", 16000, 2, "s16"),
        "mp3-22050Hz-2ch": ("mp3", 22050, 2, None),
        "ogg-44100Hz-1ch": ("ogg", 44100, 1, None),
    }
    files: dict[str, Path] = {}
    for name, (ext, rate, channels, encoding) in specs.items():
        path = folder / f"{name}.{ext}"
        enc = _ENCODINGS[encoding] if encoding else []
        remix = ["1v0.5", "2v0.3"][:channels] + ["0"] * max(0, channels - 2)
        sox("-n", "-r", str(rate), "-c", str(channels), *enc, path,
            "synth", "4.3", "sine", "60-7900", "whitenoise", "remix", *remix)
        files[name] = path
    return files


def native_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame libsndfile will decode, read independently of notetaker (reference side)."""
    with sf.SoundFile(str(path)) as f:
        buf = np.empty((65536, f.channels), np.float32)
        while True:
            got = f.read(out=buf)
            if len(got) == 0:
                return
            yield got.copy()


def tone_amplitude(x: np.ndarray, freq: float, rate: int = 16000) -> float:
    """Amplitude of the `freq` component (x should hold a whole number of its cycles)."""
    t = np.arange(len(x)) / rate
    return float(2 * abs(np.dot(x.astype(np.float64), np.exp(-2j * np.pi * freq * t))) / len(x))
