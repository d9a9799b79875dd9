"""One live session: audio source → ASR session → events → store.

Every final is committed in its own transaction the moment it exists; partials only
go to listeners. With a real-time source a producer thread feeds audio as it arrives
while this thread owns all model work, so how far the transcript is behind the audio
can be measured and reported.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.base import Engine, Final, Partial, Session, SessionOptions
from rewrite.base import RewriteBackend
from storage import SegmentRecord, SessionRecord, SessionStore

from notetaker.audio import AudioSource

PROGRESS_EVERY_S = 1.0
CLEANUP_BATCH = 8  # finals cleaned per idle turn of the compute thread: bounded work


@dataclass(frozen=True)
class Progress:
    audio_s: float  # audio captured so far
    done_s: float  # audio the transcript takes into account
    compute_s: float  # time spent in model work
    wall_s: float
    level_db: float = -120.0  # input level of the latest block, dBFS (RMS)
    dropped_frames: int = 0  # audio frames the input lost (overruns)
    paused: bool = False

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

    def on_cleaned(self, segments: Sequence[SegmentRecord]) -> None:
        """Segments whose cleaned text was just stored (`clean_text`)."""

    def on_rewrite_error(self, message: str) -> None:
        """Cleanup failed (e.g. the server went away); the meeting goes on without it."""

    def on_finished(self, result: RecordingResult) -> None: ...


class Recorder:
    def __init__(self, store: SessionStore, engine: Engine, source: AudioSource, *, title: str,
                 options: SessionOptions | None = None, realtime: bool = False,
                 listeners: Sequence[RecorderListener] = (), audio_path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic, rewrite: RewriteBackend | None = None):
        self.store = store
        self.engine = engine
        self.source = source
        self.title = title
        self.options = options or SessionOptions()
        self.realtime = realtime
        self.listeners = list(listeners)
        self.audio_path = audio_path
        self._clock = clock
        self.rewrite = rewrite  # cleans finals while the ASR is idle, and the rest at the end
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._level_db = -120.0
        self._compute_s = 0.0
        self._finals = 0
        self._start = 0.0
        self._last_progress = 0.0
        self.session_id: int | None = None
        self.finished = False  # run() has ended: submitted jobs would never run here

    def stop(self) -> None:
        """Ask a running recording to end cleanly (from any thread)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Stop taking audio until `resume` (any thread). A file source's clock stops too."""
        self._running.clear()
        if hasattr(self.source, "pause"):
            self.source.pause()

    def resume(self) -> None:
        if hasattr(self.source, "resume"):
            self.source.resume()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on the compute thread the next time the ASR is idle (any thread): model
        work such as a summary mid-meeting shares the thread that owns MLX."""
        self._jobs.put(job)

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
            while not self._stop.is_set() and self._clean_some():
                pass
            while self._run_job():
                pass
            status = "interrupted" if self._stop.is_set() else "complete"
        finally:
            self.store.finish_session(sid, status, duration_s=round(session.fed_s, 3))
            self.finished = True
            while self._run_job():  # a job submitted while the meeting ended still runs
                pass
        progress = self._progress(session)
        result = RecordingResult(sid, status, self._finals, session.fed_s, progress)
        self._emit("on_progress", progress)
        self._emit("on_finished", result)
        return result

    # -- loops ----------------------------------------------------------------------
    def _run_batch(self, session: Session) -> None:
        for block in self.source:
            self._running.wait()
            if self._stop.is_set():
                break
            self._measure(block)
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
                    self._running.wait()
                    if self._stop.is_set() or leaving.is_set():
                        break
                    self._measure(block)
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
                elif self._run_job():
                    pass
                elif done.is_set():
                    break
                elif not self._clean_some():
                    done.wait(0.01)
                self._maybe_progress(session)
        finally:
            leaving.set()
            producer.join(timeout=5)
        if errors:
            raise errors[0]

    def _measure(self, block) -> None:
        if len(block):
            rms = math.sqrt(float((block.astype("float64") ** 2).mean()))
            self._level_db = 20 * math.log10(rms) if rms > 1e-6 else -120.0

    def _run_job(self) -> bool:
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            return False
        self._timed(lambda: job() or [])
        return True

    def _clean_some(self) -> bool:
        """Clean up to a batch of finals not yet cleaned; False when there was nothing to do.
        A rewrite failure is reported once and turns cleanup off: the meeting goes on."""
        if self.rewrite is None or self.session_id is None:
            return False
        from rewrite.base import RewriteError, Segment

        rows = self.store.uncleaned_segments(self.session_id, limit=CLEANUP_BATCH)
        todo = [s for s in rows if s.text.strip()]
        if len(todo) < len(rows):  # blank finals need no model: mark them done
            self.store.set_clean_text({s.id: s.text for s in rows if not s.text.strip()})
        if not todo:
            return bool(rows)
        try:
            cleaned = self._timed(lambda: self.rewrite.cleanup(
                [Segment(s.id, s.start_s, s.end_s, s.text, s.channel) for s in todo]))
        except RewriteError as e:
            self.rewrite = None
            self._emit("on_rewrite_error", str(e))
            return False
        self.store.set_clean_text({s.id: text for s, text in zip(todo, cleaned)})
        self._emit("on_cleaned", [self.store.get_segment(s.id) for s in todo])
        return True

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
        dropped = int(getattr(self.source, "dropped_frames", 0))
        return Progress(session.fed_s, session.done_s, self._compute_s, self._clock() - self._start,
                        self._level_db, dropped, self.paused)

    def _maybe_progress(self, session: Session) -> None:
        now = self._clock()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self._emit("on_progress", self._progress(session))

    def _emit(self, name: str, *args) -> None:
        for listener in self.listeners:
            getattr(listener, name)(*args)
