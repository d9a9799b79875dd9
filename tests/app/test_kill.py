"""The kill test: a live meeting whose process is SIGKILLed loses nothing that was shown,
and `notetaker recover` completes it from the spool.

`notetaker transcribe FILE --realtime --speed 2 --json` (and `notetaker record`, the TUI,
in a detached tmux) runs Whisper tiny.en on fixture sentences. After two finals, once
the sentence after the last one has been spoken but not yet finalized, the process gets
SIGKILL. Then: every final it printed is in the database; the meeting is `interrupted`
(the next open of the store finds its process gone); the raw spool holds the audio up
to at most 1 s before the kill; and `notetaker recover ID` adds the sentence that was
spoken but never finalized, without repeating anything, and marks the meeting complete.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from notetaker.spool import open_spool
from storage import SessionStore
from storage.store import pid_alive
from tests.support.wer import normalize, wer

from .conftest import ROOT
from .spooled import sentences, write_clip

pytestmark = pytest.mark.slow

NAMES = ["es01", "es02", "es03", "es04", "es05", "es06", "es07", "es08"]  # ≈ 35 s with the gaps
SPEED = 2.0
MIN_FINALS = 2
SPOKEN_MARGIN_S = 0.25  # audio past a sentence's end before the kill: spoken, not yet final
SPOOL_SLACK_S = 1.0  # the spool may trail the kill by at most this much audio


def next_sentence(spans, last_end: float):
    """The first sentence that starts after the last final ended."""
    return next(((n, a, b) for n, a, b in spans if a >= last_end - 0.3), None)


def check_after_kill(home: Path, sid: int, printed: list[dict], expected_audio_s: float, floor_s: float):
    """What must hold once the process is gone, before recovery. Returns the spool's seconds."""
    with SessionStore.open(home / "notetaker.db") as store:  # opening marks dead recordings
        session = store.get_session(sid)
        segs = store.segments(sid)
    assert session.status == "interrupted"
    saved = {(s.id, s.text) for s in segs}
    for f in printed:
        assert (f["id"], f["text"]) in saved, f"printed final {f} is not in the database"
    reader = open_spool(home / "sessions" / str(sid))
    assert reader.kind == "raw"
    print(f"meeting {sid}: {len(segs)} finals saved, audio at the kill ≈ {expected_audio_s:.2f} s, "
          f"spooled {reader.seconds:.2f} s")
    assert reader.seconds >= max(floor_s, expected_audio_s - SPOOL_SLACK_S), (reader.seconds, expected_audio_s)
    assert reader.seconds <= expected_audio_s + 0.5, (reader.seconds, expected_audio_s)
    return reader.seconds, segs


def check_recovered(cli, sid: int, before: list, spans, pending, spool_s: float) -> None:
    said = sentences()
    r = cli("recover")
    assert r.rc == 0 and any(line.split()[:1] == [str(sid)] for line in r.out.splitlines()), r.out
    r = cli("recover", str(sid))
    assert r.rc == 0, r.err
    with SessionStore.open(cli.db_path) as store:
        session = store.get_session(sid)
        segs = store.segments(sid)
    # The meeting came from a file that is still there: recovery goes on to its end (issue 18).
    import soundfile as sf

    file_s = sf.info(session.audio_path).duration
    assert session.status == "complete" and session.duration_s == pytest.approx(file_s, abs=0.05)
    assert [(s.id, s.text) for s in segs[: len(before)]] == [(s.id, s.text) for s in before]
    new = segs[len(before):]
    assert new, "recovery added nothing"
    assert [s.seq for s in segs] == list(range(1, len(segs) + 1))
    assert new[0].start_s >= before[-1].end_s - 0.05
    # The sentence spoken but never finalized is there now.
    name, _, b = pending
    heard = " ".join(s.text for s in new if s.start_s < b + 0.5)
    assert wer([said[name]], [heard]) < 0.35, (said[name], heard)
    # Nothing was heard twice: every sentence in the spool at most once, all of them in order.
    spooled = [n for n, a, b in spans if b <= spool_s]
    all_words = normalize(" ".join(s.text for s in segs))
    for word in ("morning", "budget", "report", "march", "server", "design", "customers", "schedule"):
        assert all_words.count(word) <= 1, (word, all_words)
    reference = " ".join(said[n] for n in spooled)
    assert wer([reference], [" ".join(s.text for s in segs if s.end_s <= spool_s)]) < 0.35
    assert cli("recover", str(sid)).rc == 0  # twice: nothing more
    with SessionStore.open(cli.db_path) as store:
        assert len(store.segments(sid)) == len(segs)


def test_kill_transcribe_realtime_then_recover(cli, tmp_path):
    clip, spans = write_clip(tmp_path / "meeting.wav", NAMES)
    proc = subprocess.Popen([sys.executable, "-m", "notetaker", "transcribe", str(clip), "--realtime",
                             "--speed", str(SPEED), "--json"], cwd=tmp_path, env=cli.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put((time.monotonic(), line))
        lines.put((time.monotonic(), None))

    threading.Thread(target=read, daemon=True).start()
    sid = started = None
    printed: list[dict] = []
    progress = 0.0
    pending = None
    deadline = time.monotonic() + 120
    try:
        while True:
            assert time.monotonic() < deadline, "no kill point reached in time"
            try:
                at, line = lines.get(timeout=0.02)
            except queue.Empty:
                at, line = time.monotonic(), ""
            assert line is not None, f"transcribe ended before the kill: {proc.stderr.read()}"
            if line.strip():
                event = json.loads(line)
                if event["type"] == "session" and event["event"] == "started":
                    sid, started = event["id"], at
                elif event["type"] == "final":
                    printed.append(event)
                elif event["type"] == "progress":
                    progress = event["audio_s"]
            if started is None or len(printed) < MIN_FINALS:
                continue
            pending = next_sentence(spans, printed[-1]["end"])
            assert pending is not None, "the clip ended before the kill point"
            if (time.monotonic() - started) * SPEED >= pending[2] + SPOKEN_MARGIN_S:
                break
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        while not lines.empty():  # a final printed in the very last moment counts as printed too
            _, line = lines.get()
            if line and json.loads(line)["type"] == "final":
                printed.append(json.loads(line))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    expected = (killed - started) * SPEED
    spool_s, before = check_after_kill(cli.home, sid, printed, expected, progress)
    pending = next_sentence(spans, before[-1].end_s)
    if pending is None or pending[2] > spool_s:
        pytest.fail(f"the sentence after the last final was not spooled: {pending}, spool {spool_s:.2f} s")
    check_recovered(cli, sid, before, spans, pending, spool_s)


# -- the same through `notetaker record` (the TUI) ----------------------------------------

TMUX = shutil.which("tmux")
SHOWN_FINAL = re.compile(r"\[(?:#\d+ )?\d\d:\d\d:\d\d\] (.+)")  # "[#3 00:01:02] text"


def ro_rows(db: Path, sql: str, args=()) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")
def test_kill_record_then_recover(cli, tmp_path):
    clip, spans = write_clip(tmp_path / "meeting.wav", NAMES)
    socket = tmp_path / "tmux.sock"
    name = f"nt-kill-{uuid.uuid4().hex[:8]}"
    env = {**cli.env, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    command = " ".join(["exec env -i", *(shlex.quote(f"{k}={v}") for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "notetaker", "record", "--input", shlex.quote(str(clip)), "--speed", str(SPEED)])

    def tmux(*args: str) -> str:
        return subprocess.run([TMUX, "-S", str(socket), *args], capture_output=True, text=True, timeout=20).stdout

    tmux("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", f"cd {ROOT} && {command}")
    db = cli.db_path
    try:
        deadline = time.monotonic() + 120
        started = None
        while started is None:
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", name)
            if (cli.home / "sessions" / "1" / "audio.raw").exists():
                started = time.monotonic()  # capture starts right after the spool is made
            time.sleep(0.01)
        while True:
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", name)
            finals = ro_rows(db, "SELECT end_s FROM segments WHERE session_id = 1 ORDER BY seq")
            if len(finals) >= MIN_FINALS:
                pending = next_sentence(spans, finals[-1][0])
                assert pending is not None
                if (time.monotonic() - started) * SPEED >= pending[2] + SPOKEN_MARGIN_S:
                    break
            time.sleep(0.05)
        screen = tmux("capture-pane", "-p", "-t", name)
        (pid,) = ro_rows(db, "SELECT owner_pid FROM sessions WHERE id = 1")[0]
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.02)
        assert not pid_alive(pid)
    finally:
        subprocess.run([TMUX, "-S", str(socket), "kill-server"], capture_output=True)
    shown = [m.group(1).strip() for m in map(SHOWN_FINAL.search, screen.splitlines()) if m]
    assert shown, screen
    expected = (killed - started) * SPEED
    spool_s, before = check_after_kill(cli.home, 1, [], expected, 0.0)
    saved = [normalize(s.text) for s in before]
    for text in shown:  # every final on the screen is saved (the first words: lines are cut to fit)
        words = normalize(text)[:3]
        assert any(s[: len(words)] == words for s in saved), (text, [s.text for s in before])
    pending = next_sentence(spans, before[-1].end_s)
    if pending is None or pending[2] > spool_s:
        pytest.fail(f"the sentence after the last final was not spooled: {pending}, spool {spool_s:.2f} s")
    check_recovered(cli, 1, before, spans, pending, spool_s)
