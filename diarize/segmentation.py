"""pyannote segmentation-3.0 (PyanNet) on MLX: who speaks in each ~17 ms frame of a 10 s window.

SincNet (learned band-pass filters computed from their low/band frequencies, |.|, max-pool,
instance norm, leaky ReLU; then two plain convolutions likewise) → 4-layer BiLSTM → two
linear layers → 7 powerset classes (no one, each of 3 speakers alone, each pair), as
log-probabilities. Attribute names copy the checkpoint's keys, so weights load as stored
(convolutions transposed to MLX's layout). The frame timing comes from the conv stack the way
pyannote's `receptive_field` computes it.

Where the time goes decides what runs in numpy (bench/diarize_models.py): the LSTM's
sequential steps always (per-op cost), SincNet on the CPU (MLX's CPU convolutions); the
weights stay in the MLX modules and numpy copies are made from them once.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from asr.runtime.mlxrt import on_cpu

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SegmentationConfig:
    """The numbers of a segmentation-3.0 checkpoint (read from the checkpoint itself; its
    config.yaml says the same)."""

    sinc_stride: int = 10
    lstm_hidden: int = 128
    lstm_layers: int = 4
    linear_hidden: int = 128
    linear_layers: int = 2
    speakers: int = 3  # max_speakers_per_chunk
    max_per_frame: int = 2  # max_speakers_per_frame
    duration: float = 10.0  # the window it was trained on, seconds

    @classmethod
    def from_checkpoint(cls, hparams: dict[str, Any], task: dict[str, Any]) -> SegmentationConfig:
        """From a Lightning checkpoint's `hyper_parameters` and its task specifications."""
        lstm, linear = hparams.get("lstm") or {}, hparams.get("linear") or {}
        d = cls()
        return cls(
            sinc_stride=int((hparams.get("sincnet") or {}).get("stride", d.sinc_stride)),
            lstm_hidden=int(lstm.get("hidden_size", d.lstm_hidden)),
            lstm_layers=int(lstm.get("num_layers", d.lstm_layers)),
            linear_hidden=int(linear.get("hidden_size", d.linear_hidden)),
            linear_layers=int(linear.get("num_layers", d.linear_layers)),
            speakers=len(task.get("classes") or ()) or d.speakers,
            max_per_frame=int(task.get("powerset_max_classes", d.max_per_frame)),
            duration=float(task.get("duration", d.duration)),
        )

    @property
    def classes(self) -> int:
        return len(powerset_sets(self.speakers, self.max_per_frame))

    @property
    def conv_stack(self) -> tuple[tuple[int, int], ...]:
        """(kernel, stride) of each layer that sets the frame rate: sinc conv, pool, conv, pool, conv, pool."""
        return ((251, self.sinc_stride), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3))


# --- frame timing (pyannote.audio.utils.receptive_field, without padding or dilation) ------


def num_frames(samples: int, stack: tuple[tuple[int, int], ...]) -> int:
    for kernel, stride in stack:
        samples = 1 + (samples - kernel) // stride
    return samples


def receptive_field_size(frames: int, stack: tuple[tuple[int, int], ...]) -> int:
    """Samples that `frames` consecutive output frames see."""
    for kernel, stride in reversed(stack):
        frames = kernel + (frames - 1) * stride
    return frames


def receptive_field_center(frame: int, stack: tuple[tuple[int, int], ...]) -> int:
    for kernel, stride in reversed(stack):
        frame = frame * stride + (kernel - 1) // 2
    return frame


# --- powerset ------------------------------------------------------------------------------


def powerset_sets(speakers: int, max_per_frame: int) -> list[tuple[int, ...]]:
    """The speaker sets the classes stand for, in pyannote's order: {}, {0}, {1}, ..., {0, 1}, ..."""
    return [s for k in range(max_per_frame + 1) for s in itertools.combinations(range(speakers), k)]


def powerset_mapping(speakers: int, max_per_frame: int) -> np.ndarray:
    """(classes, speakers) 0/1 matrix: which speakers each class has."""
    sets = powerset_sets(speakers, max_per_frame)
    mapping = np.zeros((len(sets), speakers), np.float32)
    for k, s in enumerate(sets):
        mapping[k, list(s)] = 1
    return mapping


def to_multilabel(log_probs: np.ndarray, mapping: np.ndarray, soft: bool = False) -> np.ndarray:
    """Powerset log-probabilities (..., classes) → speaker activations (..., speakers): the
    most likely class's speakers (0/1), or with `soft` each speaker's probability."""
    if soft:
        return np.exp(log_probs) @ mapping
    return mapping[np.argmax(log_probs, axis=-1)]


# --- the network -----------------------------------------------------------------------------


class InstanceNorm(nn.Module):
    """torch's InstanceNorm1d(affine=True) on (batch, time, channels): each channel of each
    item normalized over time (biased variance, eps 1e-5)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = mx.ones((channels,))
        self.bias = mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        mean = _time_mean(x)
        var = _time_mean(mx.square(x - mean))
        return (x - mean) * mx.rsqrt(var + 1e-5) * self.weight + self.bias


def _time_mean(x: mx.array, block: int = 128) -> mx.array:
    """Mean over time (axis 1), summed in blocks and then across them: one float32 running
    sum over 160,000 samples drifts by ~1e-5, which the network amplifies ten-fold."""
    b, t, c = x.shape
    pad = -t % block
    if pad:
        x = mx.concatenate([x, mx.zeros((b, pad, c), x.dtype)], axis=1)
    return x.reshape(b, -1, block, c).sum(axis=2).sum(axis=1, keepdims=True) / t


class ParamSincFB(nn.Module):
    """asteroid's parametrized sinc filterbank: 40 band-pass pairs (cosine and sine) whose
    edges are learned; the filters are computed from them once and kept."""

    def __init__(self, filters: int = 80, kernel: int = 251, min_low_hz: float = 50, min_band_hz: float = 50):
        super().__init__()
        half = kernel // 2
        self.low_hz_ = mx.zeros((filters // 2, 1))
        self.band_hz_ = mx.zeros((filters // 2, 1))
        self.window_ = mx.zeros((half,))
        self.n_ = mx.zeros((1, half))
        self._limits = (min_low_hz, min_band_hz)
        self._filters: mx.array | None = None

    def filters(self) -> mx.array:
        """(80, kernel) filters, as asteroid's `ParamSincFB.filters()` computes them."""
        if self._filters is None:
            min_low, min_band = self._limits
            low = min_low + mx.abs(self.low_hz_)
            high = mx.clip(low + min_band + mx.abs(self.band_hz_), min_low, SAMPLE_RATE / 2)
            band = (high - low)[:, 0:1]
            ft_low, ft_high = low @ self.n_, high @ self.n_
            half_n = self.n_ / 2
            cos_left = (mx.sin(ft_high) - mx.sin(ft_low)) / half_n * self.window_
            sin_left = (mx.cos(ft_low) - mx.cos(ft_high)) / half_n * self.window_
            cos = mx.concatenate([cos_left, 2 * band, cos_left[:, ::-1]], axis=1)
            sin = mx.concatenate([sin_left, mx.zeros_like(band), -sin_left[:, ::-1]], axis=1)
            self._filters = mx.concatenate([cos / (2 * band), sin / (2 * band)], axis=0)
        return self._filters


class SincEncoder(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.filterbank = ParamSincFB()
        self._stride = stride

    def __call__(self, x: mx.array) -> mx.array:
        return mx.conv1d(x, self.filterbank.filters()[:, :, None], stride=self._stride)


class SincNet(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.wav_norm1d = InstanceNorm(1)
        self.conv1d = [SincEncoder(stride), nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)]
        self.norm1d = [InstanceNorm(80), InstanceNorm(60), InstanceNorm(60)]
        self._stride = stride

    def __call__(self, x: mx.array) -> mx.array:
        """(batch, samples, 1) waveforms → (batch, frames, 60)."""
        x = self.wav_norm1d(x)
        for k, (conv, norm) in enumerate(zip(self.conv1d, self.norm1d)):
            x = conv(x)
            if k == 0:
                x = mx.abs(x)
            x = nn.leaky_relu(norm(_max_pool3(x)), 0.01)
        return x

    def numpy(self, audio: np.ndarray) -> np.ndarray:
        """The same in numpy, one window at a time: the CPU path. MLX's CPU convolutions cost
        12 + 10 + 2.6 ms per 10 s window and grow ~6x per window in a batch of 4 (large
        buffers); here the sinc conv is one matmul over strided frames and the others sum
        one matmul per kernel tap on contiguous rows (8.6 + 3.1 + 0.8 ms)."""
        filters, convs, norms = _numpy_copy(self, self._numpy_weights)
        kernel = filters.shape[0]
        out = []
        for x in np.asarray(audio, np.float32):
            frames = np.lib.stride_tricks.sliding_window_view(_np_instance_norm(x[:, None], *norms[0])[:, 0], kernel)
            y = np.abs(np.ascontiguousarray(frames[::self._stride]) @ filters)
            y = _np_leaky_relu(_np_instance_norm(_np_max_pool3(y), *norms[1]))
            for (weight, bias), norm in zip(convs, norms[2:]):
                taps = weight.shape[0]
                rows = y.shape[0] - taps + 1
                z = y[:rows] @ weight[0]
                for k in range(1, taps):
                    z += y[k:k + rows] @ weight[k]
                y = _np_leaky_relu(_np_instance_norm(_np_max_pool3(z + bias), *norm))
            out.append(y)
        return np.stack(out)

    def _numpy_weights(self) -> tuple:
        """(sinc filters (kernel, 80), [(per-tap weights (taps, in, out), bias)], [(norm
        weight, bias)] for the waveform and each conv)."""
        filters = np.array(self.conv1d[0].filterbank.filters()).T
        convs = [(np.ascontiguousarray(np.array(c.weight).transpose(1, 2, 0)), np.array(c.bias)) for c in self.conv1d[1:]]
        norms = [(np.array(n.weight), np.array(n.bias)) for n in (self.wav_norm1d, *self.norm1d)]
        return np.ascontiguousarray(filters), convs, norms


def _np_instance_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(time, channels): InstanceNorm's statistics in float64 (numpy's pairwise sums would do
    in float32, but float64 costs nothing here)."""
    mean = x.mean(axis=0, dtype=np.float64)
    var = np.square(x - mean).mean(axis=0)
    scale = (weight / np.sqrt(var + 1e-5)).astype(np.float32)
    return (x - mean.astype(np.float32)) * scale + bias


def _np_max_pool3(x: np.ndarray) -> np.ndarray:
    t3 = x.shape[0] // 3 * 3
    return x[:t3].reshape(-1, 3, x.shape[1]).max(axis=1)


def _np_leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0.01) * x)


def _numpy_copy(module: nn.Module, build: Callable[[], Any]) -> Any:
    """`build()`'s numpy copies of `module`'s weights, kept until other weights are loaded
    (MLX's load_weights puts new arrays in place of the old)."""
    source = tuple(v for _, v in tree_flatten(module.parameters()))
    cached = getattr(module, "_numpy_cache", None)
    if cached is None or len(cached[0]) != len(source) or any(a is not b for a, b in zip(cached[0], source)):
        cached = (source, build())
        module._numpy_cache = cached
    return cached[1]


def _max_pool3(x: mx.array) -> mx.array:
    """MaxPool1d(3, stride 3) over time, the tail that does not fill a window dropped."""
    b, t, c = x.shape
    t3 = t // 3 * 3
    return x[:, :t3].reshape(b, t // 3, 3, c).max(axis=2)


class LSTM(nn.Module):
    """torch.nn.LSTM (batch_first, bidirectional, several layers) with torch's parameter
    names and gate order (input, forget, cell, output; biases b_ih + b_hh).

    The recurrence runs in numpy on every device: its 589 steps per layer are tiny
    (batch x 128 @ 128 x 512), where MLX's compiled step cost ~60 us in graph building and
    dispatch against ~19 us for numpy's direct BLAS call and in-place ufuncs (one window,
    2-core x86-64; bench/diarize_models.py). The inputs' projection for all steps stays one
    matmul, and both directions run in the same loop as one batched matmul."""

    def __init__(self, input_size: int, hidden: int, layers: int):
        super().__init__()
        self._hidden, self._layers = hidden, layers
        for k in range(layers):
            size = input_size if k == 0 else 2 * hidden
            for suffix in ("", "_reverse"):
                setattr(self, f"weight_ih_l{k}{suffix}", mx.zeros((4 * hidden, size)))
                setattr(self, f"weight_hh_l{k}{suffix}", mx.zeros((4 * hidden, hidden)))
                setattr(self, f"bias_ih_l{k}{suffix}", mx.zeros((4 * hidden,)))
                setattr(self, f"bias_hh_l{k}{suffix}", mx.zeros((4 * hidden,)))

    def __call__(self, x: mx.array | np.ndarray) -> mx.array:
        """(batch, time, features) → (batch, time, 2 * hidden)."""
        out = np.array(x, np.float32)
        for w_ih, bias, w_hh in _numpy_copy(self, self._numpy_weights):
            out = _bilstm_layer(out, w_ih, bias, w_hh)
        return mx.array(out)

    def _numpy_weights(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per layer, both directions stacked: W_ih (in, 2 * 4H), bias (2 * 4H,), W_hh
        (2, H, 4H). The gates are reordered to (input,
        forget, output, cell) and the first three negated (exact), so the loop's sigmoids
        are one exp, +1 and reciprocal over a contiguous 3H. (sigmoid(z) = (1 + tanh(z/2))/2
        with one tanh for all four gates saved ~3 us a step but was 8x less accurate: 1e-5
        from float64 after the 4 layers, where this and torch are 1.2e-6.)"""
        h = self._hidden
        order = np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]  # i, f, o, g
        sign = np.r_[np.full(3 * h, -1, np.float32), np.ones(h, np.float32)]
        layers = []
        for k in range(self._layers):
            dirs = [f"l{k}", f"l{k}_reverse"]
            w_ih = np.concatenate([np.array(self[f"weight_ih_{d}"])[order].T * sign for d in dirs], axis=1)
            bias = np.concatenate([(np.array(self[f"bias_ih_{d}"]) + np.array(self[f"bias_hh_{d}"]))[order] * sign
                                   for d in dirs])
            w_hh = np.stack([np.array(self[f"weight_hh_{d}"])[order].T * sign for d in dirs])
            layers.append((np.ascontiguousarray(w_ih), bias, np.ascontiguousarray(w_hh)))
        return layers


def _bilstm_layer(x: np.ndarray, w_ih: np.ndarray, bias: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
    """One bidirectional layer on (batch, time, in) with weights from `LSTM._numpy_weights`:
    all steps' input projections in one matmul, then the recurrence in place, 11 numpy
    calls a step. Returns (batch, time, 2H)."""
    b, t, _ = x.shape
    h4 = w_hh.shape[2]
    h = h4 // 4
    proj = (x.reshape(b * t, -1) @ w_ih + bias).reshape(b, t, 2, h4)
    gates_x = np.empty((t, 2, b, h4), np.float32)  # step s: forward at s, backward at t - 1 - s
    gates_x[:, 0] = proj[:, :, 0].transpose(1, 0, 2)
    gates_x[:, 1] = proj[:, ::-1, 1].transpose(1, 0, 2)
    out = np.empty((t, 2, b, h), np.float32)
    g = np.empty((2, b, h4), np.float32)
    c = np.zeros((2, b, h), np.float32)
    tmp = np.empty((2, b, h), np.float32)
    sig, in_gate, forget, out_gate, cell = g[..., :3 * h], g[..., :h], g[..., h:2 * h], g[..., 2 * h:3 * h], g[..., 3 * h:]
    hidden = np.zeros((2, b, h), np.float32)
    with np.errstate(over="ignore"):  # exp(-z) = inf gives sigmoid 0, as it should
        for s in range(t):
            np.matmul(hidden, w_hh, out=g)
            g += gates_x[s]
            np.exp(sig, out=sig)  # of -z: the weights were negated
            sig += 1
            np.reciprocal(sig, out=sig)
            np.tanh(cell, out=cell)
            c *= forget
            np.multiply(in_gate, cell, out=tmp)
            c += tmp
            np.tanh(c, out=tmp)
            hidden = out[s]
            np.multiply(out_gate, tmp, out=hidden)
    return np.concatenate([out[:, 0], out[::-1, 1]], axis=-1).transpose(1, 0, 2)


class PyanNet(nn.Module):
    def __init__(self, config: SegmentationConfig):
        super().__init__()
        self.config = config
        self.sincnet = SincNet(config.sinc_stride)
        self.lstm = LSTM(60, config.lstm_hidden, config.lstm_layers)
        sizes = [2 * config.lstm_hidden] + [config.linear_hidden] * config.linear_layers
        self.linear = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
        self.classifier = nn.Linear(sizes[-1], config.classes)

    def __call__(self, waveforms: mx.array) -> mx.array:
        """(batch, samples) 16 kHz waveforms → (batch, frames, classes) powerset log-probabilities."""
        x = self.sincnet.numpy(np.asarray(waveforms)) if on_cpu() else self.sincnet(waveforms[:, :, None])
        x = self.lstm(x)
        for linear in self.linear:
            x = nn.leaky_relu(linear(x), 0.01)
        return nn.log_softmax(self.classifier(x), axis=-1)


def sanitize(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Checkpoint tensors → this module's: torch's (out, in, kernel) convolutions to MLX's
    (out, kernel, in)."""
    out = {}
    for name, value in weights.items():
        if name.startswith("sincnet.conv1d.") and name.endswith(".weight") and value.ndim == 3:
            value = value.transpose(0, 2, 1)
        out[name] = value
    return out


class Segmenter:
    """Speaker activity in windows of 16 kHz mono audio (the pipeline's segmentation step).

    `segmenter(window)` → (frames, 3) 0/1 activations of up to three local speakers;
    `log_probs(windows)` the powerset log-probabilities. Frame k covers
    `frame_start + k * frame_step` for `frame_duration` seconds."""

    def __init__(self, model: PyanNet):
        self.model = model
        self.config = model.config
        self.mapping = powerset_mapping(self.config.speakers, self.config.max_per_frame)
        stack = self.config.conv_stack
        size = receptive_field_size(1, stack)
        self.frame_duration = size / SAMPLE_RATE
        self.frame_step = (receptive_field_size(2, stack) - size) / SAMPLE_RATE
        self.frame_start = (receptive_field_center(0, stack) - (size - 1) / 2) / SAMPLE_RATE
        self.window_samples = int(round(self.config.duration * SAMPLE_RATE))

    @classmethod
    def load(cls, path: str | Path) -> Segmenter:
        """From a segmentation-3.0 folder (pytorch_model.bin + config.yaml), or the folder
        `notetaker models pull diarization` fills."""
        from diarize.weights import load_segmentation

        return cls(load_segmentation(Path(path)))

    def num_frames(self, samples: int) -> int:
        return num_frames(samples, self.config.conv_stack)

    def log_probs(self, windows: np.ndarray) -> np.ndarray:
        """(samples,) or (batch, samples) float audio → (frames, classes) or (batch, frames, classes)."""
        audio = np.asarray(windows, np.float32)
        single = audio.ndim == 1
        batch = audio[None] if single else audio
        if batch.ndim != 2 or batch.shape[1] < receptive_field_size(1, self.config.conv_stack):
            raise ValueError(f"expected 16 kHz mono windows of at least "
                             f"{math.ceil(self.frame_duration * 1000)} ms, got shape {audio.shape}")
        out = np.array(self.model(mx.array(batch)))
        return out[0] if single else out

    def __call__(self, windows: np.ndarray, soft: bool = False) -> np.ndarray:
        """Speaker activations (frames, speakers), batched like `log_probs`."""
        return to_multilabel(self.log_probs(windows), self.mapping, soft)
