"""The session shared by segment-style engines (Whisper, Qwen3-ASR).

Every final comes from a window: whole utterances (found by the VAD) joined with their
pauses cut to at most MAX_PAUSE_S, up to the decoder's 30 s. A window's audio is given
to the decoder once; what it transcribes up to the last closed segment is final, and the
audio it did not reach (an unfinished last segment, trailing utterances it skipped)
opens the next window. So each stretch of audio becomes text exactly once.

Offline (`partials=False`): windows are packed from closed utterances and decoded
several at a time. Live (`partials=True`): the open utterance is re-decoded about every
second and LocalAgreement-2 turns the hypotheses into a committed prefix plus an
unstable tail (the partial); at its endpoint the utterance is decoded in one window
behind the audio of the utterances before it, whose finals are forced as the decoder's
prefix ("heard"), so the model hears the same context as offline and writes only the new
text.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from asr.agreement import LocalAgreement, plain_word
from asr.base import SAMPLE_RATE, Event, Final, Partial, Session, SessionOptions
from asr.sentences import gaps_between, reading_finals
from asr.vad import Endpointer, Utterance, VadConfig

MAX_PAUSE_S = 0.8  # pause kept between packed utterances, beyond their own padding
PREROLL_S = 2.0  # audio kept before the VAD's decision point while nobody speaks
HISTORY_GAP_S = 20.0  # an earlier utterance is heard again only if it ended this recently
WINDOW_MARGIN_S = 0.5  # room left in a window for timestamp slack
LIVE_MAX_UTTERANCE_S = 20.0  # live: a monologue is cut here, so a carried tail fits beside it
STRETCH_S, STRETCH_S_PER_WORD = 1.5, 0.5  # a segment longer than this skipped speech
MAX_CARRY_S = 8.0  # live: audio held back for the next window at most (else taken as it is)
MAX_WORDS_PER_S = 8.0  # faster than any speaker: a segment this dense was not heard


@dataclass(frozen=True)
class Span:
    """Text over a stretch of audio: a decoder's segment, or a final given back as heard."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...] = ()  # the decoder's own text tokens, when it has them


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: tuple = ()  # Spans (or (start, end, text) tuples), seconds within the window
    flags: tuple[str, ...] = ()
    # When the last segment is unfinished: window seconds up to which the segments are
    # closed. The audio after it is transcribed again by the next window. None: all closed.
    complete_until: float | None = None


class UtteranceDecoder(Protocol):
    max_window_s: float
    packs_utterances: bool  # several utterances per window (needs timestamps)

    def decode(self, audio: np.ndarray, prefix: str, heard: tuple[Span, ...], timestamps: bool) -> Transcript:
        """One window. `heard`: finals of the audio the window starts with, in window
        seconds, to be forced so that only the rest is transcribed; `prefix`: text of the
        rest already committed, forced and returned as part of the text."""
        ...

    def decode_many(self, windows: list[np.ndarray]) -> list[Transcript]: ...


@dataclass(frozen=True)
class _Said:
    """Utterances decoded in one window and the unflagged finals they became (stream
    seconds): live context. A final may run across their joints, so they stay together."""

    utterances: tuple[Utterance, ...]
    spans: tuple[Span, ...]

    @property
    def start(self) -> float:
        return self.utterances[0].start

    @property
    def end(self) -> float:
        return self.utterances[-1].end


class SegmentedSession(Session):
    def __init__(self, decoder: UtteranceDecoder, options: SessionOptions | None = None,
                 vad: VadConfig | None = None, decode_interval_s: float = 1.0, batch_size: int = 4):
        super().__init__()
        self.options = opts = options or SessionOptions()
        self.decoder = decoder
        max_utt = min(opts.max_utterance_s, decoder.max_window_s) - 0.5
        if opts.partials:
            max_utt = min(max_utt, LIVE_MAX_UTTERANCE_S)
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
        self._history: deque[_Said] = deque()  # live: recent finals, heard again as context
        self._carry: list[Utterance] = []  # live: utterances a window skipped, for the next one
        self._redo: list[list[Utterance]] = []  # offline: windows to decode before the decoded ones
        self._decoded: deque[tuple[list[Utterance], Transcript]] = deque()  # offline: waiting their turn
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

    def _window_audio(self, pieces: list[Utterance]) -> np.ndarray:
        return np.concatenate([self._audio(u.start, u.end) for u in pieces])

    def _trim(self) -> None:
        # In silence keep a pre-roll: an onset is decided after the speech it starts with.
        idle_keep = self._vad.processed_s - PREROLL_S
        open_start = self._vad.open_start
        kept = [u.start for u in self._closed] + [u.start for u in self._carry]
        kept += [s.start for s in self._history]
        kept += [w[0].start for w in self._redo] + [w[0].start for w, _ in self._decoded]
        keep_s = min(kept + [idle_keep if open_start is None else open_start])
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
                events = self._finalize([self._closed.popleft()], may_carry=True)
            elif self._partial_due():
                events = self._partial()
            else:
                self._advance(self._vad.open_start if self._vad.open_start is not None else self._vad.processed_s)
        elif self._offline_ready():
            events = self._offline_step()
        self._trim()
        return events

    def finish(self) -> list[Event]:
        self._ingest()
        self._closed.extend(self._vad.flush())
        events: list[Event] = []
        while self._closed or self._redo:
            if self.options.partials:
                last = len(self._closed) == 1
                events += self._finalize([self._closed.popleft()], may_carry=not last)
            else:
                events += self._offline_step()
        if self._carry:  # nothing left to join: the skipped audio is decoded in its own window
            events += self._finalize([], may_carry=False)
        self._advance(self.fed_s)
        self._finished = True
        return events

    # -- live ---------------------------------------------------------------------------
    def _partial_due(self) -> bool:
        start = self._vad.open_start
        if start is None:
            return False
        now = self._buf_start + self._len
        return now - max(self._last_decode, int(start * SAMPLE_RATE)) >= self._interval

    def _partial(self) -> list[Event]:
        start = self._vad.open_start
        end = self._vad.processed_s
        new = self._carry + [Utterance(start, end)]
        history = self._history_for(new)
        pieces = _with_pauses(_heard_utterances(history) + new)
        t0 = time.perf_counter()
        hyp = self.decoder.decode(self._window_audio(pieces), prefix=self._agreement.committed_text,
                                  heard=_heard(history, pieces), timestamps=False)
        # Re-decode no more often than twice what a decode costs, so partials never take
        # more than half the machine and the transcript cannot fall ever further behind.
        spent = int((time.perf_counter() - t0) * SAMPLE_RATE)
        self._interval = max(self._base_interval, 2 * spent)
        self._last_decode = int(end * SAMPLE_RATE)
        _, tail = self._agreement.update(hyp.text)
        self._advance(end)
        text = " ".join(self._agreement.committed + tail)
        return [Partial(text, round(start, 3), round(end, 3))] if text else []

    def _history_for(self, new: list[Utterance]) -> list[_Said]:
        """The most recent finals whose audio fits in one window before `new`."""
        if not self.decoder.packs_utterances or not new:
            return []
        chosen: list[_Said] = []
        limit = self.decoder.max_window_s - WINDOW_MARGIN_S
        for said in reversed(self._history):
            later = chosen[0].start if chosen else new[0].start
            if later - said.end > HISTORY_GAP_S:
                break
            if _span(_heard_utterances([said] + chosen) + new) > limit:
                break
            chosen.insert(0, said)
        return chosen

    def _finalize(self, utterances: list[Utterance], may_carry: bool) -> list[Event]:
        """Decode closing utterances behind the audio of the finals before them. What the
        decode did not reach (skipped utterances, an unfinished or cut-off last sentence)
        waits for the next window while one can take it."""
        new = self._carry + utterances
        self._carry = []
        history = self._history_for(new)
        pieces, t, spans = self._decode_behind(history, new)
        if history and not spans and not t.flags:
            # The earlier finals, forced, can make the model end the transcript with them
            # (a closing timestamp, then end of text): the new speech would be lost, and the
            # next utterance behind the same finals lost again. It is decoded without them.
            pieces, t, spans = self._decode_behind([], new)
        self._agreement.reset()
        end = new[-1].end
        self._last_decode = int(end * SAMPLE_RATE)
        kept, rest = _cut(new, spans, t.complete_until, pieces)
        if may_carry and rest and _length(rest) <= MAX_CARRY_S:
            spans, self._carry = kept, rest
            new = _before(new, rest[0].start)
        if spans:  # the last final reaches to where the next window starts: no audio in between is
            # anyone's (recovery after a crash resumes at the last final's end)
            spans[-1] = replace(spans[-1], end=max(spans[-1].end, self._carry[0].start if self._carry else end))
        finals = _finals(spans, t.flags, new, self._audio)
        self._remember(new, spans, t.flags)
        self._advance(self._carry[0].start if self._carry else end)
        return finals + [Partial("", round(end, 3), round(end, 3))]

    def _decode_behind(self, history: list[_Said], new: list[Utterance]
                       ) -> tuple[list[Utterance], Transcript, list[Span]]:
        """Decode new utterances in one window behind the audio of earlier finals, forced as
        heard: the window's pieces, its transcript, and the new text as stream spans."""
        pieces = _with_pauses(_heard_utterances(history) + new)
        t = self.decoder.decode(self._window_audio(pieces), prefix="", heard=_heard(history, pieces),
                                timestamps=self.decoder.packs_utterances)
        # The new text starts with the new audio: a timestamp at the joint maps to the end of
        # the heard audio's last piece, pause included, and is moved up to where new audio begins.
        spans = [s if s.start >= new[0].start else replace(s, start=new[0].start)
                 for s in _stream_spans(_spans(t, _length(pieces)), pieces) if s.end > new[0].start]
        return pieces, t, spans

    def _remember(self, new: list[Utterance], spans: list[Span], flags: tuple[str, ...]) -> None:
        if flags:  # never give suspect text back to the decoder: it breeds loops
            self._history.clear()
            return
        if spans and new:
            self._history.append(_Said(tuple(new), tuple(spans)))
        while len(self._history) > 16:
            self._history.popleft()

    # -- offline windows ---------------------------------------------------------------
    def _offline_ready(self) -> bool:
        # Decode once the closed utterances hold enough speech to fill a batch of windows.
        speech = sum(u.end - u.start for u in self._closed)
        return bool(self._redo) or speech >= self._batch * self.decoder.max_window_s

    def _pack(self, source: deque[Utterance]) -> list[list[Utterance]]:
        """Up to a batch of windows, each as many whole utterances as fit in 30 s of audio.

        Utterances go in with the pause after each cut to at most MAX_PAUSE_S, so long
        silences cost no encoder work while Whisper still hears where sentences end (joined
        with no pause at all, a test meeting lost 1.4 WER points).
        """
        windows: list[list[Utterance]] = []
        limit = self.decoder.max_window_s
        packs = self.decoder.packs_utterances
        while source and len(windows) < self._batch:
            win = [source.popleft()]
            while packs and source and _span(win + [source[0]]) <= limit:
                win.append(source.popleft())
            windows.append(win)
        return windows

    def _offline_step(self) -> list[Event]:
        """Decode a batch of windows, then turn decoded windows into finals in order."""
        windows, self._redo = (self._redo, []) if self._redo else (self._pack(self._closed), [])
        results = self.decoder.decode_many([self._window_audio(_with_pauses(w)) for w in windows])
        self._decoded.extendleft(reversed(list(zip(windows, results))))
        finals: list[Event] = []
        while self._decoded:
            win, t = self._decoded.popleft()
            found, rest = self._take(win, _with_pauses(win), t)
            finals += found
            self._advance(rest[0].start if rest else win[-1].end)
            if not rest:
                continue
            # The window stopped short: what it did not reach opens the next window. A window
            # decoded behind it is decoded again after it; those further on keep their text.
            if self._decoded:
                self._redo = self._pack(deque(rest + self._decoded.popleft()[0]))
            else:
                self._closed.extendleft(reversed(rest))
            break
        return finals

    def _take(self, win: list[Utterance], pieces: list[Utterance],
              t: Transcript) -> tuple[list[Final], list[Utterance]]:
        """A window's finals up to where its decode got, and the utterances (or the part of
        one) after that point."""
        spans = _stream_spans(_spans(t, _length(pieces)), pieces)
        kept, rest = _cut(win, spans, t.complete_until, pieces)
        return _finals(kept, t.flags, win, self._audio), rest


def _finals(spans: list[Span], flags: tuple[str, ...], utterances: list[Utterance] = (),
            audio=None) -> list[Final]:
    """Finals from decoded spans, each split for reading where it runs across a pause between
    the utterances, or a shorter one inside one found in `audio(start, end)` (asr/sentences.py)."""
    gaps = gaps_between(utterances)
    audio = audio or (lambda start, end: np.zeros(0, np.float32))
    return [f for s in spans for f in reading_finals(s.start, s.end, s.text, flags, gaps, audio)]


def _cut(win: list[Utterance], spans: list[Span], complete_until: float | None,
         pieces: list[Utterance]) -> tuple[list[Span], list[Utterance]]:
    """Where a window's transcript of the utterances `win` (stream spans) stops being
    trustworthy, as (spans before it, the utterances or part of one after it):
      - at the end of its last closed segment, when the last one is unfinished;
      - at the first of the trailing utterances that no segment reached (skipped), unless
        that is the first: then only where the closed segments end, if not at the end;
      - before the last segment, when the window ends where the VAD cut a monologue at
        its maximum length (that sentence goes on in the next utterance).
    A window that reached nothing keeps everything: it must not come back unchanged."""
    end = win[-1].end
    cut = end
    if complete_until is not None:
        cut = min(cut, _to_stream_time(pieces, complete_until, end=True))
    k = _reached(win, spans)
    if 0 < k < len(win):
        # (None reached: the cut is where the closed segments end, if the decode says so;
        # cutting at the window's start would bring it back unchanged.)
        cut = min(cut, win[k].start)
    before = [s if s.end <= cut else replace(s, end=cut) for s in spans if s.start < cut - 1e-6]
    if before and _too_dense(before[-1]):
        # A last segment with more words than its time could hold did not hear them (a
        # sentence squeezed against the window's end): its audio opens the next window.
        cut = before[-1].start
        before = before[:-1]
    if cut >= end - 1e-6 and win[-1].forced and len(before) >= 2 and before[-1].start > win[-1].start + 1.0:
        cut = before[-1].start
        before = before[:-1]
    rest = _after(win, cut)
    if not rest or rest[0].start <= win[0].start + 1e-6:
        return spans, []
    return before, rest


def _spans(t: Transcript, length: float) -> list[Span]:
    segs = t.segments or ((0.0, length, t.text),)
    out = []
    for s in segs:
        s = s if isinstance(s, Span) else Span(*s)
        text = s.text.strip()
        if text:
            out.append(Span(max(0.0, s.start), min(s.end, length), text, s.tokens))
    return [s for i, s in enumerate(out) if not (i + 1 < len(out) and _said_too_fast_twice(s, out[i + 1]))]


def _too_dense(s: Span) -> bool:
    """More words than any speaker fits in the segment's time (seven words in 0.3 s)."""
    words = len(s.text.split())
    return words >= 3 and words > MAX_WORDS_PER_S * max(s.end - s.start, 0.0)


def _said_too_fast_twice(s: Span, following: Span) -> bool:
    """Whisper sometimes writes a sentence twice, the first time in a segment far too short
    to hold it: that one is dropped. Real repeats take real time."""
    return _too_dense(s) and _plain(s.text) == _plain(following.text)


def _plain(text: str) -> list[str]:
    return [plain_word(w) for w in text.split()]


def _stream_spans(spans: list[Span], pieces: list[Utterance]) -> list[Span]:
    out = []
    for s in spans:
        a = _to_stream_time(pieces, s.start)
        b = max(a, _to_stream_time(pieces, s.end, end=True))
        out.append(Span(a, b, s.text, s.tokens))
    return out


def _reached(win: list[Utterance], spans: list[Span]) -> int:
    """How many of the window's utterances its text reached: a trailing utterance whose
    middle no segment's words got to was skipped (Whisper can end a window early, or
    close a few words with a timestamp far past them)."""
    last_end = max((_words_end(s) for s in spans), default=-1.0)
    k = len(win)
    while k > 0 and last_end < 0.5 * (win[k - 1].start + win[k - 1].end):
        k -= 1
    return k


def _words_end(s: Span) -> float:
    """The latest a segment's words can have ended: half a second a word (a slow speaker)
    and one pause as long as packing leaves (MAX_PAUSE_S + padding)."""
    return min(s.end, s.start + STRETCH_S + STRETCH_S_PER_WORD * len(s.text.split()))


def _before(win: list[Utterance], t: float) -> list[Utterance]:
    """The utterances of a window up to stream time t (the one it falls in, cut there)."""
    return [u if u.end <= t else Utterance(u.start, t, True) for u in win if u.start < t]


def _after(win: list[Utterance], t: float, min_s: float = 0.2) -> list[Utterance]:
    """The utterances of a window from stream time t on (the one it falls in, cut there)."""
    rest = []
    for u in win:
        if u.end - t < min_s:
            continue
        rest.append(u if u.start >= t else Utterance(t, u.end, u.forced))
    return rest


def _heard_utterances(history: list[_Said]) -> list[Utterance]:
    return [u for said in history for u in said.utterances]


def _heard(history: list[_Said], pieces: list[Utterance]) -> tuple[Span, ...]:
    """Earlier finals in the window's own seconds (their utterances open the window)."""
    out = []
    for said in history:
        for s in said.spans:
            a = _to_window_time(pieces, s.start)
            out.append(Span(a, max(a, _to_window_time(pieces, s.end)), s.text, s.tokens))
    return tuple(out)


def _with_pauses(win: list[Utterance]) -> list[Utterance]:
    """The window's pieces: each utterance extended into the pause after it, up to MAX_PAUSE_S."""
    return [u if i == len(win) - 1 else Utterance(u.start, min(win[i + 1].start, u.end + MAX_PAUSE_S))
            for i, u in enumerate(win)]


def _length(pieces: list[Utterance]) -> float:
    return sum(u.end - u.start for u in pieces)


def _span(win: list[Utterance]) -> float:
    return _length(_with_pauses(win))


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


def _to_window_time(pieces: list[Utterance], t: float) -> float:
    """The inverse: a stream time inside (or between) the pieces → seconds in the window."""
    offset = 0.0
    for u in pieces:
        if t < u.end:
            return offset + max(0.0, t - u.start)
        offset += u.end - u.start
    return offset
