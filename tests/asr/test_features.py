"""The log-mel frontend against transformers' Whisper feature extractor (test-only reference)."""

import numpy as np
import pytest

from asr.features import HOP, N_FRAMES, log_mel, mel_filters, stft_power, window_mel

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def speechlike():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 7) / 16000
    # Harmonics with a syllable-rate envelope plus a little noise: more mel structure than noise alone.
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 2200), 1))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.1 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_matches_transformers(n_mels):
    fe = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    np.testing.assert_allclose(mel_filters(n_mels), fe.mel_filters.T, atol=1e-7)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_transformers(speechlike, n_mels):
    fe = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    ref = fe(speechlike, sampling_rate=16000, return_tensors="np").input_features[0]
    ours = log_mel(speechlike, n_mels)
    assert ours.shape == (N_FRAMES, n_mels)
    np.testing.assert_allclose(ours.T, ref, atol=1e-4)


def test_window_mel_pads_with_zero_frames(speechlike):
    audio = speechlike[: 16000 * 3]
    mel = window_mel(audio, 80)
    frames = audio.size // HOP + 1  # the audio plus one hop, last frame dropped
    assert mel.shape == (N_FRAMES, 80)
    assert np.all(mel[frames:] == 0.0)
    np.testing.assert_allclose(mel[:frames], log_mel(np.pad(audio, (0, HOP)), 80, pad_to=None)[:frames])
    assert mel[:frames].max() == pytest.approx((np.log10(np.max(stft_power(np.pad(audio, (0, HOP)))[:-1]
                                                                 @ mel_filters(80).T.astype(np.float64)))
                                                + 4) / 4, abs=1e-5)


def test_window_mel_truncates_long_audio(speechlike):
    long = np.tile(speechlike, 6)  # 42 s
    assert window_mel(long, 80).shape == (N_FRAMES, 80)


def test_tiny_input_does_not_crash():
    assert log_mel(np.zeros(10, np.float32), 80, pad_to=None).shape[1] == 80
