"""The session shared by segment-style engines (Whisper, Qwen3-ASR).

Live (`partials=True`): VAD finds utterances; the open one is re-decoded about every
second and LocalAgreement-2 turns the hypotheses into a committed prefix plus an
unstable tail (the partial); the utterance becomes finals at its endpoint or when it
reaches the maximum length. Offline (`partials=False`): closed utterances are packed
into windows of up to 30 s and decoded once each, several windows per batch.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from asr.agreement import LocalAgreement
from asr.base import SAMPLE_RATE, Event, Final, Partial, Session, SessionOptions
from asr.vad import Endpointer, Utterance, VadConfig

CONTEXT_CHARS = 240  # previous text given to the decoder as a prompt
MAX_PAUSE_S = 0.8  # pause kept between packed utterances, beyond their own padding
PREROLL_S = 2.0  # audio kept before the VAD's decision point while nobody speaks


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: tuple[tuple[float, float, str], ...] = ()  # seconds within the decoded audio
    flags: tuple[str, ...] = ()


class UtteranceDecoder(Protocol):
    max_window_s: float
    packs_utterances: bool  # offline: several utterances per window (needs timestamps)

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
        self._base_interval = int(decode_interval_s * SAMPLE_RATE)
        self._interval = self._base_interval
        self._batch = max(1, batch_size)
        self._buf = np.zeros(0, dtype=np.float32)  # audio kept, valid up to _len
        self._len = 0
        self._buf_start = 0  # stream sample index of _buf[0]
        self._closed: deque[Utterance] = deque()
        self._agreement = LocalAgreement()
        self._last_decode = 0  # sample index the last partial decode reached
        self._done = 0.0
        self._context = ""
        self._finished = False

    # -- audio bookkeeping --------------------------------------------------------
    def _ingest(self) -> None:
        new = self._take_audio()
        if new.size:
            if self._len + new.size > self._buf.size:  # grow by doubling: appends stay O(1)
                grown = np.empty(max(2 * self._buf.size, self._len + new.size, SAMPLE_RATE), np.float32)
                grown[: self._len] = self._buf[: self._len]
                self._buf = grown
            self._buf[self._len : self._len + new.size] = new
            self._len += new.size
            self._closed.extend(self._vad.feed(new))

    def _audio(self, start_s: float, end_s: float) -> np.ndarray:
        a = max(0, int(round(start_s * SAMPLE_RATE)) - self._buf_start)
        b = min(self._len, max(a, int(round(end_s * SAMPLE_RATE)) - self._buf_start))
        return self._buf[a:b]

    def _trim(self) -> None:
        # In silence keep a pre-roll: an onset is decided after the speech it starts with.
        idle_keep = self._vad.processed_s - PREROLL_S
        open_start = self._vad.open_start
        keep_s = min([u.start for u in self._closed] + [idle_keep if open_start is None else open_start])
        drop = int(keep_s * SAMPLE_RATE) - self._buf_start
        if drop > max(SAMPLE_RATE, self._len // 2):  # move the kept tail down in bulk
            self._buf[: self._len - drop] = self._buf[drop : self._len]
            self._len -= drop
            self._buf_start += drop

    @property
    def done_s(self) -> float:
        return self._done

    def _advance(self, t: float) -> None:
        # Never backwards: a lag readout that jumps back when an onset is found is noise.
        self._done = max(self._done, t)

    @property
    def idle(self) -> bool:
        if self._has_pending_audio():
            return False
        if self.options.partials:
            return not self._closed and not self._partial_due()
        return not self._offline_ready()

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
        now = self._buf_start + self._len
        return now - max(self._last_decode, int(start * SAMPLE_RATE)) >= self._interval

    def _partial(self) -> list[Event]:
        start = self._vad.open_start
        end = self._vad.processed_s
        audio = self._audio(start, end)
        prefix = self._agreement.committed_text
        t0 = time.perf_counter()
        hyp = self.decoder.decode(audio, prefix=prefix, context=self._context, timestamps=False)
        # Re-decode no more often than twice what a decode costs, so partials never take
        # more than half the machine and the transcript cannot fall ever further behind.
        spent = int((time.perf_counter() - t0) * SAMPLE_RATE)
        self._interval = max(self._base_interval, 2 * spent)
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
        finals = self._finals(t, [utt])
        return finals + [Partial("", round(utt.end, 3), round(utt.end, 3))]

    def _finals(self, t: Transcript, pieces: list[Utterance]) -> list[Final]:
        """Finals from a transcript of the utterances in `pieces`, decoded back to back."""
        duration = sum(u.end - u.start for u in pieces)
        segs = t.segments or ((0.0, duration, t.text),)
        out = []
        for s0, s1, text in segs:
            text = text.strip()
            if not text:
                continue
            a = _to_stream_time(pieces, max(0.0, s0))
            b = max(a, _to_stream_time(pieces, min(s1, duration), end=True))
            out.append(Final(text, round(a, 3), round(b, 3), flags=t.flags))
        if out and not t.flags:
            self._context = (self._context + " " + " ".join(f.text for f in out))[-CONTEXT_CHARS:]
        elif t.flags:
            self._context = ""  # never prompt with suspect text: it breeds loops
        return out

    # -- offline windows ---------------------------------------------------------------
    def _offline_ready(self) -> bool:
        # Decode once the closed utterances hold enough speech to fill a batch of windows.
        speech = sum(u.end - u.start for u in self._closed)
        return speech >= self._batch * self.decoder.max_window_s

    def _pack(self) -> list[list[Utterance]]:
        """Up to a batch of windows, each as many whole utterances as fit in 30 s of audio.

        Utterances go in with the pause after each cut to at most MAX_PAUSE_S, so long
        silences cost no encoder work while Whisper still hears where sentences end (joined
        with no pause at all, a test meeting lost 1.4 WER points).
        """
        windows: list[list[Utterance]] = []
        limit = self.decoder.max_window_s
        packs = self.decoder.packs_utterances
        while self._closed and len(windows) < self._batch:
            win = [self._closed.popleft()]
            while packs and self._closed and _span(win + [self._closed[0]]) <= limit:
                win.append(self._closed.popleft())
            windows.append(win)
        return windows

    def _window_audio(self, pieces: list[Utterance]) -> np.ndarray:
        return np.concatenate([self._audio(u.start, u.end) for u in pieces])

    def _decode_windows(self, windows: list[list[Utterance]]) -> list[Event]:
        pieces = [_with_pauses(w) for w in windows]
        results = self.decoder.decode_many([self._window_audio(p) for p in pieces])
        finals: list[Final] = []
        missed: list[Utterance] = []
        for win, piece, t in zip(windows, pieces, results):
            found = self._finals(t, piece)
            finals += found
            # Whisper may end a window early and skip its last utterances: an utterance that
            # no final overlaps by half its length is decoded again, on its own.
            if len(win) > 1:
                missed += [u for u in win if not _covered(u, found)]
        if missed:
            again = self.decoder.decode_many([self._window_audio([u]) for u in missed])
            for u, t in zip(missed, again):
                finals += self._finals(t, [u])
        finals.sort(key=lambda f: f.start)
        self._advance(windows[-1][-1].end)
        return finals


def _with_pauses(win: list[Utterance]) -> list[Utterance]:
    """The window's pieces: each utterance extended into the pause after it, up to MAX_PAUSE_S."""
    return [u if i == len(win) - 1 else Utterance(u.start, min(win[i + 1].start, u.end + MAX_PAUSE_S))
            for i, u in enumerate(win)]


def _span(win: list[Utterance]) -> float:
    return sum(u.end - u.start for u in _with_pauses(win))


def _to_stream_time(pieces: list[Utterance], t: float, end: bool = False) -> float:
    """Map a time in utterances joined back to back onto the stream's timeline.

    A time exactly at a joint belongs to the earlier utterance when it ends a segment.
    """
    for u in pieces:
        d = u.end - u.start
        if t < d or (end and t <= d):
            return u.start + t
        t -= d
    return pieces[-1].end


def _covered(u: Utterance, finals: list[Final]) -> bool:
    """Does some final overlap at least half of the utterance? (Whisper's segment times are
    loose: a neighbour's segment often reaches half a second into the next utterance.)"""
    need = 0.5 * (u.end - u.start)
    return any(min(u.end, f.end) - max(u.start, f.start) >= need for f in finals)
