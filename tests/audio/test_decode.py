"""Decoding, downmixing and resampling: what comes out is the signal that went in, at 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from notetaker.audio import SAMPLE_RATE, open_audio, read_audio
from notetaker.audio.resample import RESAMPLE_QUALITY

from .conftest import (
    MATRIX,
    MATRIX_SECONDS,
    TONE_A,
    TONE_B,
    Case,
    native_frames,
    synth,
    tone_amplitude,
)

# libsndfile 1.2.2 decodes MP3 through mpg123 without LAME's gapless trimming, so every MP3
# starts with 576 (encoder) + 529 (decoder) = 1105 samples of delay, measured at every rate,
# and ends padded to a whole MP3 frame (1152 samples; 576 for 8-16 kHz).
MP3_DELAY = 1105
MP3_FRAME = 1152


def middle_second(x: np.ndarray) -> np.ndarray:
    """0.5 s to 1.5 s: away from the edges (and past any MP3 delay); whole cycles of both tones."""
    return x[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + SAMPLE_RATE]


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
def test_header_is_reported(case: Case, matrix: dict[str, Path]) -> None:
    with open_audio(matrix[case.id]) as audio:
        assert audio.native_rate == case.rate
        assert audio.channels == case.channels
        # sox writes WAVE_FORMAT_EXTENSIBLE past 16 bits or 2 channels; libsndfile calls it WAVEX.
        formats = {"wav": {"WAV", "WAVEX"}, "flac": {"FLAC"}, "ogg": {"OGG"}, "mp3": {"MP3"}}
        assert audio.format in formats[case.ext]
        expected_subtype = {"s16": "PCM_16", "s24": "PCM_24", "s32": "PCM_32", "f32": "FLOAT"}
        if case.encoding:
            assert audio.subtype == expected_subtype[case.encoding]
        if case.ext != "mp3":  # libsndfile only estimates an MP3's length (see test_length)
            assert audio.frames == MATRIX_SECONDS * case.rate
            assert audio.duration_s == pytest.approx(MATRIX_SECONDS)


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
def test_length(case: Case, matrix: dict[str, Path]) -> None:
    out = read_audio(matrix[case.id])
    assert out.dtype == np.float32 and out.ndim == 1
    decoded = sum(len(f) for f in native_frames(matrix[case.id]))
    # The resampler neither loses nor invents samples: exactly the decoded frames, rescaled.
    assert abs(len(out) - decoded * SAMPLE_RATE / case.rate) <= 1
    if case.ext == "mp3":
        extra = decoded - MATRIX_SECONDS * case.rate
        assert MP3_DELAY <= extra <= MP3_DELAY + MP3_FRAME
    else:  # lossless and Vorbis (whose granule positions trim exactly): the original length
        assert abs(len(out) - MATRIX_SECONDS * SAMPLE_RATE) <= 1


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
def test_tones_survive_downmix_and_resampling(case: Case, matrix: dict[str, Path]) -> None:
    x = middle_second(read_audio(matrix[case.id]))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.argmax(spectrum) == pytest.approx(TONE_A[0], abs=1)  # 1 Hz bins over one second

    # Downmix averages: a tone on one of C channels comes out at 1/C of its amplitude.
    tones = [TONE_A, TONE_B][: case.channels]
    rtol = 0.1 if case.lossy else 1e-4  # measured: MP3 -5% (the encoder scales by 0.95), lossless < 1e-5
    for freq, amp in tones:
        assert tone_amplitude(x, freq) == pytest.approx(amp / case.channels, rel=rtol)

    if not case.lossy:
        # Nothing else in there: remove the tones and what is left is noise far below them.
        t = np.arange(len(x)) / SAMPLE_RATE
        basis = np.stack([f(2 * np.pi * freq * t) for freq, _ in tones for f in (np.sin, np.cos)], 1)
        coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
        residual = x - basis @ coef
        assert np.sqrt(np.mean(residual**2)) < 1e-4 * (TONE_A[1] / case.channels)


@pytest.mark.parametrize(
    ("rate", "tone", "alias"),
    [(48000, 12000.0, 4000.0), (44100, 10000.0, 6000.0)],
    ids=["48k-12kHz", "44.1k-10kHz"],
)
def test_tones_above_8khz_are_filtered_not_aliased(
    tmp_path: Path, rate: int, tone: float, alias: float
) -> None:
    # Left: a tone 16 kHz cannot hold; right: a 1 kHz tone that must pass untouched.
    path = synth(tmp_path / "hi.wav", rate=rate, channels=2, seconds=2.0,
                 tones=[(tone, 0.5), (1000.0, 0.5)], encoding="f32")
    x = middle_second(read_audio(path))
    assert tone_amplitude(x, 1000.0) == pytest.approx(0.25, rel=0.002)
    assert tone_amplitude(x, alias) < 0.25 * 10 ** (-60 / 20)

    # The file does hold the tone: picking the nearest input sample, as a naive decimator
    # would, folds it onto `alias` at nearly full strength.
    native, _ = sf.read(str(path), dtype="float32")
    picks = np.round(np.arange(2 * SAMPLE_RATE) * rate / SAMPLE_RATE).astype(int)
    naive = middle_second(native[np.minimum(picks, len(native) - 1)].mean(axis=1))
    assert tone_amplitude(naive, alias) > 0.1


@pytest.mark.parametrize("block_s", [0.1, 1.0, 3.7])
@pytest.mark.parametrize(
    "name",
    ["wav-48000Hz-2ch", "flac-44100Hz-6ch", "wav-11025Hz-1ch", "wav-16000Hz-2ch",
     "mp3-22050Hz-2ch", "ogg-44100Hz-1ch"],
)
def test_streaming_equals_one_shot(sweep_files: dict[str, Path], name: str, block_s: float) -> None:
    path = sweep_files[name]
    native = np.concatenate(list(native_frames(path)))
    rate = sf.info(str(path)).samplerate
    mono = native.mean(axis=1, dtype=np.float32)
    whole = mono if rate == SAMPLE_RATE else soxr.resample(mono, rate, SAMPLE_RATE, RESAMPLE_QUALITY)
    whole = np.clip(whole, -1.0, 1.0)

    with open_audio(path) as audio:
        blocks = list(audio.blocks(block_s))
    size = round(block_s * SAMPLE_RATE)
    assert all(len(b) == size for b in blocks[:-1]) and 0 < len(blocks[-1]) <= size
    streamed = np.concatenate(blocks)
    assert len(streamed) == len(whole)
    assert np.max(np.abs(streamed - whole)) <= 1e-6


def test_blocks_can_be_read_twice(sweep_files: dict[str, Path]) -> None:
    with open_audio(sweep_files["flac-44100Hz-6ch"]) as audio:
        first = np.concatenate(list(audio.blocks(0.5)))
        second = np.concatenate(list(audio.blocks(1.0)))
    np.testing.assert_array_equal(first, second)


def test_output_stays_within_unit_range(tmp_path: Path) -> None:
    # A full-scale square wave overshoots once band-limited (Gibbs); a float WAV may exceed 1.
    # (sox's own square is already band-limited, hence numpy here.)
    rate = 44100
    square = np.where(np.sin(2 * np.pi * 300 * np.arange(rate) / rate) >= 0, 1.0, -1.0)
    sf.write(str(tmp_path / "square.wav"), square, rate, subtype="PCM_16")
    sf.write(str(tmp_path / "hot.wav"), 1.7 * square, rate, subtype="FLOAT")
    for name in ("square.wav", "hot.wav"):
        path = tmp_path / name
        raw = soxr.resample(sf.read(str(path), dtype="float32")[0], rate, SAMPLE_RATE, RESAMPLE_QUALITY)
        assert np.max(np.abs(raw)) > 1.1  # unclipped, it would leave the range
        out = read_audio(path)
        assert out.min() == -1.0 and out.max() == 1.0
