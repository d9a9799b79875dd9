"""Whisper (every size, tiny to large-v3 and turbo) in MLX.

Module attribute names copy the openai / mlx-community checkpoint keys
(`encoder.blocks.0.attn.query.weight`, ...), so that layout loads with no renaming;
the transformers and CTranslate2 layouts are mapped onto it in `weights.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from asr.runtime.kernels import Embedding, Linear, attention, gelu


@dataclass(frozen=True)
class WhisperDims:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    @property
    def is_multilingual(self) -> bool:
        return self.n_vocab >= 51865


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> mx.array:
    """The encoder's fixed positional embedding ([sin, cos] halves)."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = mx.exp(-inc * mx.arange(channels // 2, dtype=mx.float32))
    t = mx.arange(length, dtype=mx.float32)[:, None] * inv[None, :]
    return mx.concatenate([mx.sin(t), mx.cos(t)], axis=1)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)

    def heads(self, x: mx.array) -> mx.array:
        b, t, _ = x.shape
        return x.reshape(b, t, self.n_head, -1).transpose(0, 2, 1, 3)

    def qkv(self, x: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        """Query, key and value of x, (batch, time, d) each: one matmul where weights allow."""
        if "scales" in self.query:  # quantized layers keep their own kernels
            return self.query(x), self.key(x), self.value(x)
        w = mx.concatenate([self.query.weight, self.key.weight, self.value.weight])
        b = mx.concatenate([self.query.bias, mx.zeros_like(self.query.bias), self.value.bias])
        return mx.split(mx.addmm(b, x, w.T), 3, axis=-1)

    def kv(self, x: mx.array) -> tuple[mx.array, mx.array]:
        """Keys and values in heads layout, (batch, heads, time, dh), for caches."""
        return self.heads(self.key(x)), self.heads(self.value(x))

    def attend(self, x: mx.array, k: mx.array, v: mx.array, mask=None) -> mx.array:
        """x attends over cached keys and values in heads layout (decoder)."""
        q = self.heads(self.query(x))
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=q.shape[-1] ** -0.5, mask=mask)
        b, _, t, _ = o.shape
        return self.out(o.transpose(0, 2, 1, 3).reshape(b, t, -1))

    def self_attend(self, x: mx.array) -> mx.array:
        """Unmasked self-attention over a whole sequence (encoder)."""
        q, k, v = self.qkv(x)
        scale = (q.shape[-1] // self.n_head) ** -0.5
        return self.out(attention(q, k, v, self.n_head, scale))


class KVCache:
    """Self-attention cache of one decoder layer, preallocated to the text context."""

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update_and_fetch(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array]:
        n = k.shape[2]
        if self.keys is None or self.offset + n > self.keys.shape[2]:
            grow = max(64, n)
            shape = (*k.shape[:2], self.offset + grow, k.shape[3])
            nk, nv = mx.zeros(shape, k.dtype), mx.zeros(shape, v.dtype)
            if self.keys is not None:
                nk[:, :, : self.offset] = self.keys[:, :, : self.offset]
                nv[:, :, : self.offset] = self.values[:, :, : self.offset]
            self.keys, self.values = nk, nv
        self.keys[:, :, self.offset : self.offset + n] = k
        self.values[:, :, self.offset : self.offset + n] = v
        self.offset += n
        return self.keys[:, :, : self.offset], self.values[:, :, : self.offset]


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(n_state, n_head)
            self.cross_attn_ln = nn.LayerNorm(n_state)
        self.mlp1 = Linear(n_state, 4 * n_state)
        self.mlp2 = Linear(4 * n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)

    def mlp(self, x: mx.array) -> mx.array:
        return self.mlp2(gelu(self.mlp1(self.mlp_ln(x))))

    def encode(self, x: mx.array) -> mx.array:
        x = x + self.attn.self_attend(self.attn_ln(x))
        return x + self.mlp(x)

    def decode(self, x, cross_kv, cache: KVCache, mask) -> mx.array:
        h = self.attn_ln(x)
        k, v = cache.update_and_fetch(*self.attn.kv(h))
        x = x + self.attn.attend(h, k, v, mask=mask)
        x = x + self.cross_attn.attend(self.cross_attn_ln(x), *cross_kv)
        return x + self.mlp(x)


class AudioEncoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        n = dims.n_audio_state
        self.conv1 = nn.Conv1d(dims.n_mels, n, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n, n, kernel_size=3, stride=2, padding=1)
        # Loaded from checkpoints that store it (transformers, CTranslate2), else computed.
        self.positional_embedding = sinusoids(dims.n_audio_ctx, n)
        self.blocks = [ResidualAttentionBlock(n, dims.n_audio_head) for _ in range(dims.n_audio_layer)]
        self.ln_post = nn.LayerNorm(n)

    def __call__(self, mel: mx.array) -> mx.array:
        """mel: (batch, frames, n_mels) with frames = 2 * n_audio_ctx."""
        x = gelu(self.conv1(mel))
        x = gelu(self.conv2(x))
        x = x + self.positional_embedding[: x.shape[1]]
        for block in self.blocks:
            x = block.encode(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        n = dims.n_text_state
        self.token_embedding = Embedding(dims.n_vocab, n)
        self.positional_embedding = mx.zeros((dims.n_text_ctx, n))
        self.blocks = [
            ResidualAttentionBlock(n, dims.n_text_head, cross_attention=True)
            for _ in range(dims.n_text_layer)
        ]
        self.ln = nn.LayerNorm(n)

    def cross_kv(self, audio_features: mx.array) -> list[tuple[mx.array, mx.array]]:
        """Cross-attention keys and values, computed once per audio window."""
        return [b.cross_attn.kv(audio_features) for b in self.blocks]

    def __call__(self, tokens: mx.array, cross_kv, caches: list[KVCache]) -> mx.array:
        """tokens: (batch, n) new tokens; returns logits (batch, n, vocab)."""
        offset = caches[0].offset
        n = tokens.shape[-1]
        x = self.token_embedding(tokens) + self.positional_embedding[offset : offset + n]
        mask = None
        if n > 1:
            # New tokens see the whole cache and each other causally.
            mask = mx.triu(mx.full((n, offset + n), -mx.inf, dtype=x.dtype), k=offset + 1)
        for block, kv, cache in zip(self.blocks, cross_kv, caches):
            x = block.decode(x, kv, cache, mask)
        return self.token_embedding.as_linear(self.ln(x))


class Whisper(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in range(self.dims.n_text_layer)]

    def __call__(self, mel: mx.array, tokens: mx.array) -> mx.array:
        """Teacher-forced logits for `tokens` over `mel` (tests and scoring)."""
        kv = self.decoder.cross_kv(self.encoder(mel))
        return self.decoder(tokens, kv, self.new_caches())
