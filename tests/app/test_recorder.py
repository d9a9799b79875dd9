"""The recorder with a scripted engine over a generated WAV: what is saved, when, and how it ends."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from asr.base import ASRError, Final, Partial, SessionOptions
from notetaker import recorder as recorder_mod
from notetaker.audio import AudioError, FileSource
from notetaker.audio.base import AudioSource
from notetaker.recorder import Progress, Recorder, RecorderListener
from storage import SessionStore, open_db

from .conftest import write_wav
from .scripted import ScriptedEngine, ScriptedFailure, final, partial

SCRIPT = [
    partial(0.4, "we should"),
    partial(0.8, "we should ship"),
    final(1.0, "We should ship on Friday.", start=0.1),
    partial(1.5, "who owns"),
    final(2.0, "Who owns the release notes?", start=1.2),
    partial(2.4, "Dana"),
    final(2.75, "Dana does.", start=2.3),
]
FINAL_TEXTS = [c.event.text for c in SCRIPT if isinstance(c.event, Final)]
PARTIAL_TEXTS = [c.event.text for c in SCRIPT if isinstance(c.event, Partial)]


class Collect(RecorderListener):
    def __init__(self) -> None:
        self.started = []
        self.partials: list[Partial] = []
        self.finals: list[tuple[Final, object]] = []
        self.progress: list[Progress] = []
        self.finished = []

    def on_started(self, session) -> None:
        self.started.append(session)

    def on_partial(self, p) -> None:
        self.partials.append(p)

    def on_final(self, f, segment) -> None:
        self.finals.append((f, segment))

    def on_progress(self, p) -> None:
        self.progress.append(p)

    def on_finished(self, result) -> None:
        self.finished.append(result)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "meeting.wav", 3.0)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "notetaker.db"


@pytest.fixture
def store(db_file: Path) -> SessionStore:
    s = SessionStore.open(db_file)
    yield s
    s.close()


def read_only(db_file: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)


def segment_texts(store: SessionStore, sid: int) -> list[str]:
    return [s.text for s in store.segments(sid)]


_THREADS_BEFORE: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _threads_before():
    """Threads alive before a test, so a thread leaked by one test fails only that one."""
    _THREADS_BEFORE.clear()
    _THREADS_BEFORE.update(threading.enumerate())


def no_source_threads() -> bool:
    """No producer thread started by this test is still running."""
    return not any(t.name == "notetaker-source" and t.is_alive() and t not in _THREADS_BEFORE
                   for t in threading.enumerate())


# -- batch ----------------------------------------------------------------------------------


def test_each_final_is_committed_before_listeners_hear_of_it(store, db_file, wav):
    seen_by_other_connection: list[list[str]] = []

    class CheckCommitted(RecorderListener):
        def on_final(self, f, segment) -> None:
            other = read_only(db_file)  # a second connection sees only committed data
            try:
                row = other.execute("SELECT session_id, text, start_s, end_s FROM segments WHERE id = ?",
                                    (segment.id,)).fetchone()
                status = other.execute("SELECT status FROM sessions WHERE id = ?", (segment.session_id,)).fetchone()
                texts = [r[0] for r in other.execute(
                    "SELECT text FROM segments WHERE session_id = ? ORDER BY seq", (segment.session_id,))]
            finally:
                other.close()
            assert row == (segment.session_id, f.text, f.start, f.end)
            assert status == ("recording",)
            seen_by_other_connection.append(texts)
            # and through the store API on its own connection
            with SessionStore.open(db_file) as second:
                assert second.get_segment(segment.id).text == f.text

    with FileSource.open(wav) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[CheckCommitted()]).run()
    assert result.finals == 3
    assert seen_by_other_connection == [FINAL_TEXTS[:1], FINAL_TEXTS[:2], FINAL_TEXTS[:3]]


def test_partials_go_to_listeners_and_never_to_the_db(store, db_file, wav):
    got = Collect()
    with FileSource.open(wav) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[got]).run()
    assert [p.text for p in got.partials] == PARTIAL_TEXTS
    assert [f.text for f, _ in got.finals] == FINAL_TEXTS
    assert segment_texts(store, result.session_id) == FINAL_TEXTS
    conn = read_only(db_file)
    try:
        all_text = [r[0] for r in conn.execute("SELECT text FROM segments")]
    finally:
        conn.close()
    assert all_text == FINAL_TEXTS
    for p in PARTIAL_TEXTS:
        assert p not in all_text
    # the segment a listener receives is the stored row
    for f, seg in got.finals:
        assert store.get_segment(seg.id) == seg
        assert (seg.start_s, seg.end_s, seg.text) == (f.start, f.end, f.text)
    assert [seg.seq for _, seg in got.finals] == [1, 2, 3]


def test_session_ends_complete_with_duration(store, wav):
    got = Collect()
    with FileSource.open(wav) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="Standup", listeners=[got],
                          audio_path=wav, options=SessionOptions(language="en", delay_ms=960)).run()
    s = store.get_session(result.session_id)
    assert (s.status, s.title, s.engine, s.model) == ("complete", "Standup", "scripted", "script-v1")
    assert (s.language, s.delay_ms, s.audio_path) == ("en", 960, str(wav))
    assert s.duration_s == pytest.approx(3.0, abs=0.01)
    assert s.ended_at is not None and s.ended_at >= s.started_at
    assert result.status == "complete" and result.finals == 3
    assert result.duration_s == pytest.approx(3.0, abs=0.01)
    assert [r.session_id for r in got.finished] == [result.session_id]
    assert len(got.started) == 1 and got.started[0].status == "recording"
    # the last progress report: everything fed was transcribed
    last = got.progress[-1]
    assert last.audio_s == pytest.approx(3.0, abs=0.01) and last.lag_s == 0.0


def test_finish_flushes_an_open_partial_as_a_final(store, wav):
    script = [final(1.0, "One."), partial(2.5, "and then two")]
    with FileSource.open(wav) as source:
        result = Recorder(store, ScriptedEngine(script), source, title="t").run()
    assert segment_texts(store, result.session_id) == ["One.", "and then two"]


def test_failing_step_leaves_session_interrupted_with_earlier_finals(store, wav):
    got = Collect()
    engine = ScriptedEngine(SCRIPT, fail_after_finals=2)
    with FileSource.open(wav) as source, pytest.raises(ScriptedFailure):
        Recorder(store, engine, source, title="t", listeners=[got]).run()
    (s,) = store.list_sessions()
    assert s.status == "interrupted"
    assert s.duration_s is not None and 0 < s.duration_s <= 3.0
    assert segment_texts(store, s.id) == FINAL_TEXTS[:2]
    assert [f.text for f, _ in got.finals] == FINAL_TEXTS[:2]
    assert got.finished == []  # a failed run does not claim to have finished


def test_listener_that_fails_at_start_does_not_leave_a_recording_session(store, wav):
    class Broken(RecorderListener):
        def on_started(self, session) -> None:
            raise BrokenPipeError("stdout went away")

    with FileSource.open(wav) as source, pytest.raises(BrokenPipeError):
        Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[Broken()]).run()
    assert [s.status for s in store.list_sessions()] == ["interrupted"]


def test_bad_engine_options_save_nothing(store, db_file, wav):
    engine = ScriptedEngine(SCRIPT, languages=("en",))
    for options in (SessionOptions(language="xx"), SessionOptions(delay_ms=5)):
        with FileSource.open(wav) as source, pytest.raises(ASRError):
            Recorder(store, engine, source, title="t", options=options).run()
    assert store.list_sessions() == []
    conn = read_only(db_file)
    try:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone() == (0,)
    finally:
        conn.close()


def test_stop_from_a_listener_ends_batch_run_complete_with_what_was_heard(store, wav):
    class StopAfterFirst(RecorderListener):
        def __init__(self) -> None:
            self.recorder: Recorder | None = None

        def on_final(self, f, segment) -> None:
            self.recorder.stop()

    listener = StopAfterFirst()
    with FileSource.open(wav) as source:
        rec = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[listener])
        listener.recorder = rec
        result = rec.run()
    assert result.status == "complete" and result.stopped_early  # the user ended it: not a crash
    s = store.get_session(result.session_id)
    assert s.status == "complete"
    assert s.duration_s < 3.0 and s.duration_s == pytest.approx(result.duration_s, abs=1e-3)
    assert segment_texts(store, s.id) == FINAL_TEXTS[:1]


def test_in_memory_store_works_the_same(wav):
    store = SessionStore(open_db(None))
    with FileSource.open(wav) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t").run()
    assert segment_texts(store, result.session_id) == FINAL_TEXTS
    assert store.get_session(result.session_id).status == "complete"
    store.close()


# -- real time ------------------------------------------------------------------------------


class _Iterated:
    """A source whose iteration goes through `iterate` (to see which thread reads it)."""

    def __init__(self, source, iterate):
        self._source, self._iterate = source, iterate

    def __iter__(self):
        return self._iterate()

    def __getattr__(self, name):
        return getattr(self._source, name)


def test_realtime_gives_the_same_finals_and_reports_lag_and_rtf(store, wav, monkeypatch):
    monkeypatch.setattr(recorder_mod, "PROGRESS_EVERY_S", 0.0)  # a report on every loop turn
    with FileSource.open(wav) as source:
        batch = Recorder(store, ScriptedEngine(SCRIPT), source, title="batch").run()

    got = Collect()
    # 3 s of audio at 20x: about 0.15 s of wall time; 12 steps of 20 ms compute fall behind.
    engine = ScriptedEngine(SCRIPT, step_cost_s=0.02)
    t0 = time.monotonic()
    live_source_threads: set[str] = set()
    with FileSource.open(wav, realtime=True, speed=20) as source:
        blocks = source.__iter__

        def iterate():
            live_source_threads.add(threading.current_thread().name)
            yield from blocks()

        live = Recorder(store, engine, _Iterated(source, iterate), title="live", realtime=True,
                        listeners=[got]).run()
    wall = time.monotonic() - t0

    assert live.status == "complete"
    assert wall < 3.0  # the speed-up is honoured
    assert wall >= 3.0 / 20 * 0.9  # ... and it is paced, not a batch run
    key = lambda seg: (seg.text, seg.start_s, seg.end_s)  # noqa: E731
    assert list(map(key, store.segments(live.session_id))) == list(map(key, store.segments(batch.session_id)))

    # the producer thread captured the audio (the source was read there, never waiting for a
    # model); the thread that called run() handed it to the ASR and did every step
    (session,) = engine.sessions
    assert live_source_threads == {"notetaker-source"}
    assert session.feed_threads == session.step_threads == {threading.current_thread().name}

    assert len(got.progress) >= 3
    audio = [p.audio_s for p in got.progress]
    assert audio == sorted(audio)
    assert max(p.lag_s for p in got.progress) > 0  # it fell behind at some point ...
    for p in got.progress:
        assert p.lag_s == pytest.approx(max(0.0, p.audio_s - p.done_s))
        assert p.rtf >= 0
    last = got.progress[-1]
    assert last.lag_s == 0.0 and last.audio_s == pytest.approx(3.0, abs=0.01)  # ... and caught up
    assert last.rtf == pytest.approx(last.compute_s / last.audio_s)
    assert last.rtf > 0.02 * 12 / 3.0 * 0.8  # 12 steps of 20 ms over 3 s of audio
    assert got.finished[0].progress == last
    assert no_source_threads()


def test_stop_from_another_thread_ends_realtime_run_complete_with_what_was_heard(store, tmp_path):
    long_wav = write_wav(tmp_path / "long.wav", 20.0)
    script = [final(0.5, "Early."), final(1.0, "Still early."), final(15.0, "Never heard.")]
    got = Collect()
    with FileSource.open(long_wav, realtime=True, speed=4) as source:
        rec = Recorder(store, ScriptedEngine(script), source, title="t", realtime=True, listeners=[got])
        timer = threading.Timer(0.5, rec.stop)  # ~2 s of audio in
        timer.start()
        t0 = time.monotonic()
        result = rec.run()
        elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 2.0  # the 5 s it would take to play it all were not waited out
    assert result.status == "complete" and result.stopped_early
    s = store.get_session(result.session_id)
    assert s.status == "complete"
    assert 1.0 <= s.duration_s < 5.0
    assert s.duration_s == pytest.approx(result.duration_s, abs=1e-3)
    assert segment_texts(store, s.id) == ["Early.", "Still early."]
    assert [r.status for r in got.finished] == ["complete"]
    assert no_source_threads()


def test_realtime_step_failure_stops_the_producer_promptly(store, tmp_path):
    long_wav = write_wav(tmp_path / "long.wav", 30.0)
    script = [final(0.5, "First."), final(1.0, "Second.")]
    engine = ScriptedEngine(script, fail_after_finals=1)
    t0 = time.monotonic()
    with FileSource.open(long_wav, realtime=True, speed=2) as source, pytest.raises(ScriptedFailure):
        Recorder(store, engine, source, title="t", realtime=True).run()
    elapsed = time.monotonic() - t0
    # The producer must not go on playing the file (15 s here) or hold up the error.
    assert elapsed < 2.0
    assert no_source_threads()
    (s,) = store.list_sessions()
    assert s.status == "interrupted"
    assert segment_texts(store, s.id) == ["First."]


class FailingSource(AudioSource):
    """Delivers `good` blocks of silence, then raises like a device that went away."""

    sample_rate = 16_000

    def __init__(self, good: int, block_s: float = 0.1) -> None:
        self.good = good
        self.block = np.zeros(int(block_s * 16_000), np.float32)
        self.delivered = 0

    @property
    def position_s(self) -> float:
        return self.delivered / 16_000

    def __iter__(self):
        for _ in range(self.good):
            self.delivered += len(self.block)
            yield self.block
        raise AudioError("microphone disconnected")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("realtime", [False, True])
def test_source_failure_keeps_earlier_finals_and_interrupts(store, realtime):
    script = [final(0.5, "Before."), final(2.5, "After.")]
    with pytest.raises(AudioError, match="disconnected"):
        Recorder(store, ScriptedEngine(script), FailingSource(good=10), title="t", realtime=realtime).run()
    (s,) = store.list_sessions()
    assert s.status == "interrupted"
    assert segment_texts(store, s.id) == ["Before."]
    assert no_source_threads()


def test_submitted_jobs_run_on_the_compute_thread(store, wav):
    ran: list[str] = []
    engine = ScriptedEngine(SCRIPT)

    class SubmitOnFirstFinal(RecorderListener):
        def on_final(self, f, segment) -> None:
            if not ran:
                threading.Thread(target=lambda: rec.submit(lambda: ran.append(threading.current_thread().name))).start()

    with FileSource.open(wav, realtime=True, speed=4.0) as source:
        rec = Recorder(store, engine, source, title="t", realtime=True, listeners=[SubmitOnFirstFinal()])
        rec.run()
    assert len(ran) == 1 and ran[0] in engine.sessions[-1].step_threads
    assert rec.finished


def test_pause_takes_no_audio_until_resumed(store, tmp_path):
    wav = write_wav(tmp_path / "long.wav", 2.0)
    with FileSource.open(wav, realtime=True, speed=2.0) as source:
        rec = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", realtime=True)
        rec.pause()
        threading.Timer(0.6, rec.resume).start()
        t0 = time.monotonic()
        result = rec.run()
    assert time.monotonic() - t0 >= 0.6 + 0.9  # 1 s of audio at speed 2 after the pause
    assert result.status == "complete" and result.duration_s == pytest.approx(2.0, abs=0.01)


class _LikeACapture(FileSource):
    live = True  # what a capture device says of itself


@pytest.mark.parametrize("source_class", [FileSource, _LikeACapture])
def test_the_user_ending_completes_a_live_capture_and_a_file_alike(store, tmp_path, source_class):
    wav = write_wav(tmp_path / "long.wav", 30.0)

    class EndOnFirstFinal(RecorderListener):
        def on_final(self, f, segment) -> None:
            rec.end()

    with source_class.open(wav, realtime=True, speed=10.0) as source:
        rec = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", realtime=True, listeners=[EndOnFirstFinal()])
        result = rec.run()
    assert result.status == "complete" and result.stopped_early
    assert result.duration_s < 30.0  # it ended when asked, not at the file's end
