"""Qwen3-ASR in MLX: a Whisper-style audio encoder feeding mlx-lm's Qwen3 decoder.

Encoder (per utterance): the 128-bin log-mel is cut into chunks of 100 frames (1 s); three
stride-2 conv2d layers with GELU turn each chunk into 13 tokens, a bias-free linear maps
channels x frequency to d_model, and sinusoidal positions restart at every chunk. Pre-LN
transformer layers attend bidirectionally within windows of 104 tokens (8 chunks); then
ln_post, proj1, GELU, proj2 into the decoder's width.

Decoder: mlx-lm's Qwen3 `Model`, fed merged embeddings: the audio embeddings replace the
`<|audio_pad|>` positions of the chat prompt. For audio-only input the three M-RoPE
position streams are identical, which is plain 1-D RoPE — what mlx-lm's Qwen3 applies.

Parameter names follow mlx-audio's conversion (`audio_tower.*`), with the decoder under
`lm.` (mlx-lm's own names below it).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_lm.models import qwen3

from asr.runtime.kernels import Embedding, Linear, attention, gelu
from asr.qwen3.config import AudioConfig, Qwen3ASRConfig, TextConfig, conv_out_len


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> mx.array:
    """[sin | cos] positions, log-spaced timescales (as Whisper and Qwen3-ASR)."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2, dtype=np.float32))
    t = np.arange(length, dtype=np.float32)[:, None] * inv[None, :]
    return mx.array(np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32))


class AudioAttention(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.q_proj = Linear(d, d)
        self.k_proj = Linear(d, d)
        self.v_proj = Linear(d, d)
        self.out_proj = Linear(d, d)

    def __call__(self, x: mx.array, window: int) -> mx.array:
        """x (1, n, d); every token attends to the tokens of its own window of `window`."""
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        scale = (x.shape[-1] // self.n_head) ** -0.5
        n, d = x.shape[1], x.shape[2]
        full = n // window * window
        parts = []
        if full:  # the complete windows as one batch
            w = [t[:, :full].reshape(full // window, window, d) for t in (q, k, v)]
            parts.append(attention(*w, self.n_head, scale).reshape(1, full, d))
        if full < n:
            parts.append(attention(q[:, full:], k[:, full:], v[:, full:], self.n_head, scale))
        return self.out_proj(parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=1))


class AudioEncoderLayer(nn.Module):
    def __init__(self, cfg: AudioConfig):
        super().__init__()
        d = cfg.d_model
        self.self_attn = AudioAttention(d, cfg.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = Linear(d, cfg.encoder_ffn_dim)
        self.fc2 = Linear(cfg.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def __call__(self, x: mx.array, window: int) -> mx.array:
        x = x + self.self_attn(self.self_attn_layer_norm(x), window)
        return x + self.fc2(gelu(self.fc1(self.final_layer_norm(x))))


class AudioEncoder(nn.Module):
    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.downsample_hidden_size
        self.conv2d1 = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.conv2d2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv2d3 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv_out = Linear(c * cfg.freq_after_conv, cfg.d_model, bias=False)
        self.layers = [AudioEncoderLayer(cfg) for _ in range(cfg.encoder_layers)]
        self.ln_post = nn.LayerNorm(cfg.d_model)
        self.proj1 = Linear(cfg.d_model, cfg.d_model)
        self.proj2 = Linear(cfg.d_model, cfg.output_dim)
        self._positions = sinusoids(cfg.tokens_per_chunk, cfg.d_model)

    def __call__(self, mel: mx.array) -> mx.array:
        """mel (frames, n_mels) of one utterance → (tokens, output_dim) audio embeddings."""
        cfg = self.cfg
        frames = mel.shape[0]
        size = cfg.chunk_frames
        n_chunks = max(1, -(-frames // size))
        last = frames - (n_chunks - 1) * size
        if n_chunks > 1 and last < size:
            # As the original: the short last chunk is zero-padded to a full one (a single
            # chunk is not), and only its valid outputs are kept.
            mel = mx.concatenate([mel, mx.zeros((size - last, mel.shape[1]), mel.dtype)])
        width = size if n_chunks > 1 else frames
        x = mel.reshape(n_chunks, width, -1).transpose(0, 2, 1)[..., None]  # (chunks, freq, time, 1)
        x = gelu(self.conv2d1(x))
        x = gelu(self.conv2d2(x))
        x = gelu(self.conv2d3(x))
        b, f, t, c = x.shape
        x = self.conv_out(x.transpose(0, 2, 3, 1).reshape(b, t, c * f))  # channel-major, as torch
        x = x + self._positions[:t]
        keep = conv_out_len(last)
        x = x.reshape(-1, x.shape[-1]) if keep == t else mx.concatenate(
            [x[:-1].reshape(-1, x.shape[-1]), x[-1, :keep]])
        x = x[None]
        for layer in self.layers:
            x = layer(x, cfg.window_tokens)
        x = self.ln_post(x)
        return self.proj2(gelu(self.proj1(x)))[0]


def text_args(cfg: TextConfig) -> qwen3.ModelArgs:
    return qwen3.ModelArgs(
        model_type="qwen3", hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        intermediate_size=cfg.intermediate_size, num_attention_heads=cfg.num_attention_heads,
        rms_norm_eps=cfg.rms_norm_eps, vocab_size=cfg.vocab_size,
        num_key_value_heads=cfg.num_key_value_heads, max_position_embeddings=cfg.max_position_embeddings,
        head_dim=cfg.head_dim, tie_word_embeddings=cfg.tie_word_embeddings, rope_theta=cfg.rope_theta,
    )


def use_cpu_kernels(module: nn.Module) -> None:
    """Give mlx-lm's float layers our few-row CPU path (same parameters, same math): a decoder
    step then runs numpy gemv instead of MLX's sgemm, which packs the whole weight per call."""
    for _, m in module.named_modules():
        if type(m) is nn.Linear:
            m.__class__ = Linear
        elif type(m) is nn.Embedding:
            m.__class__ = Embedding


class Qwen3ASR(nn.Module):
    def __init__(self, config: Qwen3ASRConfig):
        super().__init__()
        self.config = config
        self.audio_tower = AudioEncoder(config.audio)
        self.lm = qwen3.Model(text_args(config.text))
        use_cpu_kernels(self.lm)

    def encode(self, mel: mx.array) -> mx.array:
        return self.audio_tower(mel)

    def embed(self, ids: list[int]) -> mx.array:
        return self.lm.model.embed_tokens(mx.array(ids, dtype=mx.int32))

    def merged_embeddings(self, ids: list[int], audio: mx.array) -> mx.array:
        """Prompt embeddings with the audio embeddings in place of the audio pad tokens
        (which must be one contiguous run, as the chat prompt has them)."""
        pad = self.config.audio_token_id
        where = [i for i, t in enumerate(ids) if t == pad]
        if len(where) != audio.shape[0] or (where and where[-1] - where[0] + 1 != len(where)):
            raise ValueError(f"prompt has {len(where)} audio pads for {audio.shape[0]} audio embeddings")
        if not where:
            return self.embed(ids)
        a, b = where[0], where[-1] + 1
        text = self.embed(ids[:a] + ids[b:])
        return mx.concatenate([text[:a], audio.astype(text.dtype), text[a:]])

    def make_cache(self) -> list:
        from mlx_lm.models.cache import KVCache

        return [KVCache() for _ in self.lm.layers]

    def logits(self, embeddings: mx.array, cache: list | None, last_only: bool = True) -> mx.array:
        """Logits for (tokens, hidden) embeddings appended to the cache: (vocab,) for the last
        token, or (tokens, vocab). A prefill needs only the last: the head over 150k tokens
        for every prompt position would cost more than the decoder itself."""
        h = self.lm.model(None, cache, input_embeddings=embeddings[None])[0]
        if last_only:
            h = h[-1]
        if self.config.text.tie_word_embeddings:
            return self.lm.model.embed_tokens.as_linear(h)
        return self.lm.lm_head(h)
