"""Files cut short (a crash, a partial copy): decode what is there, or fail with one clear line.

Behaviour chosen, per what libsndfile 1.2.2 can do:
- WAV, MP3: the decoder just ends where the data ends. WAV's header says how much data
  there was, so `damage` says how much of it was read; an MP3 without a Xing frame (sox
  writes none) has no length but the estimate from what is there: `damage` stays None.
- FLAC: libsndfile raises when it runs into the cut; we keep every frame before it
  (the handle's position says how many), find nothing after it that decodes, stop
  cleanly and say so in `damage`.
- OGG Vorbis: libsndfile stops at the last granule its length scan trusts, which can be
  well before the cut, or finds none at all -> AudioError.
- A header that promises frames with no audio after it -> AudioError at open.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notetaker.audio import SAMPLE_RATE, AudioError, open_audio, read_audio

from .conftest import sox

SECONDS = 6.0
# Past this many samples from the end of a cut decode, the resampler's final flush sees a
# different future than in the whole file; everything before must be identical.
FILTER_TAIL = 256


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cut-sources")
    specs = {
        "wav": ("48000", "2", ["-b", "16"]),
        "flac": ("44100", "6", ["-b", "24"]),
        "mp3": ("44100", "2", []),
        "ogg": ("44100", "2", []),
    }
    files = {}
    for ext, (rate, channels, enc) in specs.items():
        path = folder / f"whole.{ext}"
        silent = ["0"] * (int(channels) - 2)
        sox("-n", "-r", rate, "-c", channels, *enc, path, "synth", f"{SECONDS:g}",
            "sine", "440", "sine", "1000", "remix", "1v0.5", "2v0.25", *silent)
        files[ext] = path
    return files


def cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def assert_prefix_of(part: np.ndarray, whole: np.ndarray) -> None:
    n = len(part) - FILTER_TAIL
    assert n > 0
    assert np.max(np.abs(part[:n] - whole[:n])) <= 1e-6


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_cut_file_decodes_what_is_there(
    sources: dict[str, Path], tmp_path: Path, ext: str, fraction: float
) -> None:
    whole = read_audio(sources[ext])
    path = cut(sources[ext], tmp_path / f"cut.{ext}", fraction)
    with open_audio(path) as audio:
        part = np.concatenate(list(audio.blocks(1.0)))
        damage = audio.damage
    # Bytes track time for a steady tone; FLAC loses up to a frame and a read at the cut.
    assert fraction - 0.05 <= len(part) / len(whole) <= fraction + 0.01
    assert_prefix_of(part, whole)
    if ext == "mp3":
        assert damage is None
    else:  # "read 1.8 s of 6.0 s: ..." (FLAC's STREAMINFO, WAV's data size)
        assert damage is not None and damage.startswith("read ") and f"of {SECONDS:.1f} s" in damage.replace(
            "of the ", "of "
        )


def test_cut_wav_reports_the_frames_present(sources: dict[str, Path], tmp_path: Path) -> None:
    data = sources["wav"].read_bytes()
    start = data.index(b"data") + 8
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: start + 70_003])  # ends inside a frame: 4 bytes per stereo frame
    with open_audio(path) as audio:
        assert audio.frames == 70_003 // 4
        out = np.concatenate(list(audio.blocks()))
    assert abs(len(out) - audio.frames * SAMPLE_RATE / 48000) <= 1


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_cut_ogg_decodes_a_prefix_or_fails_cleanly(
    sources: dict[str, Path], tmp_path: Path, fraction: float
) -> None:
    whole = read_audio(sources["ogg"])
    path = cut(sources["ogg"], tmp_path / "cut ogg.ogg", fraction)
    try:
        part = read_audio(path)
    except AudioError as err:
        assert "cut ogg.ogg" in str(err)
        assert fraction < 0.9, "libsndfile finds audio in an Ogg file cut at 90%"
        return
    assert len(part) <= fraction * len(whole)
    assert_prefix_of(part, whole)


def test_wav_header_promising_frames_with_none_after_it(sources: dict[str, Path], tmp_path: Path) -> None:
    data = sources["wav"].read_bytes()
    start = data.index(b"data") + 8
    (claimed,) = struct.unpack("<I", data[start - 4 : start])
    assert claimed > 0  # the header does promise audio
    path = tmp_path / "header only.wav"
    path.write_bytes(data[:start])
    with pytest.raises(AudioError, match="no audio samples") as err:
        open_audio(path)
    assert "header only.wav" in str(err.value)


@pytest.mark.parametrize("extra_bytes", [0, 100])
def test_flac_header_promising_frames_with_none_after_it(
    sources: dict[str, Path], tmp_path: Path, extra_bytes: int
) -> None:
    data = sources["flac"].read_bytes()
    path = tmp_path / "header only.flac"
    path.write_bytes(data[: flac_audio_offset(data) + extra_bytes])
    assert sf.info(str(path)).frames == SECONDS * 44100  # STREAMINFO promises all of it
    with pytest.raises(AudioError) as err:
        open_audio(path)
    assert "header only.flac" in str(err.value)


def flac_audio_offset(data: bytes) -> int:
    """Where the first audio frame starts: after "fLaC" and the metadata blocks."""
    assert data[:4] == b"fLaC"
    pos = 4
    while True:
        header = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 4 + length
        if header & 0x80:  # last-metadata-block flag
            return pos
