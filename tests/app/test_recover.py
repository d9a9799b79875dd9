"""Recovery: an interrupted meeting's spooled audio after its last final is transcribed
into the same meeting (seq continues, times on the meeting's timeline), which becomes
complete, and its spool is compacted. Running it again adds nothing.

The logic runs in-process with the scripted engine (its cues are in the recovery
session's own time, which starts at the resume point); `notetaker recover` runs as a
subprocess, end to end with Whisper tiny.en on fixture speech."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest

from notetaker.audio.spool_source import SpoolSource
from notetaker.recorder import Continuation, Recorder, RecorderListener
from notetaker.recovery import (
    OVERLAP_S,
    RecoveryError,
    _strip_repeat,
    find_recoverable,
    recover_session,
)
from notetaker.spool import FLAC, META, RAW, open_spool, spool_folder
from storage import SessionStore, StoreError
from tests.support.wer import normalize, wer

from .scripted import ScriptedEngine, ScriptedFailure, final
from .spooled import interrupted_meeting, sentences, speech_clip

RATE = 16_000


def silence(seconds: float, channels: int = 1) -> np.ndarray:
    shape = (int(seconds * RATE),) if channels == 1 else (int(seconds * RATE), channels)
    return np.zeros(shape, np.float32)


def loud(seconds: float) -> np.ndarray:
    """1.5 s of near silence (the noise floor), then sound with no pause anywhere: a resume
    point in it gets its overlap."""
    x = np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * RATE)).astype(np.float32)
    x[: int(1.5 * RATE)] *= 0.001
    return x


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path):
    s = SessionStore.open(home / "notetaker.db")
    yield s
    s.close()


@pytest.fixture
def sessions(home: Path) -> Path:
    return home / "sessions"


def texts(store: SessionStore, sid: int) -> list[tuple[int, str, float, float, str | None]]:
    return [(s.seq, s.text, s.start_s, s.end_s, s.channel) for s in store.segments(sid)]


# -- the logic, with the scripted engine ---------------------------------------------------


def test_appends_after_the_last_final_marks_complete_and_compacts(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(10.0),
                              [("We should ship.", 0.5, 2.0), ("Who owns it?", 2.5, 4.0)])
    engine = ScriptedEngine([final(2.0, "Dana does.", start=1.0), final(5.0, "Thanks.", start=4.2)])
    heard = []
    result = recover_session(store, sessions, sid, engine, on_final=heard.append)

    # The audio after 4.0 is silent (a pause): recovery resumes at t exactly, no overlap.
    assert result.from_s == {None: 4.0} and result.audio_s == 10.0
    assert texts(store, sid) == [
        (1, "We should ship.", 0.5, 2.0, None), (2, "Who owns it?", 2.5, 4.0, None),
        (3, "Dana does.", 5.0, 6.0, None), (4, "Thanks.", 8.2, 9.0, None)]
    assert [s.seq for s in heard] == [3, 4] and result.added == heard
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == 10.0
    (session,) = engine.finished_sessions
    assert session.options.partials is False  # offline mode: finals only
    assert session.fed_s == pytest.approx(6.0)  # only the unheard audio
    assert sorted(os.listdir(spool_folder(sessions, sid))) == [FLAC, META]
    assert find_recoverable(store, sessions) == []

    again = recover_session(store, sessions, sid, ScriptedEngine([final(1.0, "never")]))
    assert again.already_complete and again.added == []
    assert len(store.segments(sid)) == 4


def test_overlap_when_the_boundary_cuts_speech(store, sessions):
    """No pause after the last final (a forced cut, or a loose end time): resume 0.3 s early so
    a cut word is heard whole; what the overlap hears again is dropped, and a new final that
    starts inside it loses the words the last final ended with."""
    sid = interrupted_meeting(store, sessions, loud(8.0), [("We should ship it", 1.0, 4.0)])
    engine = ScriptedEngine([
        final(0.25, "it", start=0.0),  # 3.7–3.95: ends before t, heard again
        final(1.5, "ship it on Friday.", start=0.1),  # 3.8–5.2: mostly new
        final(3.0, "Agreed.", start=2.0),
    ])
    result = recover_session(store, sessions, sid, engine)
    assert result.from_s == {None: pytest.approx(4.0 - OVERLAP_S)}
    assert [(t, a, b) for _, t, a, b, _ in texts(store, sid)[1:]] == [
        ("on Friday.", 3.8, 5.2), ("Agreed.", 5.7, 6.7)]


def test_finals_centred_before_the_boundary_are_dropped(store, sessions):
    sid = interrupted_meeting(store, sessions, loud(6.0), [("One two three", 1.0, 4.0)])
    engine = ScriptedEngine([final(0.5, "three", start=0.0)])  # 3.7–4.2: midpoint 3.95 < 4.0
    assert recover_session(store, sessions, sid, engine).added == []
    assert store.get_session(sid).status == "complete"


@pytest.mark.parametrize("text, before, expected", [
    ("ship it on Friday.", "We should ship it", "on Friday."),
    ("Ship, it! On Friday.", "we should ship it.", "On Friday."),
    ("it", "ship it", ""),
    ("on Friday.", "We should ship it", "on Friday."),
    ("it is what it is", "", "it is what it is"),
])
def test_strip_repeat(text, before, expected):
    assert _strip_repeat(text, before) == expected


def test_each_channel_resumes_from_its_own_last_final(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(8.0, channels=2),
                              [("Hello.", 0.0, 3.0, "mic"), ("Hi.", 0.2, 1.0, "system")],
                              channels=("mic", "system"))
    engine = ScriptedEngine([final(2.0, "next", start=1.5)])
    result = recover_session(store, sessions, sid, engine)
    assert result.from_s == {"mic": 3.0, "system": 1.0}
    # Saved in time order across channels: system's 2.5–3.0 before mic's 4.5–5.0.
    assert texts(store, sid)[2:] == [(3, "next", 2.5, 3.0, "system"), (4, "next", 4.5, 5.0, "mic")]
    assert sorted(s.fed_s for s in engine.finished_sessions) == [pytest.approx(5.0), pytest.approx(7.0)]
    assert open_spool(spool_folder(sessions, sid)).channels == ("mic", "system")


def test_the_recorder_continues_a_meeting_from_its_spool(store, sessions):
    """Recovery's path: the spool as a source, fed to the Recorder with a Continuation. No meeting
    is created; each channel is fed from its own start, its finals reach listeners and the
    store on the meeting's timeline through its keep, in time order across channels; the
    meeting ends complete, as long as its spool."""
    sid = interrupted_meeting(store, sessions, silence(8.0, channels=2),
                              [("Hello.", 0.0, 3.0, "mic"), ("Hi.", 0.2, 1.0, "system")],
                              channels=("mic", "system"))
    engine = ScriptedEngine([final(1.0, "early", start=0.5), final(2.0, "next", start=1.5)])
    heard = []

    class Heard(RecorderListener):
        def on_final(self, final, segment) -> None:
            heard.append((final.text, final.start, final.end, segment.seq, segment.channel))

    def drop_early(f):
        return None if f.text == "early" else f

    source = SpoolSource(open_spool(spool_folder(sessions, sid)), start_s=1.0, labels=("mic", "system"))
    continuation = Continuation(sid, (3.0, 1.0), keep=(drop_early, lambda f: f))
    done = Recorder(store, engine, source, title="unused", listeners=[Heard()], continues=continuation).run()

    assert done.session_id == sid and done.status == "complete" and done.duration_s == 8.0
    assert [s.id for s in store.list_sessions()] == [sid]
    assert heard == [("early", 1.5, 2.0, 3, "system"), ("next", 2.5, 3.0, 4, "system"), ("next", 4.5, 5.0, 5, "mic")]
    assert texts(store, sid)[2:] == [(seq, t, a, b, c) for t, a, b, seq, c in heard]
    assert sorted(s.fed_s for s in engine.finished_sessions) == [pytest.approx(5.0), pytest.approx(7.0)]
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == 8.0


def test_progress_reports_spool_seconds_up_to_the_end(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(70.0), [("x", 0.0, 4.0)])
    progress = []
    recover_session(store, sessions, sid, ScriptedEngine([]), on_progress=lambda *p: progress.append(p))
    assert progress and all(total == 70.0 and 4.0 < done <= total for done, total in progress)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress) and progress[-1] == (70.0, 70.0)


def test_a_meeting_with_no_finals_is_transcribed_from_the_start(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(3.0), [])
    engine = ScriptedEngine([final(1.0, "First words.", start=0.2)])
    recover_session(store, sessions, sid, engine)
    assert texts(store, sid) == [(1, "First words.", 0.2, 1.0, None)]


def test_listing_says_how_much_is_unheard_and_which_have_no_audio(store, sessions):
    a = interrupted_meeting(store, sessions, silence(10.0), [("x", 0.0, 4.0)], title="With audio")
    b = interrupted_meeting(store, sessions, None, [("y", 0.0, 2.0)], title="No spool")
    found = {r.session.id: r for r in find_recoverable(store, sessions)}
    assert set(found) == {a, b}
    assert found[a].recoverable and found[a].audio_s == 10.0 and found[a].after_last_final_s == 6.0
    assert not found[b].recoverable and found[b].audio_s is None
    assert found[b].problem.startswith("no audio to recover")
    with pytest.raises(RecoveryError, match=f"meeting {b} has no audio to recover"):
        recover_session(store, sessions, b, ScriptedEngine([]))
    assert store.get_session(b).status == "interrupted"


def test_dropped_audio_is_not_recoverable(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(2.0), [])
    from notetaker.spool import finish_spool

    finish_spool(spool_folder(sessions, sid), keep=False)
    (r,) = find_recoverable(store, sessions)
    assert "dropped after transcription" in r.problem


def test_keep_audio_off_drops_the_spool_after_recovery(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(4.0), [("x", 0.0, 1.0)])
    recover_session(store, sessions, sid, ScriptedEngine([]), keep_audio=False)
    folder = spool_folder(sessions, sid)
    assert os.listdir(folder) == [META] and json.loads((folder / META).read_text())["audio"] == "dropped"


def test_a_compacted_spool_works_too(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(6.0), [("x", 0.0, 2.0)], compact=True)
    recover_session(store, sessions, sid, ScriptedEngine([final(1.0, "more", start=0.5)]))
    assert texts(store, sid)[-1] == (2, "more", 2.5, 3.0, None)


def test_no_audio_after_the_last_final_needs_no_engine(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(4.0), [("all heard", 0.0, 4.0)])

    def factory():
        raise AssertionError("no engine should load")

    result = recover_session(store, sessions, sid, factory)
    assert result.added == [] and store.get_session(sid).status == "complete"
    assert open_spool(spool_folder(sessions, sid)).kind == "flac"


def test_a_recovery_cut_short_resumes_after_its_own_finals(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(12.0), [("a", 0.0, 2.0)])
    failing = ScriptedEngine([final(2.0, "b", start=1.0), final(5.0, "never saved", start=4.0)],
                             fail_after_finals=1)
    with pytest.raises(ScriptedFailure):
        recover_session(store, sessions, sid, failing)
    # the first run's final is saved (committed as it came); the meeting is still interrupted
    assert [t for _, t, *_ in texts(store, sid)] == ["a", "b"]
    assert store.get_session(sid).status == "interrupted"
    assert open_spool(spool_folder(sessions, sid)).kind == "raw"
    # the second run resumes at the end of "b" (4.0): its cues are in its own time
    result = recover_session(store, sessions, sid, ScriptedEngine([final(3.0, "c", start=2.0)]))
    assert result.from_s == {None: 4.0}
    assert texts(store, sid) == [(1, "a", 0.0, 2.0, None), (2, "b", 3.0, 4.0, None), (3, "c", 6.0, 7.0, None)]


def test_a_store_that_refuses_the_recovered_finals_leaves_the_meeting_interrupted(store, sessions, monkeypatch):
    """The recorder keeps refused finals waiting and retries them; those still refused at the
    end are not stored: one line, the meeting stays interrupted, its raw spool stays."""
    sid = interrupted_meeting(store, sessions, silence(6.0), [("a", 0.0, 2.0)])

    def refuse(*args, **kwargs):
        raise StoreError("the database is busy")

    monkeypatch.setattr(store, "add_segment", refuse)
    with pytest.raises(RecoveryError, match=r"stays interrupted: the store did not take 1 recovered final "
                                            r"\(the database is busy\); run recover again"):
        recover_session(store, sessions, sid, ScriptedEngine([final(2.0, "b", start=1.0)]))
    assert store.get_session(sid).status == "interrupted" and len(store.segments(sid)) == 1
    assert open_spool(spool_folder(sessions, sid)).kind == "raw"


def test_two_recoveries_of_one_meeting_cannot_run_at_once(store, sessions):
    sid = interrupted_meeting(store, sessions, silence(3.0), [])
    fd = os.open(spool_folder(sessions, sid) / "recover.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RecoveryError, match="being recovered by another"):
            recover_session(store, sessions, sid, ScriptedEngine([]))
    finally:
        os.close(fd)
    assert store.get_session(sid).status == "interrupted"


def test_a_meeting_still_recording_is_refused(store, sessions):
    sid = store.create_session("Live", "whisper", "tiny.en")  # owned by this (live) process
    with pytest.raises(RecoveryError, match="still recording"):
        recover_session(store, sessions, sid, ScriptedEngine([]))


# -- `notetaker recover`, a subprocess ---------------------------------------------------


@pytest.fixture
def made(cli):
    """A home with: 1 interrupted with 10 s spooled (4 s heard), 2 interrupted without audio,
    3 complete."""
    cli.home.mkdir(mode=0o700)
    with SessionStore.open(cli.db_path) as store:
        sessions = cli.home / "sessions"
        interrupted_meeting(store, sessions, silence(10.0), [("Heard.", 0.0, 4.0)], title="Planning")
        interrupted_meeting(store, sessions, None, [], title="Lost")
        sid = store.create_session("Done", "whisper", "tiny.en")
        store.finish_session(sid, "complete", duration_s=3.0)
    return cli


def test_cli_lists_interrupted_meetings(made):
    r = made("recover")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["ID", "STARTED", "AUDIO", "UNHEARD", "TITLE"]
    row1 = next(line for line in lines if line.split()[0] == "1")
    assert row1.split()[3:] == ["0:10", "0:06", "Planning"]
    row2 = next(line for line in lines if line.split()[0] == "2")
    assert "Lost" in row2 and "(no audio to recover)" in row2
    assert not any(line.split()[0] == "3" for line in lines[1:])
    assert "notetaker recover ID" in r.err

    rows = made("recover", "--json").json_lines()
    assert [(x["id"], x["recoverable"], x["audio_s"], x["after_last_final_s"]) for x in rows] == [
        (2, False, None, 0.0), (1, True, 10.0, 6.0)]
    assert rows[0]["problem"].startswith("no audio to recover")


@pytest.mark.parametrize("args, message", [
    (["recover", "2"], "meeting 2 has no audio to recover"),
    (["recover", "99"], "no session 99"),
    (["recover", "1", "--all"], "give a meeting ID or --all, not both"),
    (["recover", "1", "--engine", "nope"], "unknown engine 'nope'"),
])
def test_cli_errors_are_one_line_exit_2(made, args, message):
    r = made(*args)
    assert r.rc == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
    with SessionStore.open(made.db_path) as store:
        assert store.get_session(1).status == "interrupted"


def test_cli_complete_meeting_has_nothing_to_recover(made):
    r = made("recover", "3")
    assert r.rc == 0 and "meeting 3 is complete; nothing to recover" in r.err


def test_nothing_interrupted(cli):
    r = cli("recover")
    assert r.rc == 0 and r.out == "" and "no interrupted meetings" in r.err


@pytest.mark.slow
def test_cli_recovers_the_rest_of_a_meeting_with_whisper(cli):
    """Two sentences heard before the crash; the other four are in the spool only."""
    names = ["es01", "es02", "es03", "es04", "es05", "es06"]
    audio, spans = speech_clip(names)
    said = sentences()
    cli.home.mkdir(mode=0o700)
    with SessionStore.open(cli.db_path) as store:
        heard = [(said[n], a, b) for n, a, b in spans[:2]]
        a = interrupted_meeting(store, cli.home / "sessions", audio, heard, title="Weekly")
        b = interrupted_meeting(store, cli.home / "sessions", audio[: int(spans[1][2] * RATE) + 8000], heard[:1])

    r = cli("recover", str(a))
    assert r.rc == 0, r.err
    assert f"meeting {a} recovered: " in r.err and "complete" in r.err
    with SessionStore.open(cli.db_path) as store:
        segs = store.segments(a)
        s = store.get_session(a)
    assert s.status == "complete" and s.duration_s == pytest.approx(len(audio) / RATE, abs=1e-3)
    assert [x.seq for x in segs] == list(range(1, len(segs) + 1))
    new = segs[2:]
    assert new and new[0].start_s >= spans[1][2] - 0.05  # on the meeting's timeline, after the last final
    printed = [line for line in r.out.splitlines() if line.startswith("[")]
    assert len(printed) == len(new)
    rest = " ".join(said[n] for n, *_ in spans[2:])
    got = " ".join(x.text for x in new)
    assert wer([rest], [got]) < 0.25, got
    words = normalize(" ".join(x.text for x in segs))
    assert words.count("budget") == 1 and words.count("morning") == 1  # nothing heard twice
    assert open_spool(cli.home / "sessions" / str(a)).kind == "flac"

    again = cli("recover", str(a))
    assert again.rc == 0 and "nothing to recover" in again.err
    with SessionStore.open(cli.db_path) as store:
        assert len(store.segments(a)) == len(segs)

    # --all takes what is left: meeting b, cut 0.5 s after sentence two
    r = cli("recover", "--all", "--json")
    assert r.rc == 0, r.err
    events = r.json_lines()
    assert events[-1]["type"] == "recovered" and events[-1]["id"] == b and events[-1]["added"] >= 1
    assert all(e["session_id"] == b for e in events if e["type"] == "final")
    with SessionStore.open(cli.db_path) as store:
        assert store.get_session(b).status == "complete"
        assert "budget" in " ".join(normalize(" ".join(x.text for x in store.segments(b))))
    assert not (cli.home / "sessions" / str(b) / RAW).exists()
