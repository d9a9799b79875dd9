"""Voxtral's log-mel against transformers' VoxtralRealtimeFeatureExtractor, and its
incremental twin against the batch version over many chunkings."""

import numpy as np
import pytest

from asr.features import HOP, VoxtralMelStream, mel_filters, voxtral_log_mel
from tests.asr.audio_util import FIXTURES, load

LEFT_PAD = 32 * 1280  # the session's 32 tokens of leading silence
SILENCE = (1.5 - 8.0 + 4.0) / 4.0  # a frame of zeros: log10 floored at global max - 8


@pytest.fixture(scope="module")
def speech():
    return load(FIXTURES / "es01.flac")


@pytest.fixture(scope="module")
def session_audio(speech):
    # Leading silence as the session feeds it, then speech ending mid-hop (n % 160 == 77).
    audio = np.concatenate([np.zeros(LEFT_PAD, np.float32), speech[:16000 * 2]])
    return audio[: audio.size - audio.size % HOP + 77]


@pytest.fixture(scope="module")
def extractor():
    # The reference (test-only: torch and transformers), read in its own module.
    pytest.importorskip("torch")
    fe = pytest.importorskip("transformers.models.voxtral_realtime.feature_extraction_voxtral_realtime")
    return fe.VoxtralRealtimeFeatureExtractor()


def _reference(extractor, audio):
    return extractor(audio, sampling_rate=16000, return_tensors="np").input_features[0].T


def test_filterbank_is_slaney_0_to_8k(extractor):
    np.testing.assert_allclose(mel_filters(128), extractor.mel_filters.T, atol=1e-7)


@pytest.mark.parametrize("left_pad", [0, LEFT_PAD])
def test_batch_matches_transformers(extractor, speech, left_pad):
    audio = np.concatenate([np.zeros(left_pad, np.float32), speech])
    ref, ours = _reference(extractor, audio), voxtral_log_mel(audio)
    assert ours.shape == ref.shape == (audio.size // HOP, 128) and ours.dtype == np.float32
    # The reference STFT runs in float32: its rounding reaches a few 1e-5 near the floor.
    diff = np.abs(ours - ref)
    assert diff.max() < 1e-4 and np.quantile(diff, 0.999) < 1e-5


def test_batch_matches_the_reference_recipe_in_float64(extractor, speech):
    # transformers' steps (centred reflect-padded torch.stft, periodic Hann, last frame dropped)
    # in float64, so that the comparison is tight.
    import torch

    x = torch.tensor(speech[:40000], dtype=torch.float64)
    spec = torch.stft(x, 400, 160, window=torch.hann_window(400, dtype=torch.float64), return_complex=True)
    mel = torch.from_numpy(extractor.mel_filters).T @ (spec[..., :-1].abs() ** 2)
    ref = ((torch.clamp(mel, min=1e-10).log10().clamp(min=1.5 - 8.0) + 4.0) / 4.0).numpy().T
    np.testing.assert_allclose(voxtral_log_mel(speech[:40000]), ref, atol=1e-6)


def test_floor_is_fixed_not_the_utterance_max(speech):
    audio = np.concatenate([np.zeros(4000, np.float32), speech[:8000]])
    loud, quiet = voxtral_log_mel(audio), voxtral_log_mel(audio * 1e-3)
    assert np.all(loud[:20] == np.float32(SILENCE)) and np.all(quiet[:20] == np.float32(SILENCE))
    assert quiet.max() < loud.max() - 1.0  # not renormalised to its own max


@pytest.mark.parametrize("n", [0, 1, 159, 160, 200, 201, 359, 360, 361, 16000, 16077])
def test_frame_count_is_samples_over_hop(speech, n):
    assert voxtral_log_mel(speech[:n]).shape == (n // HOP, 128)


def _chunks(audio, size, rng):
    i = 0
    while i < audio.size:
        k = int(rng.integers(1, 3000)) if size == "random" else size
        yield audio[i:i + k]
        i += k


def _run(stream, audio, size, seed=0):
    rng = np.random.default_rng(seed)
    out, held = [], 0
    for chunk in _chunks(audio, size, rng):
        out.append(stream.push(chunk))
        held = max(held, stream.held_samples)
    out.append(stream.flush())
    return np.concatenate(out), held


@pytest.mark.parametrize("size", [1, 160, 1280, 16000, "random"])
def test_stream_equals_batch(session_audio, size):
    batch = voxtral_log_mel(session_audio)
    frames, held = _run(VoxtralMelStream(), session_audio, size)
    assert frames.shape == batch.shape and frames.dtype == np.float32
    np.testing.assert_allclose(frames, batch, atol=1e-6, rtol=0)
    assert held < 400  # bounded memory: never more than one window
    assert np.all(frames[:LEFT_PAD // HOP - 2] == np.float32(SILENCE))


@pytest.mark.parametrize("n", [0, 1, 159, 160, 199, 200, 201, 202, 359, 360, 361, 399, 400, 401,
                               439, 440, 441, 599, 600, 601, 16000, 16039, 16040, 16041, 16199])
def test_stream_equals_batch_at_every_edge(speech, n):
    # Speech from the first sample, so the reflection at the start carries signal.
    audio = speech[4000:4000 + n]
    batch = voxtral_log_mel(audio)
    for seed in range(3):
        frames, _ = _run(VoxtralMelStream(), audio, "random", seed)
        assert frames.shape == batch.shape
        np.testing.assert_allclose(frames, batch, atol=1e-6, rtol=0)


def test_push_emits_each_frame_once_its_window_is_complete(speech):
    stream = VoxtralMelStream()
    for n, chunk in enumerate(speech[:2000], 1):
        stream.push(chunk[None])
        # frame t covers samples up to t*160 + 199 (frame 0 also mirrors sample 200)
        assert stream.frames_emitted == (0 if n < 201 else (n - 200) // HOP + 1)
    tail = stream.flush()
    assert len(tail) == 2000 // HOP - ((2000 - 200) // HOP + 1)


def test_flush_starts_a_new_stream(speech):
    stream = VoxtralMelStream()
    first, _ = _run(stream, speech[:5000], 1280)
    second, _ = _run(stream, speech[:5000], 700)
    np.testing.assert_array_equal(first, second)
    assert stream.samples_pushed == 0 and stream.frames_emitted == 0
