"""Recovering a meeting that came from a file (`transcribe FILE`, `record --input FILE`):
the spool holds only what was heard before the crash, but the file is still there, so
recovery goes on to the file's end; a file gone or changed since is said in one line and
the meeting is recovered to the spool's end as before."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notetaker.recovery import recover_session
from notetaker.spool import Spool, open_spool, spool_folder
from storage import SessionStore

from .conftest import ROOT
from .scripted import ScriptedEngine, final

RATE = 16_000


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Sound with no pause in it, exactly representable in 16 bits (as a WAV file holds it)."""
    x = np.random.default_rng(seed).integers(-8000, 8000, int(seconds * RATE)).astype(np.float32)
    return x / np.float32(32768)


@pytest.fixture
def store(tmp_path: Path):
    s = SessionStore.open(tmp_path / "home" / "notetaker.db")
    yield s
    s.close()


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    return tmp_path / "home" / "sessions"


def killed_file_meeting(store: SessionStore, sessions: Path, path: Path, audio: np.ndarray, heard_s: float,
                        finals: list[tuple[str, float, float]]) -> int:
    """What a `transcribe FILE` killed `heard_s` into the file leaves: its finals, the spool
    up to there, the file's path on the meeting; interrupted."""
    sf.write(path, audio, RATE, subtype="PCM_16")
    sid = store.create_session("From a file", "whisper", "tiny.en", audio_path=str(path))
    for text, a, b in finals:
        store.add_segment(sid, text, a, b)
    sp = Spool.create(spool_folder(sessions, sid), channels=("mono",))
    spooled = audio[: int(heard_s * RATE)]
    for i in range(0, len(spooled), 1600):
        sp.append(spooled[i:i + 1600])
    sp.close(compact=False)
    store.finish_session(sid, "interrupted")
    return sid


def test_recovery_goes_on_to_the_end_of_the_file(store, sessions, tmp_path):
    audio = noise(10.0)
    sid = killed_file_meeting(store, sessions, tmp_path / "talk.wav", audio, 4.0, [("Before the crash.", 0.5, 2.0)])
    # cues in the recovery session's own time, which starts at the last final's end (2.0)
    engine = ScriptedEngine([final(3.0, "Still in the spool.", start=1.0), final(7.5, "Only in the file.", start=6.0)])
    result = recover_session(store, sessions, sid, engine)
    assert result.file_note is None
    assert [s.text for s in store.segments(sid)] == ["Before the crash.", "Still in the spool.", "Only in the file."]
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == pytest.approx(10.0, abs=1e-3)
    assert result.audio_s == pytest.approx(10.0, abs=1e-3)
    (session,) = engine.finished_sessions
    assert result.from_s == {None: 2.0}
    assert session.fed_s == pytest.approx(10.0 - 2.0, abs=1e-3)  # from the resume point to the file's end


def test_a_file_gone_is_recovered_to_the_spool_end_and_said(store, sessions, tmp_path):
    path = tmp_path / "talk.wav"
    sid = killed_file_meeting(store, sessions, path, noise(10.0), 4.0, [("Before the crash.", 0.5, 2.0)])
    path.unlink()
    result = recover_session(store, sessions, sid, ScriptedEngine([final(1.5, "Still in the spool.", start=0.5)]))
    assert result.file_note == (f"its audio file {path} is gone: recovered to the end of its spool (00:00:04), "
                                "not to the file's end")
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == pytest.approx(4.0, abs=1e-3)
    assert [seg.text for seg in store.segments(sid)] == ["Before the crash.", "Still in the spool."]


@pytest.mark.parametrize("change", ["another recording", "shorter"])
def test_a_file_changed_since_is_not_played(store, sessions, tmp_path, change):
    path = tmp_path / "talk.wav"
    sid = killed_file_meeting(store, sessions, path, noise(10.0), 4.0, [("Before the crash.", 0.5, 2.0)])
    sf.write(path, noise(10.0, seed=1) if change == "another recording" else noise(3.0), RATE, subtype="PCM_16")
    engine = ScriptedEngine([final(1.5, "Still in the spool.", start=0.5), final(7.5, "Not this file's.", start=6.0)])
    result = recover_session(store, sessions, sid, engine)
    assert result.file_note is not None and "changed" in result.file_note and "end of its spool" in result.file_note
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == pytest.approx(4.0, abs=1e-3)
    assert [seg.text for seg in store.segments(sid)] == ["Before the crash.", "Still in the spool."]


@pytest.mark.slow
def test_kill_a_batch_transcribe_then_recover_reaches_the_end_of_the_file(cli, tmp_path):
    """`transcribe FILE` (not realtime) killed after its first final; `recover` hears the
    rest of the spool and then the rest of the file, up to the last words.

    The bundled sample ten times over (about 3 min): offline, Whisper decodes a batch of four
    30 s windows of speech at a time, so the first finals come about 2 min in, while the
    rest of the file is not spooled yet."""
    sample, rate = sf.read(ROOT / "notetaker" / "data" / "sample.flac", dtype="float32")
    gap = np.zeros(rate // 2, np.float32)
    clip = tmp_path / "ten times.flac"
    sf.write(clip, np.concatenate([sample, gap] * 9 + [sample]), rate)
    length_s = (10 * len(sample) + 9 * len(gap)) / rate
    proc = subprocess.Popen([sys.executable, "-m", "notetaker", "transcribe", str(clip), "--windowing", "vad",
                             "--json"], cwd=tmp_path, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        sid = None
        while True:
            line = proc.stdout.readline()
            assert line, f"transcribe ended before the kill: {proc.stderr.read()}"
            event = json.loads(line)
            if event["type"] == "session" and event["event"] == "started":
                sid = event["id"]
            if event["type"] == "final":
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with SessionStore.open(cli.db_path) as store:  # the next open finds its process gone
        assert store.get_session(sid).status == "interrupted"
        before = [s.text for s in store.segments(sid)]
    spooled = open_spool(cli.home / "sessions" / str(sid)).seconds
    assert spooled < length_s - 10, f"{spooled:.1f} s of {length_s:.1f} s spooled before the kill"
    r = cli("recover", str(sid))
    assert r.rc == 0, r.err
    assert "recovered" in r.err and "end of its spool" not in r.err, r.err
    with SessionStore.open(cli.db_path) as store:
        session = store.get_session(sid)
        segs = store.segments(sid)
    assert session.status == "complete" and session.duration_s == pytest.approx(length_s, abs=0.05)
    assert [s.text for s in segs[: len(before)]] == before
    from_file = " ".join(s.text for s in segs if s.start_s >= spooled).lower()
    assert "selfish" in from_file and segs[-1].end_s > length_s - 5, (spooled, from_file)  # the file's last words
