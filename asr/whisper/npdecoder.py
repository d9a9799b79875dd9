"""Whisper's incremental decoder step in numpy, for MLX's CPU backend.

A decoder step is a few hundred tiny operations on one token. On the Linux CPU backend
each MLX evaluation costs ~60-110 µs of scheduling and every matmul packs its weights
for sgemm, so a tiny.en step took ~17 ms; the same arithmetic on the same weights
(zero-copy views of the MLX arrays) in numpy, whose BLAS takes gemv for one row, takes
a few ms. The encoder and the cross-attention keys and values stay in MLX; on Metal
and CUDA everything stays in MLX. Tests hold both paths to the same logits.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from asr.runtime.kernels import np_gelu, np_matmul_columns
from asr.whisper.model import TextDecoder


def _np(a: mx.array) -> np.ndarray:
    out = np.asarray(a)
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + eps) * w + b


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """x @ w (+ b) as ONE 2-D matmul: numpy loops a 3-D @ 2-D product over the batch, which
    reads the weights once per row (4 rows of tiny.en logits: 14.6 ms instead of ~4)."""
    out = x.reshape(-1, x.shape[-1]) @ w
    if b is not None:
        out += b
    return out.reshape(*x.shape[:-1], w.shape[1])


def _heads(x: np.ndarray, n_head: int) -> np.ndarray:
    b, t, d = x.shape
    return x.reshape(b, t, n_head, d // n_head).transpose(0, 2, 1, 3)


def _attend(q: np.ndarray, kt: np.ndarray, v: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Attention with the keys given transposed, (b, h, dh, t), as they are stored."""
    scores = (q * np.float32(q.shape[-1] ** -0.5)) @ kt
    if mask is not None:
        scores += mask
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    out = scores @ v  # (b, h, t, dh)
    b, h, t, dh = out.shape
    return out.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


class _Layer:
    def __init__(self, block) -> None:
        g = lambda m: (_np(m.weight).T, _np(m.bias) if "bias" in m else None)  # noqa: E731
        a, c = block.attn, block.cross_attn
        # q, k, v in one matmul: one gemv over a fused (d, 3d) matrix.
        self.qkv_w = np.ascontiguousarray(np.concatenate([g(a.query)[0], g(a.key)[0], g(a.value)[0]], axis=1))
        d = self.qkv_w.shape[0]
        self.qkv_b = np.concatenate([g(a.query)[1], np.zeros(d, np.float32), g(a.value)[1]])
        self.out_w, self.out_b = g(a.out)
        self.cq_w, self.cq_b = g(c.query)
        self.cout_w, self.cout_b = g(c.out)
        self.mlp1_w, self.mlp1_b = g(block.mlp1)
        self.mlp2_w, self.mlp2_b = g(block.mlp2)
        self.ln = [(_np(n.weight), _np(n.bias)) for n in (block.attn_ln, block.cross_attn_ln, block.mlp_ln)]
        self.n_head = a.n_head


class NumpyDecoder:
    """Same interface as `TextDecoder.__call__` over numpy caches: tokens in, logits out."""

    def __init__(self, decoder: TextDecoder) -> None:
        self.embedding = _np(decoder.token_embedding.weight)
        self.positions = _np(decoder.positional_embedding)
        self.layers = [_Layer(b) for b in decoder.blocks]
        self.ln = (_np(decoder.ln.weight), _np(decoder.ln.bias))

    def start(self, cross_kv: list[tuple[mx.array, mx.array]]) -> "NumpySteps":
        # Keys stored transposed once per window: no 2 MB copy per layer per token.
        return NumpySteps(self, [(np.ascontiguousarray(_np(k).transpose(0, 1, 3, 2)), _np(v)) for k, v in cross_kv])


class NumpySteps:
    """One decoding pass: self-attention caches grow as tokens are fed."""

    def __init__(self, dec: NumpyDecoder, cross: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.dec = dec
        self.cross = cross  # what each batch row attends to (see `reorder`)
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.offset = 0
        self._windows = cross  # one (keys, values) per window, as encoded
        self._rows = np.arange(cross[0][0].shape[0]) if cross else np.zeros(0, np.int64)  # window of each row

    def reorder(self, index: np.ndarray) -> None:
        """Make batch row r continue what row index[r] decoded so far (beam search).

        `index` may repeat rows and change the batch size (one window expanded to a beam
        of rows). The self-attention caches are gathered, copying only the rows that
        change; the cross-attention keys and values follow the rows' windows, and rows
        that all read one window share it (no copy; one matmul for all of them)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        b = len(self._rows)
        if len(index) == b and np.array_equal(index, np.arange(b)):
            return
        for i in range(len(self.keys)):
            if len(index) == b:  # same size: move the changed rows' used part in place
                moved = np.flatnonzero(index != np.arange(b))
                src = index[moved]
                self.keys[i][moved, ..., : self.offset] = self.keys[i][src, ..., : self.offset]
                self.values[i][moved, :, : self.offset] = self.values[i][src, :, : self.offset]
            else:
                self.keys[i], self.values[i] = self.keys[i][index], self.values[i][index]
        rows = self._rows[index]
        if not np.array_equal(rows, self._rows):
            n_windows = self._windows[0][0].shape[0]
            if np.array_equal(rows, np.arange(n_windows)):
                self.cross = self._windows
            elif (rows == rows[0]).all():
                w = int(rows[0])
                self.cross = [(k[w : w + 1], v[w : w + 1]) for k, v in self._windows]
            else:
                self.cross = [(k[rows], v[rows]) for k, v in self._windows]
        self._rows = rows

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        """tokens (batch, n) → logits (batch, n, vocab), float32."""
        d = self.dec
        b, n = tokens.shape
        x = d.embedding[tokens] + d.positions[self.offset : self.offset + n]
        mask = None
        if n > 1:
            mask = np.triu(np.full((n, self.offset + n), -np.inf, np.float32), k=self.offset + 1)
        for i, layer in enumerate(d.layers):
            qkv = _linear(_layer_norm(x, *layer.ln[0]), layer.qkv_w, layer.qkv_b)
            q, k, v = (_heads(t, layer.n_head) for t in np.split(qkv, 3, axis=-1))
            k, v = self._append(i, k, v)
            x = x + _linear(_attend(q, k, v, mask), layer.out_w, layer.out_b)
            q = _heads(_linear(_layer_norm(x, *layer.ln[1]), layer.cq_w, layer.cq_b), layer.n_head)
            x = x + _linear(self._cross_attend(q, *self.cross[i]), layer.cout_w, layer.cout_b)
            h = _linear(_layer_norm(x, *layer.ln[2]), layer.mlp1_w, layer.mlp1_b)
            x = x + _linear(np_gelu(h), layer.mlp2_w, layer.mlp2_b)
        self.offset += n
        h = _layer_norm(x, *d.ln)
        return np_matmul_columns(h.reshape(b * n, -1), d.embedding.T).reshape(b, n, -1)

    @staticmethod
    def _cross_attend(q: np.ndarray, kt: np.ndarray, v: np.ndarray) -> np.ndarray:
        b, h, n, dh = q.shape
        if kt.shape[0] == b:
            return _attend(q, kt, v, None)
        # Every row reads the one window (a beam): its queries go in one matmul, which
        # reads the window's keys and values once instead of once per row.
        shared = q.transpose(1, 0, 2, 3).reshape(1, h, b * n, dh)
        return _attend(shared, kt, v, None).reshape(b, n, h * dh)

    def _append(self, i: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add this step's keys (kept transposed, (b, h, dh, T)) and values to layer i's cache."""
        b, h, n, dh = k.shape
        end = self.offset + n
        if i == len(self.keys):
            cap = max(64, n)
            self.keys.append(np.zeros((b, h, dh, cap), np.float32))
            self.values.append(np.zeros((b, h, cap, dh), np.float32))
        if end > self.values[i].shape[2]:  # grow by doubling
            cap = max(2 * self.values[i].shape[2], end)
            keys, values = np.zeros((b, h, dh, cap), np.float32), np.zeros((b, h, cap, dh), np.float32)
            keys[..., : self.offset] = self.keys[i][..., : self.offset]
            values[:, :, : self.offset] = self.values[i][:, :, : self.offset]
            self.keys[i], self.values[i] = keys, values
        self.keys[i][..., self.offset : end] = k.transpose(0, 1, 3, 2)
        self.values[i][:, :, self.offset : end] = v
        return self.keys[i][..., :end], self.values[i][:, :, :end]
