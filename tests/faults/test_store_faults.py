"""Capture never stops for a storage fault. Another process holds the database's write
lock (BEGIN IMMEDIATE) for longer than the busy timeout in the middle of a live meeting:
audio keeps spooling, finals wait in order and all land once the lock is released, each
printed once. A lock held past the meeting's end parks the finals beside the spool, the
command says where in one line and exits 2, and `recover` stores them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from notetaker.spool import open_spool
from storage import SessionStore

from ..app.spooled import write_clip

pytestmark = pytest.mark.slow

NAMES = ["es01", "es02", "es03", "es04", "es05", "es06", "es07", "es08"]


class Locker:
    """A second process's write transaction on the database, from `start` until `release`."""

    def __init__(self, db_path):
        self.conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)

    def hold(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def live_transcribe(cli, clip, speed: float):
    return subprocess.Popen([sys.executable, "-m", "notetaker", "transcribe", str(clip), "--realtime", "--speed",
                             str(speed), "--json"], cwd=cli.base, env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_events(proc, events: list) -> threading.Thread:
    def read() -> None:
        for line in proc.stdout:
            if line.strip():
                events.append((time.monotonic(), json.loads(line)))
    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def wait_for(events, kind, count=1, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _, e in events if e["type"] == kind) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event in time: {events[-3:]}")


def test_a_lock_held_40_s_mid_meeting_loses_nothing(cli, tmp_path):
    clip, spans = write_clip(tmp_path / "meeting.wav", NAMES)  # ~35 s of speech
    audio_s = spans[-1][2] + 0.7
    proc = live_transcribe(cli, clip, speed=0.5)  # ~70 s of wall time: the lock falls inside
    events: list = []
    reader = read_events(proc, events)
    wait_for(events, "final", 1)
    locker = Locker(cli.db_path)
    locker.hold()
    held = time.monotonic()
    time.sleep(40)
    waiting = [e for at, e in events if e["type"] == "progress" and at > held and e.get("waiting")]
    locker.release()
    proc.wait(timeout=180)
    reader.join(10)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert waiting and "busy" in waiting[-1]["store_problem"]
    assert "finals waiting" in err and "the waiting finals are stored" in err
    finals = [e for _, e in events if e["type"] == "final"]
    with SessionStore.open(cli.db_path) as store:
        sid = next(e["id"] for _, e in events if e["type"] == "session")
        segs = store.segments(sid)
        assert store.get_session(sid).status == "complete"
    assert [(s.id, s.text) for s in segs] == [(f["id"], f["text"]) for f in finals]  # each printed once, stored
    assert [s.seq for s in segs] == list(range(1, len(segs) + 1))
    assert segs[-1].end_s > audio_s - 3.0  # the end of the meeting is there
    assert open_spool(cli.home / "sessions" / str(sid)).seconds == pytest.approx(audio_s, abs=0.1)


def test_a_lock_past_the_end_parks_the_finals_and_recover_stores_them(cli, tmp_path):
    clip, spans = write_clip(tmp_path / "meeting.wav", NAMES[:4])
    proc = live_transcribe(cli, clip, speed=4)
    events: list = []
    reader = read_events(proc, events)
    wait_for(events, "session", 1)
    locker = Locker(cli.db_path)
    locker.hold()
    proc.wait(timeout=180)
    reader.join(10)
    err = proc.stderr.read()
    locker.release()
    sid = next(e["id"] for _, e in events if e["type"] == "session")
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if "could not be stored" in line]
    assert len(lines) == 1 and "finals-waiting.jsonl" in lines[0] and f"notetaker recover {sid}" in lines[0]
    parked = cli.home / "sessions" / str(sid) / "finals-waiting.jsonl"
    n = len(parked.read_text().splitlines())
    assert n >= 3
    r = cli("recover", str(sid))
    assert r.rc == 0, r.err
    with SessionStore.open(cli.db_path) as store:
        segs = store.segments(sid)
        assert store.get_session(sid).status == "complete"
    assert len(segs) >= n and not parked.exists()
    words = " ".join(s.text for s in segs).lower()
    assert words.count("budget") == 1 and words.count("morning") == 1  # stored once, not heard again


def test_the_live_view_says_finals_are_waiting_and_stores_them_after(tmp_path):
    """The TUI's live meeting with its database locked by another process for a while."""
    import asyncio

    from notetaker.tui.app import make_app
    from tests.app.test_recorder import FINAL_TEXTS
    from tests.tui.test_live import deps_for, live, wait_for

    store = SessionStore.open(tmp_path / "home" / "notetaker.db")
    app = make_app(deps_for(store, tmp_path, seconds=4.0, speed=1.0), live=True)
    locker = Locker(tmp_path / "home" / "notetaker.db")
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: live(app).state == "recording" and live(app).session_id)
            locker.hold()
            await wait_for(pilot, lambda: "finals waiting" in live(app).status_text(), timeout=15)
            seen.append(live(app).status_text())
            await pilot.pause(1.0)
            locker.release()
            await wait_for(pilot, lambda: live(app).state == "finished", timeout=20)
            seen.append(live(app).status_text())

    try:
        asyncio.run(main())
        sid = store.list_sessions()[0].id
        assert [s.text for s in store.segments(sid)] == FINAL_TEXTS
        assert store.get_session(sid).status == "complete"
    finally:
        store.close()
    assert "the database is busy" in seen[0] and "finals waiting" not in seen[1]


def test_a_data_home_removed_mid_meeting_is_noticed_in_one_line(cli, tmp_path):
    import shutil

    clip, _ = write_clip(tmp_path / "meeting.wav", NAMES[:4])
    proc = live_transcribe(cli, clip, speed=2)
    events: list = []
    reader = read_events(proc, events)
    wait_for(events, "final", 1)
    shutil.rmtree(cli.home)
    proc.wait(timeout=120)
    reader.join(10)
    err = proc.stderr.read()
    assert proc.returncode != 0
    said = [line for line in err.splitlines() if "removed or replaced" in line]
    assert len(said) == 1 and "nothing of it is saved" in said[0], err
    assert "everything so far is saved" not in err and "notetaker show" not in err
    assert "Traceback" not in err
    stopped = max(at for at, e in events if e["type"] == "error")
    assert any(e["type"] == "error" for _, e in events) and stopped - events[0][0] < 60


def test_record_in_a_real_terminal_keeps_capturing_through_a_40_s_lock(cli, tmp_path):
    """`notetaker record --input FILE` (the TUI, in tmux) while another process holds the
    database's write lock for 40 s: the status bar says finals are waiting, the spool keeps
    growing, and every final is stored once the lock is released."""
    import os
    import shlex
    import shutil
    import uuid

    from ..app.conftest import ROOT

    tmux_bin = shutil.which("tmux")
    if tmux_bin is None:
        pytest.skip("tmux is not installed")
    clip, spans = write_clip(tmp_path / "meeting.wav", NAMES)
    audio_s = spans[-1][2] + 0.7
    socket, name = tmp_path / "tmux.sock", f"nt-lock-{uuid.uuid4().hex[:8]}"
    env = {**cli.env, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    command = " ".join(["exec env -i", *(shlex.quote(f"{k}={v}") for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "notetaker", "record", "--input", shlex.quote(str(clip)), "--speed", "0.5"])

    def tmux(*args: str) -> str:
        return subprocess.run([tmux_bin, "-S", str(socket), *args], capture_output=True, text=True, timeout=20).stdout

    tmux("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "160", "-y", "40", f"cd {ROOT} && {command}")
    raw = cli.home / "sessions" / "1" / "audio.raw"
    try:
        deadline = time.monotonic() + 120
        while not (cli.db_path.exists() and raw.exists()):
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", name)
            time.sleep(0.05)
        time.sleep(3)
        locker = Locker(cli.db_path)
        locker.hold()
        size_at_lock = raw.stat().st_size
        time.sleep(20)
        screen = tmux("capture-pane", "-p", "-t", name)
        time.sleep(20)
        grown = raw.stat().st_size - size_at_lock
        locker.release()
        while "done" not in tmux("capture-pane", "-p", "-t", name):
            assert time.monotonic() < deadline + 120, tmux("capture-pane", "-p", "-t", name)
            time.sleep(0.5)
        tmux("send-keys", "-t", name, "q")
        end = time.monotonic() + 20
        while os.path.exists(socket) and "notetaker" in tmux("list-panes", "-a", "-F", "#{pane_current_command}") \
                and time.monotonic() < end:
            time.sleep(0.2)
    finally:
        subprocess.run([tmux_bin, "-S", str(socket), "kill-server"], capture_output=True)
    assert "finals waiting" in screen and "busy" in screen, screen
    assert grown >= 0.9 * 40 * 0.5 * 32000  # 40 s of wall time at half speed: 20 s of audio kept coming
    with SessionStore.open(cli.db_path) as store:
        segs = store.segments(1)
        s = store.get_session(1)
    assert s.status == "complete" and s.duration_s == pytest.approx(audio_s, abs=0.2)
    words = " ".join(x.text for x in segs).lower()
    for word in ("morning", "budget", "report", "march", "server", "design", "customers", "schedule"):
        assert words.count(word) == 1, (word, words)
