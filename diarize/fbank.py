"""Kaldi-compatible log mel filterbank (`compute-fbank-feats`, torchaudio.compliance.kaldi.fbank)
as 3D-Speaker feeds CAM++: 80 bins, 25 ms frames every 10 ms (snip_edges), no dither, DC
offset removed, pre-emphasis 0.97, Povey window, 512-point power spectrum, triangular bins on
Kaldi's mel scale from 20 Hz to Nyquist, natural log floored at float32 epsilon; then each
bin's mean over the utterance subtracted. Pure numpy, float64 inside."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # the frame padded to a power of two
N_MELS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97
LOG_FLOOR = float(np.finfo(np.float32).eps)


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0)


@lru_cache(maxsize=4)
def mel_banks(n_mels: int = N_MELS, low_hz: float = LOW_HZ, high_hz: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(N_FFT // 2 + 1, n_mels) triangular weights in the mel domain, as Kaldi's MelBanks
    (the Nyquist bin gets no weight)."""
    fft_mel = _mel(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)
    low, high = _mel(low_hz), _mel(high_hz)
    step = (high - low) / (n_mels + 1)
    left = low + np.arange(n_mels)[:, None] * step
    center, right = left + step, left + 2 * step
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).T  # (257, n_mels)


@lru_cache(maxsize=1)
def povey_window() -> np.ndarray:
    n = np.arange(FRAME)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))) ** 0.85


def fbank(audio: np.ndarray, mean_normalize: bool = True) -> np.ndarray:
    """(frames, 80) float32 features of 16 kHz mono float audio (at least 400 samples)."""
    x = np.asarray(audio, np.float64).reshape(-1)
    if x.size < FRAME:
        raise ValueError(f"fbank needs at least {FRAME} samples (25 ms), got {x.size}")
    count = 1 + (x.size - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:count].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= PREEMPHASIS * frames[:, :-1].copy()
    frames[:, 0] -= PREEMPHASIS * frames[:, 0]
    spectrum = np.fft.rfft(frames * povey_window(), n=N_FFT)
    power = spectrum.real**2 + spectrum.imag**2
    feats = np.log(np.maximum(power @ mel_banks(), LOG_FLOOR))
    if mean_normalize:
        feats -= feats.mean(axis=0, keepdims=True)
    return feats.astype(np.float32)
