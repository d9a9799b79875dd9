"""Attention, GELU and small linear layers with a CPU fast path.

MLX's CPU backend is slow at exactly what a speech encoder does most outside its
matmuls (measured on a 2-core x86-64, mlx 0.32, OpenBLAS): softmax over 6x1500x1500
scores 240 ms vs 19 ms in numpy; erf over 1500x1536 60 ms vs ~6 ms; its batched
matmul 52 ms vs 11 ms. On CPU these two kernels therefore run the same math in numpy
on zero-copy views of evaluated MLX arrays; Metal and CUDA always take the MLX path.
A linear layer on a few rows (a decoder step) is the third case: MLX always calls
sgemm, which packs the whole weight matrix per call (0.2 ms for 1536x384, 4-11 ms for
Whisper's 51864x384 logits), where numpy's BLAS takes gemv (0.03 ms, 1.8 ms).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from asr.runtime.mlxrt import on_cpu

_SQRT1_2 = 1.0 / math.sqrt(2.0)
# Below this many score elements per call the MLX path is as fast (dispatch dominates).
_NUMPY_MIN_SCORES = 64 * 1024
_NUMPY_MIN_GELU = 64 * 1024
_NUMPY_MAX_ROWS = 16  # linear layers on at most this many rows take numpy's gemv/gemm
_cpu: bool | None = None
_executor: ThreadPoolExecutor | None = None


def _use_numpy() -> bool:
    global _cpu
    if _cpu is None:
        _cpu = on_cpu()
    return _cpu


def set_cpu_kernels(enabled: bool | None) -> None:
    """Force (True/False) or re-detect (None) the numpy path; tests compare both."""
    global _cpu
    _cpu = enabled


def _split_heads(x: mx.array, n_head: int) -> mx.array:
    b, t, _ = x.shape
    return x.reshape(b, t, n_head, -1).transpose(0, 2, 1, 3)


def attention(q: mx.array, k: mx.array, v: mx.array, n_head: int, scale: float,
              mask: mx.array | None = None) -> mx.array:
    """Multi-head softmax(q kᵀ · scale + mask) v over (batch, time, heads·dim) arrays."""
    if not _use_numpy() or q.shape[1] * k.shape[1] * n_head < _NUMPY_MIN_SCORES:
        o = mx.fast.scaled_dot_product_attention(
            _split_heads(q, n_head), _split_heads(k, n_head), _split_heads(v, n_head), scale=scale, mask=mask)
        b, _, t, _ = o.shape
        return o.transpose(0, 2, 1, 3).reshape(b, t, -1)
    return mx.array(np_attention(np.asarray(q), np.asarray(k), np.asarray(v), n_head, scale,
                                 None if mask is None else np.asarray(mask)))


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="notetaker-kernel")
    return _executor


def _parallel(fn, items) -> None:
    """Run fn over items on every core (numpy releases the GIL in matmuls and ufuncs)."""
    items = list(items)
    if len(items) == 1:
        fn(items[0])
    else:
        for _ in _pool().map(fn, items):
            pass


def np_matmul_columns(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (rows, k) @ w (k, n) with the columns split over the cores: for a wide output such
    as Whisper's 51864 logits (4 rows: 4.0 ms vs 6.7 ms on 2 cores)."""
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    workers = os.cpu_count() or 1
    step = -(-w.shape[1] // workers)

    def part(a: int) -> None:
        np.matmul(x, w[:, a : a + step], out=out[:, a : a + step])

    _parallel(part, range(0, w.shape[1], step))
    return out


def np_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, n_head: int, scale: float,
                 mask: np.ndarray | None = None, block: int = 256) -> np.ndarray:
    """The same in numpy: heads in parallel, 256 queries at a time so the scores stay in
    cache (26 ms for Whisper tiny's 6x1500x1500 vs 38-47 ms all at once)."""
    b, tq, d = q.shape
    dh = d // n_head
    out = np.empty((b, tq, d), np.float32)
    qs = q * np.float32(scale)

    def head(job: tuple[int, int]) -> None:
        i, h = job
        cols = slice(h * dh, (h + 1) * dh)
        kt = np.ascontiguousarray(k[i, :, cols].T)
        vh = np.ascontiguousarray(v[i, :, cols])
        for r in range(0, tq, block):
            scores = qs[i, r : r + block, cols] @ kt
            if mask is not None:
                scores += mask[r : r + block]
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            denom = scores.sum(axis=-1, keepdims=True)
            o = scores @ vh
            o /= denom  # normalise the (rows, dh) output, not the (rows, T) scores
            out[i, r : r + block, cols] = o

    _parallel(head, [(i, h) for i in range(b) for h in range(n_head)])
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), in place where possible.
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, as Whisper was trained with."""
    if not _use_numpy() or x.size < _NUMPY_MIN_GELU:
        return x * (1.0 + mx.erf(x * _SQRT1_2)) * 0.5
    return mx.array(np_gelu(np.asarray(x)))


def np_gelu(x: np.ndarray, block: int = 32 * 1536) -> np.ndarray:
    """Exact (erf) GELU of a float32 numpy array, into a new array, in cache-sized blocks
    (the dozen passes of the erf then stay in L2: 6.2 ms vs 15.6 ms for 1500x1536),
    split over the cores."""
    flat = x.reshape(-1)
    out = np.empty_like(flat)

    def part(span: tuple[int, int]) -> None:
        for i in range(span[0], span[1], block):
            xb = flat[i : min(i + block, span[1])]
            e = _erf(xb * np.float32(_SQRT1_2))
            e += 1.0
            e *= xb
            e *= 0.5
            out[i : i + len(xb)] = e

    workers = 1 if flat.size < 4 * block else (os.cpu_count() or 1)
    step = -(-flat.size // workers)
    _parallel(part, [(a, min(a + step, flat.size)) for a in range(0, flat.size, step)])
    return out.reshape(x.shape)


def linear(x: mx.array, weight: mx.array, bias: mx.array | None = None) -> mx.array | None:
    """x @ weight.T + bias through numpy for a few rows on CPU; None where MLX should do it."""
    if not _use_numpy() or weight.dtype != mx.float32:
        return None
    rows = x.size // x.shape[-1]
    if rows > _NUMPY_MAX_ROWS:
        return None
    xn = np.asarray(x).reshape(rows, x.shape[-1])
    out = xn @ np.asarray(weight).T
    if bias is not None:
        out += np.asarray(bias)
    return mx.array(out.reshape(*x.shape[:-1], weight.shape[0]))


class Linear(nn.Linear):
    """nn.Linear (same parameters, still quantizable) with the CPU path for few rows."""

    def __call__(self, x: mx.array) -> mx.array:
        out = linear(x, self.weight, self["bias"] if "bias" in self else None)
        return super().__call__(x) if out is None else out


class Embedding(nn.Embedding):
    def as_linear(self, x: mx.array) -> mx.array:
        out = linear(x, self.weight)
        return super().as_linear(x) if out is None else out
