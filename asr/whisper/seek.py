"""Whisper's own long-form loop, as faster-whisper runs it: 30 s windows cut from the
whole recording's log-mel, each advanced to the last timestamp the model closed, each
conditioned on the tokens (timestamps included) of the windows before it, with
temperature fallback on the compression-ratio and log-probability guards.

It gives users and tests an exact reference on our own decoder: with the same weights
its text is faster-whisper's. It needs the whole recording (the log-mel is clamped at the
recording's max), so it decodes when the session finishes: a mode for files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import mlx.core as mx
import numpy as np

from asr.base import FLAG_NO_SPEECH, SAMPLE_RATE, Event, Session
from asr.features import HOP, N_FRAMES, whole_log_mel
from asr.sentences import gaps_between, reading_finals
from asr.vad import Endpointer, Utterance
from asr.whisper.decoding import (
    TIME_PRECISION,
    DecodingOptions,
    DecodingResult,
    WhisperDecoder,
    timestamp_pairs,
)

PROMPT_RESET_ON_TEMPERATURE = 0.5  # faster-whisper: a window sampled hotter starts a fresh prompt
FRAME_S = HOP / SAMPLE_RATE  # 10 ms per mel frame
INPUT_STRIDE = 2  # mel frames per encoder output position (a timestamp step is 2 frames)


@dataclass(frozen=True)
class _Piece:
    start: float
    end: float
    tokens: tuple[int, ...]  # with its timestamps, as the prompt of later windows takes them


class SeekSession(Session):
    def __init__(self, decoder: WhisperDecoder, options: DecodingOptions):
        super().__init__()
        self.decoder = decoder
        self.opts = options
        self._parts: list[np.ndarray] = []
        self._vad = Endpointer()
        self._speech: list[Utterance] = []
        self._finished = False

    @property
    def idle(self) -> bool:
        return not self._has_pending_audio()

    @property
    def done_s(self) -> float:
        return self.fed_s if self._finished else 0.0

    def step(self) -> list[Event]:
        new = self._take_audio()
        if new.size:
            self._parts.append(new)
            self._speech += self._vad.feed(new)  # only to flag text where nobody spoke
        return []

    def finish(self) -> list[Event]:
        if self._finished:
            return []
        self.step()
        self._speech += self._vad.flush()
        audio = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        self._parts = []
        self._finished = True
        if audio.size < SAMPLE_RATE // 10:
            return []
        gaps = gaps_between(self._speech)

        def between(start: float, end: float) -> np.ndarray:
            return audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]

        return [f for p, text, flags in self._transcribe(audio)
                for f in reading_finals(p.start, p.end, text, self._flags(p, flags), gaps, between)]

    def _flags(self, p: _Piece, flags: tuple[str, ...]) -> tuple[str, ...]:
        # Text where the VAD heard no speech at all is suspect (noise, music): flag it.
        if not any(min(u.end, p.end) - max(u.start, p.start) > 0 for u in self._speech):
            flags = tuple(dict.fromkeys(flags + (FLAG_NO_SPEECH,)))
        return flags

    def _transcribe(self, audio: np.ndarray):
        mel = whole_log_mel(audio, self.decoder.model.dims.n_mels)
        content = len(mel) - 1
        duration = content * FRAME_S
        seek, prompt, reset_since = 0, [], 0
        while seek < content:
            size = min(N_FRAMES, content - seek)
            window = np.zeros((1, N_FRAMES, mel.shape[1]), np.float32)
            window[0, :size] = mel[seek : seek + size]
            feats = self.decoder.model.encoder(mx.array(window))
            r = self.decoder.decode(feats, self.opts, [size * FRAME_S], context=prompt[reset_since:])[0]
            if not r.tokens:  # the guards found no speech: faster-whisper skips the window
                seek += size
                continue
            pieces, seek = self._split(r, seek, size)
            for p in pieces:
                text = self.decoder.tok.decode([t for t in p.tokens if t < self.decoder.tok.eot]).strip()
                if p.start == p.end or not text:
                    continue
                prompt += p.tokens
                yield replace(p, end=min(p.end, duration)), text, r.flags
            if r.temperature > PROMPT_RESET_ON_TEMPERATURE:
                reset_since = len(prompt)

    def _split(self, r: DecodingResult, seek: int, size: int) -> tuple[list[_Piece], int]:
        """A window's tokens → timed pieces, and where the next window starts (frames)."""
        tb = self.decoder.tok.timestamp_begin
        tokens, offset = list(r.tokens), seek * FRAME_S
        pairs, single_ending = timestamp_pairs(tokens, tb)
        if not pairs:
            stamps = [t for t in tokens if t >= tb]
            length = size * FRAME_S
            if stamps and stamps[-1] != tb:
                length = (stamps[-1] - tb) * TIME_PRECISION
            return [_Piece(offset, offset + length, tuple(tokens))], seek + size
        cuts = pairs + ([len(tokens)] if single_ending else [])
        pieces, last = [], 0
        for cut in cuts:
            part = tokens[last:cut]
            pieces.append(_Piece(offset + (part[0] - tb) * TIME_PRECISION,
                                 offset + (part[-1] - tb) * TIME_PRECISION, tuple(part)))
            last = cut
        if single_ending:
            return pieces, seek + size
        return pieces, seek + (tokens[last - 1] - tb) * INPUT_STRIDE
