"""The session shared by segment-style engines (Whisper, Qwen3-ASR).

Live (`partials=True`): VAD finds utterances; the open one is re-decoded about every
second and LocalAgreement-2 turns the hypotheses into a committed prefix plus an
unstable tail (the partial); the utterance becomes finals at its endpoint or when it
reaches the maximum length. Offline (`partials=False`): closed utterances are packed
into windows of up to 30 s and decoded once each, several windows per batch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from asr.agreement import LocalAgreement
from asr.base import SAMPLE_RATE, Event, Final, Partial, Session, SessionOptions
from asr.vad import Endpointer, Utterance, VadConfig

CONTEXT_CHARS = 240  # previous text given to the decoder as a prompt
PREROLL_S = 2.0  # audio kept before the VAD's decision point while nobody speaks


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: tuple[tuple[float, float, str], ...] = ()  # seconds within the decoded audio
    flags: tuple[str, ...] = ()


class UtteranceDecoder(Protocol):
    max_window_s: float

    def decode(self, audio: np.ndarray, prefix: str, context: str, timestamps: bool) -> Transcript: ...

    def decode_many(self, windows: list[np.ndarray]) -> list[Transcript]: ...


class SegmentedSession(Session):
    def __init__(self, decoder: UtteranceDecoder, options: SessionOptions | None = None,
                 vad: VadConfig | None = None, decode_interval_s: float = 1.0, batch_size: int = 4):
        super().__init__()
        self.options = opts = options or SessionOptions()
        self.decoder = decoder
        max_utt = min(opts.max_utterance_s, decoder.max_window_s) - 0.5
        self._vad = Endpointer(vad or VadConfig(max_utterance_s=max_utt))
        self._interval = int(decode_interval_s * SAMPLE_RATE)
        self._batch = max(1, batch_size)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # sample index of _buf[0]
        self._closed: deque[Utterance] = deque()
        self._retried: set[float] = set()
        self._agreement = LocalAgreement()
        self._last_decode = 0  # sample index the last partial decode reached
        self._done = 0.0
        self._context = ""
        self._finished = False

    # -- audio bookkeeping --------------------------------------------------------
    def _ingest(self) -> None:
        new = self._take_audio()
        if new.size:
            self._buf = np.concatenate([self._buf, new])
            self._closed.extend(self._vad.feed(new))

    def _audio(self, start_s: float, end_s: float) -> np.ndarray:
        a = max(0, int(round(start_s * SAMPLE_RATE)) - self._buf_start)
        b = max(a, int(round(end_s * SAMPLE_RATE)) - self._buf_start)
        return self._buf[a:b]

    def _trim(self) -> None:
        # In silence keep a pre-roll: an onset is decided after the speech it starts with.
        idle_keep = self._vad.processed_s - PREROLL_S
        open_start = self._vad.open_start
        keep_s = min([u.start for u in self._closed] + [idle_keep if open_start is None else open_start])
        drop = int(keep_s * SAMPLE_RATE) - self._buf_start
        if drop > SAMPLE_RATE:  # trim in bulk, not every step
            self._buf = self._buf[drop:].copy()
            self._buf_start += drop

    @property
    def done_s(self) -> float:
        return self._done

    def _advance(self, t: float) -> None:
        # Never backwards: a lag readout that jumps back when an onset is found is noise.
        self._done = max(self._done, t)

    @property
    def idle(self) -> bool:
        if self._pending_audio():
            return False
        if self.options.partials:
            return not self._closed and not self._partial_due()
        return not self._offline_ready()

    def _pending_audio(self) -> bool:
        with self._lock:
            return bool(self._chunks)

    # -- the work -----------------------------------------------------------------------
    def step(self) -> list[Event]:
        if self._finished:
            return []
        self._ingest()
        events: list[Event] = []
        if self.options.partials:
            if self._closed:
                events = self._finalize(self._closed.popleft())
            elif self._partial_due():
                events = self._partial()
            else:
                self._advance(self._vad.open_start if self._vad.open_start is not None else self._vad.processed_s)
        elif self._offline_ready():
            events = self._decode_windows(self._pack())
        self._trim()
        return events

    def finish(self) -> list[Event]:
        self._ingest()
        self._closed.extend(self._vad.flush())
        events: list[Event] = []
        while self._closed:
            if self.options.partials:
                events += self._finalize(self._closed.popleft())
            else:
                events += self._decode_windows(self._pack())
        self._advance(self.fed_s)
        self._finished = True
        return events

    def _partial_due(self) -> bool:
        start = self._vad.open_start
        if start is None:
            return False
        now = self._buf_start + len(self._buf)
        return now - max(self._last_decode, int(start * SAMPLE_RATE)) >= self._interval

    def _partial(self) -> list[Event]:
        start = self._vad.open_start
        end = self._vad.processed_s
        audio = self._audio(start, end)
        prefix = self._agreement.committed_text
        hyp = self.decoder.decode(audio, prefix=prefix, context=self._context, timestamps=False)
        self._last_decode = int(end * SAMPLE_RATE)
        _, tail = self._agreement.update(hyp.text)
        self._advance(end)
        text = " ".join(self._agreement.committed + tail)
        return [Partial(text, round(start, 3), round(end, 3))] if text else []

    def _finalize(self, utt: Utterance) -> list[Event]:
        prefix = self._agreement.committed_text
        t = self.decoder.decode(self._audio(utt.start, utt.end), prefix=prefix, context=self._context,
                                timestamps=not prefix)
        self._agreement.reset()
        self._last_decode = int(utt.end * SAMPLE_RATE)
        self._advance(utt.end)
        finals = self._finals(t, utt.start, utt.end)
        return finals + [Partial("", round(utt.end, 3), round(utt.end, 3))]

    def _finals(self, t: Transcript, start: float, end: float) -> list[Final]:
        segs = t.segments or ((0.0, end - start, t.text),)
        out = []
        for s0, s1, text in segs:
            text = text.strip()
            if not text:
                continue
            a = min(end, start + max(0.0, s0))
            b = min(end, max(a, start + s1))
            out.append(Final(text, round(a, 3), round(b, 3), flags=t.flags))
        if out and not t.flags:
            self._context = (self._context + " " + " ".join(f.text for f in out))[-CONTEXT_CHARS:]
        elif t.flags:
            self._context = ""  # never prompt with suspect text: it breeds loops
        return out

    # -- offline windows ---------------------------------------------------------------
    def _offline_ready(self) -> bool:
        # Decode once the closed utterances span enough audio to fill a batch of windows.
        if not self._closed:
            return False
        return self._closed[-1].end - self._closed[0].start >= self._batch * self.decoder.max_window_s

    def _pack(self) -> list[list[Utterance]]:
        windows: list[list[Utterance]] = []
        limit = self.decoder.max_window_s
        while self._closed and len(windows) < self._batch:
            win = [self._closed.popleft()]
            while self._closed and self._closed[0].end - win[0].start <= limit:
                win.append(self._closed.popleft())
            windows.append(win)
        return windows

    def _decode_windows(self, windows: list[list[Utterance]]) -> list[Event]:
        audios = [self._audio(w[0].start, w[-1].end) for w in windows]
        results = self.decoder.decode_many(audios)
        events: list[Event] = []
        requeue: list[Utterance] = []
        for win, t in zip(windows, results):
            start, end = win[0].start, win[-1].end
            finals = self._finals(t, start, end)
            events += finals
            # Whisper may stop before the window's end: decode what it left out again, once.
            covered = finals[-1].end if finals else start
            requeue += [u for u in win[1:] if u.start >= covered + 0.5 and u.start not in self._retried]
            self._advance(end)
        for u in requeue:
            self._retried.add(u.start)
        self._closed.extendleft(reversed(requeue))
        return events
