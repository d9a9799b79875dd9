"""The natively streaming Voxtral session: exactly one decoder step per 80 ms of audio.

Audio → incremental log-mel → causal conv stem and encoder (bounded caches) → 4x adapter
→ decoder step with `adapter[t] + embed(previous token)`. The stream starts with the
model's left padding of silence and the prompt `[BOS] + [STREAMING_PAD] * (pad + delay)`;
control tokens never reach the text. Finals come from an endpoint policy: a run of pad
tokens after text (a pause) or a maximum length at a word boundary. EOS does not end a
meeting: it is fed back as a pad. Memory and cost per step do not grow with the meeting.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from asr.base import (
    SAMPLE_RATE,
    Event,
    Final,
    Partial,
    Session,
    SessionOptions,
)
from asr.features import VoxtralMelStream, voxtral_log_mel
from asr.voxtral.model import VoxtralRealtime
from asr.voxtral.spec import DEFAULT_DELAY_MS, delay_tokens
from asr.voxtral.tokenizer import StreamDecoder, TekkenTokenizer

STEPS_PER_CALL = 4  # decoder steps one `step()` may take: bounded work per call


@dataclass(frozen=True)
class EndpointPolicy:
    pause_s: float = 0.64  # this many pad tokens in a row after text end an utterance
    max_utterance_s: float = 30.0  # then a final at the next word boundary


class VoxtralSession(Session):
    def __init__(self, model: VoxtralRealtime, tokenizer: TekkenTokenizer, options: SessionOptions | None = None,
                 left_pad_tokens: int = 32, endpoint: EndpointPolicy | None = None, rebase_at: int | None = None):
        super().__init__()
        self.options = options or SessionOptions()
        self.model = model
        self.tok = tokenizer
        self.n_delay = delay_tokens(self.options.delay_ms)
        self.n_left = left_pad_tokens
        self.endpoint = endpoint or EndpointPolicy(max_utterance_s=self.options.max_utterance_s)
        cfg = model.config
        self.frame_samples = cfg.samples_per_token  # audio per decoder step (1280 = 80 ms)
        self.frame_s = self.frame_samples / SAMPLE_RATE
        self._mel = VoxtralMelStream(cfg.audio.num_mel_bins, cfg.audio.global_log_mel_max)
        self._audio = model.new_audio_state(rebase_at=rebase_at)
        self._caches = model.make_caches(rebase_at=rebase_at, reserve=True)
        self._scales = model.ada_scales(float(self.n_delay))
        self._frames: list[mx.array] = []  # adapter frames (dim,) waiting for their decoder step
        self._pos = 0  # decoder positions consumed (the prompt counts)
        self._prompt = [tokenizer.bos] + [tokenizer.streaming_pad] * (self.n_left + self.n_delay)
        self._last = tokenizer.streaming_pad
        self._stream = StreamDecoder(tokenizer)
        self._text = ""  # text since the last final
        self._start: float | None = None
        self._last_text_pos = 0
        self._pads = 0
        self._started = False
        self._finished = False
        self.on_token = None  # optional callback(token id) per decoder step, for tests and tools

    # -- time ------------------------------------------------------------------------------
    def _time(self, pos: int) -> float:
        """Audio time a token at decoder position `pos` speaks about (delay taken off)."""
        return max(0.0, (pos - self.n_left - self.n_delay) * self.frame_s)

    @property
    def done_s(self) -> float:
        return min(self.fed_s, self._time(self._pos))

    @property
    def idle(self) -> bool:
        return not self._has_pending_audio() and not self._can_decode()

    def _can_decode(self) -> bool:
        if self._pos == 0:
            return len(self._frames) >= len(self._prompt)
        return bool(self._frames)

    # -- audio in ------------------------------------------------------------------------
    def _ingest(self, audio: np.ndarray, final: bool = False) -> None:
        if not self._started:
            self._started = True
            audio = np.concatenate([np.zeros(self.n_left * self.frame_samples, np.float32), audio])
        mel = self._mel.push(audio)
        if final:
            mel = np.concatenate([mel, self._mel.flush()])
        if len(mel):
            frames = self.model.encode_audio(mx.array(mel[None]), self._audio)
            mx.eval(frames)
            self._frames.extend(frames[0, i] for i in range(frames.shape[1]))

    # -- decoding ----------------------------------------------------------------------------
    def step(self) -> list[Event]:
        if self._finished:
            return []
        audio = self._take_audio()
        if audio.size:
            self._ingest(audio)
        events: list[Event] = []
        for _ in range(STEPS_PER_CALL):
            if not self._can_decode():
                break
            events += self._decode_one()
        return events

    def _decode_one(self) -> list[Event]:
        if self._pos == 0:
            n = len(self._prompt)
            audio = mx.stack(self._frames[:n])[None]
            embeds = audio + self.model.embed(mx.array([self._prompt]))
            del self._frames[:n]
        else:
            embeds = self._frames.pop(0)[None, None] + self.model.embed(mx.array([[self._last]]))
            n = 1
        hidden = self.model.decode(embeds, self._caches, self._scales)
        token = int(mx.argmax(self.model.logits(hidden[:, -1:]), axis=-1).item())
        self._pos += n
        return self._on_token(token)

    def _on_token(self, token: int) -> list[Event]:
        tok = self.tok
        if self.on_token is not None:
            self.on_token(token)
        if token == tok.eos:
            token = tok.streaming_pad  # a meeting does not end at EOS
        self._last = token
        if token == tok.streaming_pad:
            self._pads += 1
            if self._text.strip() and self._pads * self.frame_s >= self.endpoint.pause_s:
                return self._final()
            return []
        delta = self._stream.push(token)
        if not delta:
            return []  # a control token, or half of a UTF-8 character
        events: list[Event] = []
        long = self._start is not None and self._time(self._pos) - self._start >= self.endpoint.max_utterance_s
        if long and delta[:1].isspace() and self._text.strip():
            events += self._final()  # cut a too-long utterance at a word boundary
        self._pads = 0
        if self._start is None:
            self._start = self._time(self._pos)
        self._text += delta
        self._last_text_pos = self._pos
        events.append(Partial(self._text.strip(), round(self._start, 3), round(self._time(self._pos) + self.frame_s, 3)))
        return events

    def _final(self) -> list[Event]:
        self._text += self._stream.flush()
        text = self._text.strip()
        start = self._start or 0.0
        end = max(start, self._time(self._last_text_pos) + self.frame_s)
        self._text, self._start = "", None
        if not text:
            return []
        return [Final(text, round(start, 3), round(min(end, max(self.fed_s, start)), 3)), Partial("", round(end, 3), round(end, 3))]

    def finish(self) -> list[Event]:
        """Flush: pad to a whole frame plus the delay and the model's right padding, decode it."""
        if self._finished:
            return []
        audio = self._take_audio()  # after this, everything fed (self._fed samples) is in
        total = self.n_left * self.frame_samples + self._fed  # what the mel stream sees
        pad = np.zeros((-total) % self.frame_samples + (self.n_delay + 1 + 10) * self.frame_samples, np.float32)
        self._ingest(np.concatenate([audio, pad]), final=True)
        events: list[Event] = []
        while self._can_decode():
            events += self._decode_one()
        events += self._final()
        self._finished = True
        return events


def offline_tokens(model: VoxtralRealtime, tokenizer: TekkenTokenizer, audio: np.ndarray,
                   delay_ms: int = DEFAULT_DELAY_MS, left_pad_tokens: int = 32) -> list[int]:
    """The batch twin of a session: the whole padded recording through the mel and the encoder
    at once, the prompt prefilled, then one greedy step per remaining adapter frame. A session
    fed the same audio in any chunks must emit exactly these tokens."""
    n_delay = delay_tokens(delay_ms)
    step = model.config.samples_per_token
    left = np.zeros(left_pad_tokens * step, np.float32)
    body = np.concatenate([left, np.asarray(audio, np.float32)])
    body = np.concatenate([body, np.zeros((-body.size) % step + (n_delay + 1 + 10) * step, np.float32)])
    cfg = model.config.audio
    adapter = model.encode(mx.array(voxtral_log_mel(body, cfg.num_mel_bins, cfg.global_log_mel_max)[None]))
    caches = model.make_caches()
    scales = model.ada_scales(float(n_delay))
    prompt = [tokenizer.bos] + [tokenizer.streaming_pad] * (left_pad_tokens + n_delay)
    n = len(prompt)
    hidden = model.decode(adapter[:, :n] + model.embed(mx.array([prompt])), caches, scales)
    tokens = [int(mx.argmax(model.logits(hidden[:, -1:]), axis=-1).item())]
    for t in range(n, adapter.shape[1]):
        last = tokenizer.streaming_pad if tokens[-1] == tokenizer.eos else tokens[-1]
        hidden = model.decode(adapter[:, t : t + 1] + model.embed(mx.array([[last]])), caches, scales)
        tokens.append(int(mx.argmax(model.logits(hidden), axis=-1).item()))
    return tokens
