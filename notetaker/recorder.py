"""One live session: audio source → ASR session → events → store.

Every final is committed in its own transaction the moment it exists; partials only
go to listeners. A store that refuses a final (locked by another process, disk full,
gone) never stops capture: finals wait in order in memory and are retried with backoff;
whatever still waits when the meeting ends is parked beside the spool, and `notetaker
recover` stores it. With a real-time source a producer thread feeds audio as it arrives
while this thread owns all model work, so how far the transcript is behind the audio
can be measured and reported.

Recovery runs through here too: with `continues=Continuation(...)` the recorder continues a
meeting a crash cut short, from its spooled audio, instead of starting one.

With a diarizer (`speakers=`, notetaker.diarization) each final is held until the diarizer has
covered its end, or MAX_HOLD_S at most, then stored with its speaker (split where the speaker
changes). The hold is bounded and in memory only: a crash while finals are held loses no
words, because `notetaker recover` transcribes each channel's spooled audio after its last
*stored* final, and a held final is always after that (finals of a channel are released in
order). At the end of the meeting the offline pass relabels it in one transaction.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.base import SAMPLE_RATE, Engine, Final, Partial, SessionOptions
from rewrite.backend import RewriteBackend
from storage import SegmentRecord, SessionRecord, SessionStore, StoreError

from notetaker.audio import AudioSource
from notetaker.channels import Channels, Continuation
from notetaker.errors import one_line

if TYPE_CHECKING:
    from notetaker.diarization import LiveSpeakers

PROGRESS_EVERY_S = 1.0
STORE_WAIT_MS = 200  # a final waits this long for another writer's lock, then waits in memory
RETRY_S = (0.5, 5.0)  # first and longest pause between tries of waiting finals
END_TRIES_S = 3.0  # at the end of a meeting, waiting finals are tried this long before parking
CLEANUP_BATCH = 8  # finals cleaned per idle turn of the compute thread: bounded work
MAX_HOLD_S = 5.0  # a final waits at most this long (wall clock) for its speaker before it is stored


@dataclass(frozen=True)
class Progress:
    audio_s: float  # audio captured so far
    done_s: float  # audio the transcript takes into account
    compute_s: float  # time spent in model work
    wall_s: float
    level_db: float = -120.0  # input level of the latest block, dBFS (RMS)
    dropped_frames: int = 0  # audio frames the input lost (overruns)
    paused: bool = False
    waiting: int = 0  # finals the store has not taken yet
    store_problem: str | None = None  # why ("the database is busy")

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
    waiting: int = 0  # finals the store never took: they are in `waiting_file`
    waiting_file: Path | None = None
    home_lost: bool = False  # the data home was removed or replaced: nothing of it is saved
    stopped_early: bool = False  # the user ended it before its source ended: `duration_s` is what was heard


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

    def on_speakers_error(self, message: str) -> None:
        """Speaker labels failed (a model would not load); the meeting goes on without them."""

    def on_relabelled(self, changed: int) -> None:
        """The offline pass relabelled the meeting's segments at its end (`changed` of them)."""

    def on_capture_error(self, message: str, saved: bool = True) -> None:
        """Capture stopped (the audio spool cannot be written); everything so far is kept."""

    def on_finished(self, result: RecordingResult) -> None: ...


class _NotStarted:
    """Progress figures before the engine has loaded: audio is captured, nothing is done."""

    def __init__(self, recorder: Recorder):
        self._r = recorder

    @property
    def fed_s(self) -> float:
        return self._r._captured / SAMPLE_RATE

    done_s = 0.0


class Recorder:
    def __init__(self, store: SessionStore, engine: Engine | Callable[[], Engine], source: AudioSource, *, title: str,
                 options: SessionOptions | None = None, realtime: bool = False,
                 listeners: Sequence[RecorderListener] = (), audio_path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic, rewrite: RewriteBackend | None = None,
                 engine_label: tuple[str, str] | None = None, spool_dir: Path | None = None,
                 keep_audio: bool = True, rewrite_factory: Callable[[], RewriteBackend | None] | None = None,
                 continues: Continuation | None = None, speakers: Callable[[], LiveSpeakers] | None = None):
        self.store = store
        # An engine, or a factory that loads one on the compute thread while capture has
        # already started (then `engine_label` names it for the session row).
        self.engine: Engine | None = engine if isinstance(engine, Engine) else None
        self._engine_factory = None if isinstance(engine, Engine) else engine
        if self.engine is None and engine_label is None:
            raise ValueError("an engine factory needs engine_label=(name, model)")
        self._engine_label = (self.engine.name, self.engine.model) if self.engine else engine_label
        self.source = source
        self.labels: tuple[str | None, ...] = tuple(source.channels)
        if continues is not None and (spool_dir is not None or realtime or len(continues.start_s) != len(self.labels)
                                      or len(continues.keep) not in (0, len(self.labels))):
            raise ValueError("a continued meeting is read in batch, writes no spool, and needs a start "
                             "(and a keep) per source channel")
        self.continues = continues
        self.spool_dir = spool_dir
        self.keep_audio = keep_audio
        self.spool = None
        self._captured = 0  # samples taken from the source
        self._inbox: list[np.ndarray] = []  # captured, not yet fed (the engine may still be loading)
        self._inbox_lock = threading.Lock()
        self.capture_error: str | None = None
        self.title = title
        self.options = options or SessionOptions()
        self.realtime = realtime
        self.listeners = list(listeners)
        self.audio_path = audio_path
        self._clock = clock
        self.rewrite = rewrite  # cleans finals while the ASR is idle, and the rest at the end
        # Or a factory, called on the compute thread the first time there is text to clean:
        # capture and the ASR start without waiting for it, and if it fails (a model missing,
        # not downloadable, too big; a server down) the meeting goes on without cleanup.
        self._rewrite_factory = rewrite_factory if rewrite is None else None
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
        self.stopped_early = False  # stop() ended it before its source did (the rest was never heard)
        self._waiting: deque[tuple[str | None, Final, str | None]] = deque()  # finals the store refused so far, with speakers
        self._held: list[tuple[str | None, Final]] = []  # continuing: this block's finals, stored in time order
        self.store_problem: str | None = None
        self._retry_at = 0.0
        self._retry_s = RETRY_S[0]
        self.waiting_file: Path | None = None
        self.home_lost = False
        # Live diarization, loaded on the compute thread after the engine (None: no speakers;
        # a continued meeting has none: its labels come from a later offline pass, if any).
        self._speaker_factory = speakers if continues is None else None
        self.speakers: LiveSpeakers | None = None
        self._spoken: deque[tuple[str | None, Final, float]] = deque()  # finals waiting for their speaker

    def stop(self) -> None:
        """The user ends the meeting here (from any thread): `q` in the TUI, Ctrl-C on
        `transcribe`, a file stopped before its end as much as a live capture. Everything
        captured so far is transcribed and saved, and the meeting is `complete` with the
        length of the audio heard. (`interrupted` is for a process that died, or a meeting
        that failed: the engine, the spool or the store.)"""
        self._stop.set()
        self._running.set()

    def end(self) -> None:
        """The user ends the meeting: the same as `stop`."""
        self.stop()

    def pause(self) -> None:
        """Stop taking audio until `resume` (any thread). A file source's clock stops too."""
        self._running.clear()
        self.source.pause()

    def resume(self) -> None:
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
        channels = self._new_channels() if self.engine else None  # bad options fail before saving
        if self.continues is not None:
            sid = self.session_id = self.continues.session_id
        else:
            name, model = self._engine_label
            sid = self.session_id = self.store.create_session(
                self.title, name, model, language=self.options.language,
                delay_ms=self.options.delay_ms, audio_path=self.audio_path)
        self._start = self._clock()
        status = "interrupted"
        clean_end = False
        self._channels = channels
        try:  # from here on the session always ends complete or interrupted, whatever fails
            self._open_spool(sid)
            self._emit("on_started", self.store.get_session(sid))
            if self.realtime:
                self._run_realtime()
            else:
                self._run_batch()
            self._ensure_channels()
            self._feed_inbox()
            self._handle(self._timed(self._channels.finish))
            self._release_held()
            self._end_speakers()
            while not self._stop.is_set() and self._clean_some():
                pass
            while self._run_job():
                pass
            # Stopped on purpose is complete; a recovery stopped part-way still has audio unheard.
            cut_short = self.capture_error or (self.continues is not None and self.stopped_early)
            status = "interrupted" if cut_short else "complete"
            clean_end = True
        finally:
            audio_s = self._channels.fed_s if self._channels else self._captured / SAMPLE_RATE
            if self.continues is not None:  # the meeting's length: where the source began, and all it gave
                audio_s = (self.continues.origin + self._captured) / SAMPLE_RATE
            self._release_spoken(everything=True)  # even when something failed: nothing held is lost
            if not self._end_waiting():
                status, clean_end = "interrupted", False  # recover stores the parked finals
            try:
                if self.continues is None or status == "complete":  # a continued meeting not done stays as it was
                    self.store.finish_session(sid, status, duration_s=round(audio_s, 3))
            except StoreError as e:  # still `recording`: the next start marks it interrupted
                self.store_problem, clean_end = str(e), False
            self._close_spool(clean_end)
            self.finished = True
            while self._run_job():  # a job submitted while the meeting ended still runs
                pass
        progress = self._progress()
        result = RecordingResult(sid, status, self._finals, audio_s, progress, len(self._waiting), self.waiting_file,
                                 self.home_lost, self.stopped_early)
        self._emit("on_progress", progress)
        self._emit("on_finished", result)
        return result

    # -- capture --------------------------------------------------------------------------
    def _open_spool(self, sid: int) -> None:
        if self.spool_dir is None:
            return
        from notetaker.spool import Spool

        names = tuple(label or "mono" for label in self.labels)
        self.spool = Spool.create(Path(self.spool_dir) / str(sid), channels=names)

    def _close_spool(self, clean_end: bool) -> None:
        """A clean end compacts the spool (or drops it, per the setting); after a crash the
        raw spool stays for `notetaker recover`."""
        if self.spool is None:
            return
        from notetaker.spool import SpoolError

        try:
            if clean_end and not self.capture_error:
                self.spool.close(compact=True, keep=self.keep_audio)
            else:
                self.spool.close(compact=False, keep=True)
        except SpoolError as e:
            if not self.home_lost:  # already said: its folder is gone with the home
                self._emit("on_capture_error", str(e))

    def _capture(self, block: np.ndarray) -> bool:
        """Spool a captured block, then queue it for the ASR. False when capture must stop
        (the spool cannot be written: disk full, data home gone)."""
        if self.spool is not None:
            from notetaker.spool import SpoolError

            try:
                self.spool.append(block)
            except SpoolError as e:
                self.capture_error = str(e)
                self._emit("on_capture_error", self.capture_error)
                return False
        self._measure(block)
        with self._inbox_lock:
            self._inbox.append(block)
            self._captured += len(block)
        return True

    def _feed_inbox(self) -> bool:
        """Hand captured audio to the ASR sessions (once they exist); True if any was fed."""
        if self._channels is None:
            return False
        with self._inbox_lock:
            blocks, self._inbox = self._inbox, []
        for block in blocks:
            self._channels.feed(block)
            if self.speakers is not None:
                self.speakers.feed(block)
        return bool(blocks)

    def _ensure_channels(self) -> None:
        if self._channels is None:
            self.engine = self._timed(self._engine_factory)
            self._channels = self._new_channels()
        self._load_speakers()

    def _load_speakers(self) -> None:
        """The diarizer, once, before any audio is fed; a failure is said once and the meeting
        goes on without speakers."""
        factory, self._speaker_factory = self._speaker_factory, None
        if factory is None:
            return
        try:
            self.speakers = self._timed(factory)
        except Exception as e:  # whatever a load throws: the transcript matters more than its labels
            self._emit("on_speakers_error", one_line(e))

    def _new_channels(self) -> Channels:
        return Channels(self.engine, self.options, self.labels, self.continues)

    # -- loops ----------------------------------------------------------------------
    def _run_batch(self) -> None:
        self._ensure_channels()
        for block in self.source:
            self._running.wait()
            if self._stop.is_set():
                self.stopped_early = True
                break
            if not self._capture(block):
                break
            self._feed_inbox()
            try:
                while not self._channels.idle:
                    self._handle(self._timed(self._channels.step))
                while self.speakers is not None and self.speakers.has_work:
                    self._timed(self.speakers.step)
            finally:
                self._release_held()  # even when the engine fails: what it heard is kept
                self._release_spoken()
            self._commit_waiting()
            self._maybe_progress()

    def _run_realtime(self) -> None:
        done = threading.Event()
        leaving = threading.Event()  # this loop ended (or failed): the producer stops too
        errors: list[BaseException] = []

        def produce() -> None:
            try:
                for block in self.source:
                    self._running.wait()
                    if self._stop.is_set():
                        self.stopped_early = True
                        break
                    if leaving.is_set() or not self._capture(block):
                        break
            except BaseException as e:  # surfaced on this thread once the transcript is saved
                errors.append(e)
            finally:
                reason = self.source.ended_reason
                if reason and not self._stop.is_set():  # a device went away for good
                    self._emit("on_capture_error", reason)
                done.set()

        # Capture starts now, even while the engine is still loading; the transcript catches up.
        producer = threading.Thread(target=produce, name="notetaker-source", daemon=True)
        producer.start()
        try:
            self._ensure_channels()
            while True:
                self._feed_inbox()
                self._commit_waiting()
                if not self._channels.idle:
                    self._handle(self._timed(self._channels.step))
                elif self.speakers is not None and self.speakers.has_work:
                    self._timed(self.speakers.step)
                elif self._run_job():
                    pass
                elif done.is_set() and not self._inbox:
                    break
                elif not self._clean_some():
                    done.wait(0.01)
                self._release_spoken()
                self._maybe_progress()
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
        if (self.rewrite is None and self._rewrite_factory is None) or self.session_id is None:
            return False
        from rewrite.base import RewriteError, Segment

        rows = self.store.uncleaned_segments(self.session_id, limit=CLEANUP_BATCH)
        if self.rewrite is None and rows and not self._load_rewrite():
            return False
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

    def swap_rewrite(self, backend: RewriteBackend | None) -> RewriteBackend | None:
        """Clean with `backend` from now on (None: no cleanup); the one replaced is returned
        for the caller to close. A factory not yet loaded is dropped."""
        self._rewrite_factory = None
        old, self.rewrite = self.rewrite, backend
        return old

    def _load_rewrite(self) -> bool:
        """Load the rewrite backend from its factory (once); False, said once, when it fails."""
        factory, self._rewrite_factory = self._rewrite_factory, None
        if factory is None:
            return False
        try:
            self.rewrite = self._timed(factory)
        except Exception as e:  # whatever a load throws, the meeting goes on without cleanup
            self._emit("on_rewrite_error", one_line(e))
            return False
        return self.rewrite is not None

    # -- events -----------------------------------------------------------------------
    def _timed(self, work: Callable[[], list]) -> list:
        t = time.perf_counter()
        try:
            return work()
        finally:
            self._compute_s += time.perf_counter() - t

    def _handle(self, events: Iterable[tuple[str | None, object]]) -> None:
        multi = len(self.labels) > 1
        for channel, event in events:
            if isinstance(event, Final) and self.continues is not None:
                self._held.append((channel, event))
            elif isinstance(event, Final) and self.speakers is not None:
                self._spoken.append((channel, event, self._clock()))
            elif isinstance(event, Final):
                self._waiting.append((channel, event, None))
                self._commit_waiting()
            elif isinstance(event, Partial):
                if multi and event.text:  # one partial line for all channels: say whose it is
                    event = Partial(f"{channel}: {event.text}", event.start, event.end)
                self._emit("on_partial", event)

    # -- finals into the store ------------------------------------------------------------
    def _release_held(self) -> None:
        """A continued meeting's held finals, in time order across channels (ties: channel
        order), join the waiting line: seq follows time as it did live."""
        if not self._held:
            return
        held, self._held = self._held, []
        held.sort(key=lambda cf: (cf[1].start, cf[1].end, self.labels.index(cf[0])))
        self._waiting.extend((channel, final, None) for channel, final in held)
        self._commit_waiting()

    def _release_spoken(self, everything: bool = False) -> None:
        """Finals whose speaker is known (the diarizer covers their end), or that waited
        MAX_HOLD_S, join the waiting line with their speaker, split where it changes; each
        channel's in order. `everything`: all of them, now (the meeting is over)."""
        if not self._spoken:
            return
        now, blocked, keep = self._clock(), set(), deque()
        for channel, final, since in self._spoken:
            ready = everything or (channel not in blocked and (
                self.speakers.covered_s(channel) >= final.end or now - since >= MAX_HOLD_S))
            if not ready:
                blocked.add(channel)
                keep.append((channel, final, since))
                continue
            try:
                parts = self.speakers.assign(channel, final)
            except Exception as e:  # a labelling bug must not cost the words: store it unlabelled
                self._emit("on_speakers_error", one_line(e))
                parts = [(final, None)]
            self._waiting.extend((channel, part, who) for part, who in parts)
        self._spoken = keep
        self._commit_waiting()

    def _end_speakers(self) -> None:
        """The meeting is heard: the diarizers finish, the held finals are stored with their
        speakers, and the offline pass relabels the meeting in one transaction."""
        if self.speakers is None:
            return
        try:
            self._timed(lambda: self.speakers.finish() or [])
        except Exception as e:
            self._emit("on_speakers_error", one_line(e))
        self._release_spoken(everything=True)
        self._commit_waiting(now=True)
        if self._waiting or self.home_lost:
            return  # the store refuses writes: the live labels stay
        try:
            changed = self._timed(lambda: [self.speakers.relabel(self.store, self.session_id)])[0]
        except StoreError as e:
            self._emit("on_speakers_error", f"the speakers of this meeting were not relabelled: {e}")
            return
        except Exception as e:  # the live labels are stored already; only the offline pass is lost
            self._emit("on_speakers_error", one_line(e))
            return
        self._emit("on_relabelled", changed)

    def _commit_waiting(self, now: bool = False) -> None:
        """Store the waiting finals in order; on a refusal keep them and try again after a
        pause that doubles up to RETRY_S[1]. Capture and the ASR go on meanwhile."""
        if not self._waiting or (not now and self._clock() < self._retry_at):
            return
        while self._waiting:
            channel, final, speaker = self._waiting[0]
            try:
                seg = self.store.add_segment(self.session_id, final.text, final.start, final.end, channel=channel,
                                             speaker=speaker, flags=final.flags, wait_ms=STORE_WAIT_MS)
            except StoreError as e:
                first = self.store_problem is None
                self.store_problem = str(e)
                self._retry_at = self._clock() + self._retry_s
                self._retry_s = min(RETRY_S[1], 2 * self._retry_s)
                if first:
                    self._emit("on_progress", self._progress())
                return
            self._waiting.popleft()
            self._finals += 1
            self._emit("on_final", final, seg)
        if self.store_problem is not None:
            self.store_problem, self._retry_s = None, RETRY_S[0]
            self._emit("on_progress", self._progress())

    def _end_waiting(self) -> bool:
        """The meeting is over: try the waiting finals a little longer, then park what the
        store still refuses beside the spool. False when finals had to be parked."""
        deadline = self._clock() + END_TRIES_S
        while self._waiting and self._clock() < deadline:
            self._commit_waiting(now=True)
            if self._waiting:
                time.sleep(0.2)
        if not self._waiting:
            return True
        self.waiting_file = self._park_waiting()
        return False

    def _park_waiting(self) -> Path | None:
        if self.spool is None:
            return None
        from notetaker.spool import park_finals

        try:
            return park_finals(self.spool.folder, ((channel, f.start, f.end, f.text, f.flags)
                                                   for channel, f, _ in self._waiting))
        except OSError:  # the same full or broken disk: their audio is in the spool all the same
            return None

    def _progress(self) -> Progress:
        dropped = int(self.source.dropped_frames)
        ch = self._channels or _NotStarted(self)
        fed = max(ch.fed_s, self._captured / SAMPLE_RATE)
        return Progress(fed, ch.done_s, self._compute_s, self._clock() - self._start,
                        self._level_db, dropped, self.paused, len(self._waiting), self.store_problem)

    def _maybe_progress(self) -> None:
        now = self._clock()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self._check_home()
            self._emit("on_progress", self._progress())

    def _check_home(self) -> None:
        """A data home removed (or replaced) while recording is noticed within a second:
        the writes would go on into deleted files, so the meeting stops and says so."""
        if self.home_lost:
            return
        gone = [what for what, ok in (("the database", self.store.still_there()),
                                      ("the audio spool", self.spool is None or self.spool.still_there())) if not ok]
        if not gone:
            return
        self.home_lost = True
        self.capture_error = (f"{' and '.join(gone)} of this meeting {'were' if len(gone) > 1 else 'was'} removed "
                              "or replaced while recording (the data home was deleted?): nothing of it is saved")
        self._emit("on_capture_error", self.capture_error, False)
        self.stop()

    def _emit(self, name: str, *args) -> None:
        for listener in self.listeners:
            getattr(listener, name)(*args)
