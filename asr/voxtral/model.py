"""Voxtral Mini 4B Realtime in MLX: causal audio encoder, 4x adapter, Mistral decoder with
delay-conditioned AdaRMSNorm. Every size comes from `VoxtralConfig`.

Module names copy the original Mistral checkpoint (`consolidated.safetensors`) with its
`mm_streams_embeddings.embedding_module.` prefix dropped, so that layout loads with no other
renaming, and RoPE is the original interleaved form (`traditional=True`). `weights.py` maps
the transformers layout (rotate-half RoPE, permuted q/k) and mlx-audio's names onto these.

Streaming API. All state is explicit and bounded; modules hold only weights.

    model = VoxtralRealtime(config)
    audio = model.new_audio_state()          # AudioState: conv left context (<= 2 frames per
                                             #   conv), encoder SlidingCaches (one per layer),
                                             #   encoder frames waiting for a full adapter group
    a = model.encode_audio(mel, audio)       # mel (B, T, n_mels), any T >= 0, in time order ->
                                             #   (B, n, dim) adapter frames: one per 8 mel frames
                                             #   completed so far (80 ms each); mutates `audio`
    caches = model.make_caches()             # decoder SlidingCaches, one per layer
    scales = model.ada_scales(6.0)           # per-layer (1 + ada(t_cond)) for a delay in tokens
    h = model.decode(a + model.embed(tokens), caches, scales)   # (B, L, dim), final-normed
    logits = model.logits(h)                 # (B, L, vocab): tied embeddings

The pieces: `model.whisper_encoder.conv_stem(mel, tails) -> (frames, tails)`,
`model.whisper_encoder.transformer(frames, caches) -> hidden` (final-normed),
`model.adapter(hidden)` (groups of `downsample_factor` frames). `model.encode(mel)` and
`model(mel, tokens, delay_tokens)` are the one-shot forms.

Positions. A `SlidingCache` holds one layer's keys and values for the last `window`
positions (mlx-lm's rotating-cache scheme) plus a RoPE origin: new tokens are rotated to
`offset - origin`. Attention inside a sliding window depends only on position differences,
so when positions would pass `cache.rebase_at` the stack moves every layer's origin forward
by the same amount and re-rotates its cached keys by minus that amount (`rebase`). A stream
of any length keeps its positions below about `window + max(window, 8192)`, where float32
RoPE angles stay precise, and its memory and cost per step constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from asr.runtime.kernels import Embedding, Linear, gelu
from asr.voxtral.config import DecoderArgs, EncoderArgs, VoxtralConfig

# Positions run up to window + max(window, REBASE_SPAN) before a rebase: a rebase every
# ~11 min for the decoder's 8192 window, every ~164 s for the encoder's 750.
REBASE_SPAN = 8192


def time_embedding(t: float, dim: int, theta: float = 10000.0) -> mx.array:
    """Sinusoidal embedding of the delay in tokens (480 ms -> 6.0): [cos, sin] halves."""
    half = dim // 2
    inv_freq = mx.exp(-math.log(theta) * mx.arange(half, dtype=mx.float32) / half)
    emb = float(t) * inv_freq
    return mx.concatenate([mx.cos(emb), mx.sin(emb)])


class SlidingCache:
    """Keys and values of one attention layer for the last `window` positions, plus a RoPE
    origin (see the module docstring). Duck-typed like mlx-lm's caches (`offset`,
    `update_and_fetch`) and filled the way its RotatingKVCache is (without `keep`): one token
    is written in place into a buffer that grows in steps to `window` slots and then wraps;
    several tokens at once are appended to the kept keys put back in time order, trimmed to
    the `window - 1` the first of them needs. Written here because importing mlx_lm loads
    transformers and torch."""

    step = 256

    def __init__(self, window: int, rebase_at: int | None = None, reserve: bool = False):
        self.window = window
        # reserve: take the whole window at the first write, so a live session's memory is its
        # bound from the first minute (what the memory budget plans for) and never grows later.
        self.reserve = reserve
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0  # tokens seen
        self.origin = 0
        self.rebase_at = rebase_at if rebase_at is not None else window + max(window, REBASE_SPAN)
        self._idx = 0  # the next slot to write

    @property
    def position(self) -> int:
        """The RoPE position of the next token."""
        return self.offset - self.origin

    @property
    def nbytes(self) -> int:
        return 0 if self.keys is None else self.keys.nbytes + self.values.nbytes

    def make_mask(self, n: int) -> mx.array | None:
        """The mask for `n` new tokens over what `update_and_fetch` will return: causal and
        at most `window` positions back. One token sees every kept slot: no mask."""
        if n == 1:
            return None
        past = min(self.window - 1, self.offset)
        q = mx.arange(past, past + n)[:, None]
        k = mx.arange(past + n)[None]
        return (k <= q) & (q - k < self.window)

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        """Store (B, heads, n, head_dim) keys and values; return every kept one."""
        if keys.shape[2] == 1:
            self._write_one(keys, values)
        else:
            self._append(keys, values)
        self.offset += keys.shape[2]
        if self.offset < self.keys.shape[2]:  # slots grown but not written yet
            return self.keys[:, :, : self.offset], self.values[:, :, : self.offset]
        return self.keys, self.values

    def _in_order(self, a: mx.array) -> mx.array:
        if self._idx == a.shape[2]:
            return a
        if self._idx < self.offset:  # wrapped: the oldest slot is the next to write
            return mx.concatenate([a[:, :, self._idx :], a[:, :, : self._idx]], axis=2)
        return a[:, :, : self._idx]

    def _append(self, keys: mx.array, values: mx.array) -> None:
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            k, v = self._in_order(self.keys), self._in_order(self.values)
            drop = max(0, k.shape[2] - (self.window - 1))
            self.keys = mx.concatenate([k[:, :, drop:], keys], axis=2)
            self.values = mx.concatenate([v[:, :, drop:], values], axis=2)
        self._idx = self.keys.shape[2]

    def _write_one(self, key: mx.array, value: mx.array) -> None:
        if self.keys is None or (self.offset >= self.keys.shape[2] and self.keys.shape[2] < self.window):
            grow = self.window - self.offset if self.reserve else min(self.step, self.window - self.offset)
            b, h, _, _ = key.shape
            new_k = mx.zeros((b, h, grow, key.shape[3]), key.dtype)
            new_v = mx.zeros((b, h, grow, value.shape[3]), value.dtype)
            if self.keys is None:
                self.keys, self.values = new_k, new_v
            else:
                self.keys = mx.concatenate([self.keys, new_k], axis=2)
                self.values = mx.concatenate([self.values, new_v], axis=2)
            self._idx = self.offset
        if self.keys.shape[2] > self.window:  # after an append: keep the newest window
            excess = self.keys.shape[2] - self.window
            self.keys, self.values = self.keys[:, :, excess:], self.values[:, :, excess:]
            self._idx = self.window
        if self._idx == self.window:
            self._idx = 0
        self.keys[:, :, self._idx : self._idx + 1] = key
        self.values[:, :, self._idx : self._idx + 1] = value
        self._idx += 1


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, rope_theta: float,
                 bias: bool):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.scale = head_dim**-0.5
        self.wq = Linear(dim, n_heads * head_dim, bias=bias)
        self.wk = Linear(dim, n_kv_heads * head_dim, bias=False)  # as in Whisper: never a k bias
        self.wv = Linear(dim, n_kv_heads * head_dim, bias=bias)
        self.wo = Linear(n_heads * head_dim, dim, bias=bias)
        self.rope = nn.RoPE(head_dim, traditional=True, base=rope_theta)

    def __call__(self, x: mx.array, cache: SlidingCache, mask) -> mx.array:
        b, n, _ = x.shape
        q = self.wq(x).reshape(b, n, self.n_heads, -1).transpose(0, 2, 1, 3)
        k = self.wk(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        v = self.wv(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        q = self.rope(q, offset=cache.position)
        k = self.rope(k, offset=cache.position)
        k, v = cache.update_and_fetch(k, v)
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.wo(o.transpose(0, 2, 1, 3).reshape(b, n, -1))

    def rebase(self, cache: SlidingCache, delta: int) -> None:
        """Move the cache's positions back by `delta`: its keys rotated by -delta."""
        if cache.keys is not None:
            k = cache.keys  # (B, heads, slots, head_dim): one rotation for every slot
            cache.keys = self.rope(k[..., None, :], offset=-delta).reshape(k.shape)
        cache.origin += delta


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x); only the down projection w2 may carry a bias."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool):
        super().__init__()
        self.w1 = Linear(dim, hidden_dim, bias=False)
        self.w2 = Linear(hidden_dim, dim, bias=bias)
        self.w3 = Linear(dim, hidden_dim, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.w2(nn.silu(self.w1(x)) * self.w3(x))


def run_stack(layers: list, x: mx.array, caches: list[SlidingCache], *extra) -> mx.array:
    """x through `layers` (each with its cache), at most one window of frames at a time, so
    the scores stay (window x 2 window) whatever the input length; positions kept bounded."""
    window = caches[0].window
    outs = []
    for start in range(0, x.shape[1], window):
        h = x[:, start : start + window]
        n = h.shape[1]
        first = caches[0]
        if first.position + n > first.rebase_at and first.position > window:
            rebase(layers, caches, first.position - window)
        mask = first.make_mask(n)
        for i, (layer, cache) in enumerate(zip(layers, caches)):
            h = layer(h, cache, mask, *(e[i] for e in extra))
        outs.append(h)
    return outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=1)


def rebase(layers: list, caches: list[SlidingCache], delta: int) -> None:
    """Re-base a whole stack's positions by `delta` (every layer moves together)."""
    for layer, cache in zip(layers, caches):
        layer.attention.rebase(cache, delta)


# --- audio encoder -----------------------------------------------------------------------


class CausalConv1d(nn.Module):
    """Conv1d with left padding `kernel - stride`, fed in chunks: the input frames it has not
    consumed yet (its `tail`, starting as that padding) carry over to the next call."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)

    def initial_tail(self, batch: int = 1) -> mx.array:
        in_channels = self.conv.weight.shape[-1]
        return mx.zeros((batch, self.kernel_size - self.stride, in_channels))

    def __call__(self, x: mx.array, tail: mx.array) -> tuple[mx.array, mx.array]:
        """x (B, T, in) new frames -> ((B, n, out) outputs they complete, new tail)."""
        buf = mx.concatenate([tail.astype(x.dtype), x], axis=1)
        k, s = self.kernel_size, self.stride
        n = (buf.shape[1] - k) // s + 1 if buf.shape[1] >= k else 0
        if n == 0:
            return mx.zeros((x.shape[0], 0, self.conv.weight.shape[0]), x.dtype), buf
        return self.conv(buf[:, : (n - 1) * s + k]), buf[:, n * s :]


class TransformerLayer(nn.Module):
    """Pre-RMSNorm attention and SwiGLU blocks: an encoder layer, and the base of a decoder one."""

    def __init__(self, args: EncoderArgs | DecoderArgs):
        super().__init__()
        self.attention_norm = nn.RMSNorm(args.dim, eps=args.norm_eps)
        self.attention = Attention(args.dim, args.n_heads, args.n_kv_heads, args.head_dim,
                                   args.rope_theta, bias=args.use_biases)
        self.ffn_norm = nn.RMSNorm(args.dim, eps=args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.hidden_dim, bias=args.use_biases)

    def __call__(self, x: mx.array, cache: SlidingCache, mask) -> mx.array:
        h = x + self.attention(self.attention_norm(x), cache, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class EncoderTransformer(nn.Module):
    def __init__(self, args: EncoderArgs):
        super().__init__()
        self.layers = [TransformerLayer(args) for _ in range(args.n_layers)]
        self.norm = nn.RMSNorm(args.dim, eps=args.norm_eps)

    def __call__(self, frames: mx.array, caches: list[SlidingCache]) -> mx.array:
        """frames (B, T, dim) after the conv stem, continuing what `caches` have seen."""
        if frames.shape[1] == 0:
            return frames
        return self.norm(run_stack(self.layers, frames, caches))


class WhisperEncoder(nn.Module):
    """Causal conv stem (k3 s1, k3 s2, GELU after each) and a causal sliding-window transformer."""

    def __init__(self, args: EncoderArgs):
        super().__init__()
        self.args = args
        self.conv_layers = [
            CausalConv1d(args.num_mel_bins, args.dim, kernel_size=3, stride=1),
            CausalConv1d(args.dim, args.dim, kernel_size=3, stride=2),
        ]
        self.transformer = EncoderTransformer(args)

    def initial_tails(self, batch: int = 1) -> tuple[mx.array, ...]:
        return tuple(conv.initial_tail(batch) for conv in self.conv_layers)

    def conv_stem(self, mel: mx.array, tails: tuple[mx.array, ...]) -> tuple[mx.array, tuple]:
        """mel (B, T, n_mels) -> ((B, n, dim) frames, new tails): chunks give what one call gives."""
        x, new_tails = mel, []
        for conv, tail in zip(self.conv_layers, tails):
            x, tail = conv(x, tail)
            new_tails.append(tail)
            x = gelu(x)
        return x, tuple(new_tails)

    def make_caches(self, rebase_at: int | None = None) -> list[SlidingCache]:
        return [SlidingCache(self.args.sliding_window, rebase_at) for _ in range(self.args.n_layers)]


@dataclass
class AudioState:
    """What the audio path carries between `encode_audio` calls; every part is bounded."""

    tails: tuple[mx.array, ...]  # conv stem left context
    caches: list[SlidingCache]  # encoder self-attention, one per layer
    pending: mx.array  # encoder frames short of a full adapter group, (B, < factor, dim)


# --- decoder ------------------------------------------------------------------------------


class DecoderLayer(TransformerLayer):
    """A transformer layer whose FFN norm is scaled by the delay (AdaRMSNorm)."""

    def __init__(self, args: DecoderArgs):
        super().__init__(args)
        t = args.ada_rms_norm_t_cond_dim
        self.ada_rms_norm_t_cond = [Linear(args.dim, t, bias=False), nn.GELU(),
                                    Linear(t, args.dim, bias=False)]

    def ada_scale(self, t_cond: mx.array) -> mx.array:
        """The FFN norm's multiplier for a delay: 1 + up(gelu(down(t_cond)))."""
        down, _, up = self.ada_rms_norm_t_cond
        return 1.0 + up(gelu(down(t_cond)))

    def __call__(self, x: mx.array, cache: SlidingCache, mask, ada_scale: mx.array) -> mx.array:
        h = x + self.attention(self.attention_norm(x), cache, mask)
        return h + self.feed_forward(self.ffn_norm(h) * ada_scale)


# --- the whole model -----------------------------------------------------------------------


class VoxtralRealtime(nn.Module):
    def __init__(self, config: VoxtralConfig):
        super().__init__()
        self.config = config
        enc, dec = config.encoder, config.decoder
        self.tok_embeddings = Embedding(dec.vocab_size, dec.dim)
        self.whisper_encoder = WhisperEncoder(enc)
        self.audio_language_projection = [
            Linear(enc.dim * config.downsample_factor, dec.dim, bias=False),
            nn.GELU(),
            Linear(dec.dim, dec.dim, bias=False),
        ]
        self.layers = [DecoderLayer(dec) for _ in range(dec.n_layers)]
        self.norm = nn.RMSNorm(dec.dim, eps=dec.norm_eps)

    # audio -> adapter frames

    def new_audio_state(self, batch: int = 1, rebase_at: int | None = None) -> AudioState:
        dim = self.config.encoder.dim
        return AudioState(tails=self.whisper_encoder.initial_tails(batch),
                          caches=self.whisper_encoder.make_caches(rebase_at),
                          pending=mx.zeros((batch, 0, dim)))

    def adapter(self, hidden: mx.array) -> mx.array:
        """(B, factor * n, enc dim) encoder frames -> (B, n, dec dim): consecutive groups
        concatenated, then Linear -> GELU -> Linear."""
        b, t, d = hidden.shape
        factor = self.config.downsample_factor
        if t % factor:
            raise ValueError(f"the adapter takes groups of {factor} encoder frames, got {t}")
        first, _, second = self.audio_language_projection
        return second(gelu(first(hidden.reshape(b, t // factor, d * factor))))

    @property
    def dtype(self) -> mx.Dtype:
        """The activations' dtype: that of the (float) norm weights."""
        return self.norm.weight.dtype

    def encode_audio(self, mel: mx.array, state: AudioState) -> mx.array:
        """The adapter frames that `mel` (B, T, n_mels) completes, continuing `state`."""
        frames, state.tails = self.whisper_encoder.conv_stem(mel.astype(self.dtype), state.tails)
        hidden = self.whisper_encoder.transformer(frames, state.caches)
        if state.pending.shape[1]:
            hidden = mx.concatenate([state.pending.astype(hidden.dtype), hidden], axis=1)
        usable = hidden.shape[1] - hidden.shape[1] % self.config.downsample_factor
        state.pending = hidden[:, usable:]
        if usable == 0:
            return mx.zeros((mel.shape[0], 0, self.config.decoder.dim), hidden.dtype)
        return self.adapter(hidden[:, :usable])

    def encode(self, mel: mx.array) -> mx.array:
        """All adapter frames of a whole mel (B, T, n_mels), one call."""
        return self.encode_audio(mel, self.new_audio_state(mel.shape[0]))

    # decoder

    def make_caches(self, rebase_at: int | None = None, reserve: bool = False) -> list[SlidingCache]:
        window = self.config.decoder.sliding_window
        return [SlidingCache(window, rebase_at, reserve) for _ in self.layers]

    def ada_scales(self, delay_tokens: float) -> list[mx.array]:
        """Each layer's FFN-norm multiplier for a delay in tokens (480 ms -> 6.0); compute once."""
        t_cond = time_embedding(delay_tokens, self.config.decoder.dim)
        scales = [layer.ada_scale(t_cond).astype(self.dtype) for layer in self.layers]
        mx.eval(scales)
        return scales

    def embed(self, tokens: mx.array) -> mx.array:
        """(B, L) token ids -> (B, L, dim)."""
        return self.tok_embeddings(tokens)

    def decode(self, embeds: mx.array, caches: list[SlidingCache], ada_scales: list[mx.array]) -> mx.array:
        """(B, L, dim) inputs (adapter frame + embedding of the previous token) continuing
        `caches` -> final-normed hidden states (B, L, dim)."""
        return self.norm(run_stack(self.layers, embeds, caches, ada_scales))

    def logits(self, hidden: mx.array) -> mx.array:
        return self.tok_embeddings.as_linear(hidden)

    def rebase(self, caches: list[SlidingCache], delta: int) -> None:
        """Move the decoder's positions back by `delta` (automatic in `decode`; public for tests)."""
        rebase(self.layers, caches, delta)

    def __call__(self, mel: mx.array, tokens: mx.array, delay_tokens: float) -> mx.array:
        """Teacher-forced logits: token t sees adapter frame t (tests and scoring)."""
        audio = self.encode(mel)[:, : tokens.shape[1]]
        h = self.decode(audio + self.embed(tokens), self.make_caches(), self.ada_scales(delay_tokens))
        return self.logits(h)
