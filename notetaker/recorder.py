"""One live session: audio source → ASR session → events → store.

Every final is committed in its own transaction the moment it exists; partials only
go to listeners. With a real-time source a producer thread feeds audio as it arrives
while this thread owns all model work, so how far the transcript is behind the audio
can be measured and reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.base import Engine, Final, Partial, Session, SessionOptions
from storage import SegmentRecord, SessionRecord, SessionStore

from notetaker.audio import AudioSource

PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class Progress:
    audio_s: float  # audio captured so far
    done_s: float  # audio the transcript takes into account
    compute_s: float  # time spent in model work
    wall_s: float

    @property
    def lag_s(self) -> float:
        return max(0.0, self.audio_s - self.done_s)

    @property
    def rtf(self) -> float:
        """Real-time factor: model time per second of audio."""
        return self.compute_s / self.audio_s if self.audio_s > 0 else 0.0


@dataclass(frozen=True)
class RecordingResult:
    session_id: int
    status: str
    finals: int
    duration_s: float
    progress: Progress


class RecorderListener:
    """Receives what a recording produces; override what you need."""

    def on_started(self, session: SessionRecord) -> None: ...

    def on_partial(self, partial: Partial) -> None: ...

    def on_final(self, final: Final, segment: SegmentRecord) -> None: ...

    def on_progress(self, progress: Progress) -> None: ...

    def on_finished(self, result: RecordingResult) -> None: ...


class Recorder:
    def __init__(self, store: SessionStore, engine: Engine, source: AudioSource, *, title: str,
                 options: SessionOptions | None = None, realtime: bool = False,
                 listeners: Sequence[RecorderListener] = (), audio_path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.engine = engine
        self.source = source
        self.title = title
        self.options = options or SessionOptions()
        self.realtime = realtime
        self.listeners = list(listeners)
        self.audio_path = audio_path
        self._clock = clock
        self._stop = threading.Event()
        self._compute_s = 0.0
        self._finals = 0
        self._start = 0.0
        self._last_progress = 0.0
        self.session_id: int | None = None

    def stop(self) -> None:
        """Ask a running recording to end cleanly (from any thread)."""
        self._stop.set()

    def run(self) -> RecordingResult:
        session = self.engine.start_session(self.options)  # bad options fail before anything is saved
        sid = self.session_id = self.store.create_session(
            self.title, self.engine.name, self.engine.model, language=self.options.language,
            delay_ms=self.options.delay_ms, audio_path=self.audio_path)
        self._start = self._clock()
        status = "interrupted"
        try:  # from here on the session always ends complete or interrupted, whatever fails
            self._emit("on_started", self.store.get_session(sid))
            if self.realtime:
                self._run_realtime(session)
            else:
                self._run_batch(session)
            self._handle(self._timed(session.finish))
            status = "interrupted" if self._stop.is_set() else "complete"
        finally:
            self.store.finish_session(sid, status, duration_s=round(session.fed_s, 3))
        progress = self._progress(session)
        result = RecordingResult(sid, status, self._finals, session.fed_s, progress)
        self._emit("on_progress", progress)
        self._emit("on_finished", result)
        return result

    # -- loops ----------------------------------------------------------------------
    def _run_batch(self, session: Session) -> None:
        for block in self.source:
            if self._stop.is_set():
                break
            session.feed_audio(block)
            while not session.idle:
                self._handle(self._timed(session.step))
            self._maybe_progress(session)

    def _run_realtime(self, session: Session) -> None:
        done = threading.Event()
        leaving = threading.Event()  # this loop ended (or failed): the producer stops too
        errors: list[BaseException] = []

        def produce() -> None:
            try:
                for block in self.source:
                    if self._stop.is_set() or leaving.is_set():
                        break
                    session.feed_audio(block)
            except BaseException as e:  # surfaced on this thread once the transcript is saved
                errors.append(e)
            finally:
                done.set()

        producer = threading.Thread(target=produce, name="notetaker-source", daemon=True)
        producer.start()
        try:
            while True:
                if not session.idle:
                    self._handle(self._timed(session.step))
                elif done.is_set():
                    break
                else:
                    done.wait(0.01)
                self._maybe_progress(session)
        finally:
            leaving.set()
            producer.join(timeout=5)
        if errors:
            raise errors[0]

    # -- events -----------------------------------------------------------------------
    def _timed(self, work: Callable[[], list]) -> list:
        t = time.perf_counter()
        try:
            return work()
        finally:
            self._compute_s += time.perf_counter() - t

    def _handle(self, events: Iterable) -> None:
        for event in events:
            if isinstance(event, Final):
                seg = self.store.add_segment(self.session_id, event.text, event.start, event.end,
                                             flags=event.flags)
                self._finals += 1
                self._emit("on_final", event, seg)
            elif isinstance(event, Partial):
                self._emit("on_partial", event)

    def _progress(self, session: Session) -> Progress:
        return Progress(session.fed_s, session.done_s, self._compute_s, self._clock() - self._start)

    def _maybe_progress(self, session: Session) -> None:
        now = self._clock()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self._emit("on_progress", self._progress(session))

    def _emit(self, name: str, *args) -> None:
        for listener in self.listeners:
            getattr(listener, name)(*args)
