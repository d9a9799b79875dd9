"""End to end in a real terminal: `notetaker record --input <speech> --realtime` runs in a
detached tmux session (120x40) with the bundled Whisper tiny.en. The test reads the screen
with `capture-pane` until finals with the clip's words are shown and the file has ended,
presses `q`, waits for the process to end, and finds the meeting in the database: complete,
with those words.

The clip is notetaker/data/sample.flac (17 s of LibriVox speech, public domain), played at
twice real time."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "notetaker" / "data" / "sample.flac"
# Whisper tiny.en hears the first utterance as "And Mr. John Dashwood had then leisure to
# consider how much there might be prudently in his power to do for them."
FIRST_FINAL_WORDS = ("dashwood", "leisure")
LAST_WORD = "selfish"  # "... to be rather cold-hearted and rather selfish is to be ill-disposed."
FINAL_SHOWN = re.compile(r"\[#\d+ \d\d:\d\d:\d\d\] [^\n\[]*" + r"[^\[]*".join(FIRST_FINAL_WORDS))
TMUX = shutil.which("tmux")

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    """One detached session on a private tmux server (its own socket), so the test neither
    sees nor touches anyone else's tmux."""

    def __init__(self, socket: Path):
        self.socket = socket
        self.name = f"nt-smoke-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([TMUX, "-S", str(self.socket), *args], capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def start(self, command: str, width: int = 120, height: int = 40) -> None:
        self("-f", "/dev/null", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.name, check=False)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.name, *keys)

    def kill(self) -> None:
        self("kill-server", check=False)


def wait_until(condition, timeout: float, what: str, screen=lambda: ""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; the screen:\n{screen()}")


def test_record_a_meeting_in_a_real_terminal(tmp_path):
    home, user = tmp_path / "home", tmp_path / "user"
    user.mkdir()
    rc_file = tmp_path / "rc"
    env = {"NOTETAKER_HOME": str(home), "HOME": str(user), "XDG_DATA_HOME": str(user / "xdg"),
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(user / "hf"), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    record = [sys.executable, "-m", "notetaker", "record", "--input", str(SAMPLE), "--realtime", "--speed", "2",
              "--title", "Smoke meeting"]
    # `env -i`: the tmux server's environment must not leak in; the exit status lands in a file.
    command = (f"cd {shlex.quote(str(tmp_path))} && env -i {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} "
               f"{shlex.join(record)}; echo $? > {shlex.quote(str(rc_file))}")
    tmux = Tmux(tmp_path / "tmux.sock")
    try:
        tmux.start(f"sh -c {shlex.quote(command)}")
        wait_until(lambda: "REC" in tmux.screen(), 60, "the live screen to start recording", tmux.screen)

        def final_shown() -> bool:
            # A final starts with its number and time ("[#1 00:00:00] And Mr. John Dashwood …", maybe wrapped);
            # the partial shows the same words earlier, without a time.
            return bool(FINAL_SHOWN.search(tmux.screen().lower()))

        wait_until(final_shown, 90, f"a final with {FIRST_FINAL_WORDS}", tmux.screen)
        # `q` before the file ends would mark the meeting interrupted (not all of it was heard):
        # let it play to the end, then finish.
        wait_until(lambda: "■ done" in tmux.screen(), 90, "the file to end", tmux.screen)
        assert LAST_WORD in tmux.screen().lower()
        tmux.keys("q")
        wait_until(lambda: rc_file.exists() and rc_file.read_text().strip(), 60, "notetaker to exit after `q`",
                   tmux.screen)
        assert rc_file.read_text().strip() == "0"
    finally:
        tmux.kill()

    conn = sqlite3.connect(f"file:{home / 'notetaker.db'}?mode=ro", uri=True)
    try:
        sessions = conn.execute("SELECT id, title, status, engine, model FROM sessions").fetchall()
        assert len(sessions) == 1, sessions
        sid, title, status, engine, model = sessions[0]
        assert (title, status, engine, model) == ("Smoke meeting", "complete", "whisper", "tiny.en")
        text = " ".join(t for (t,) in conn.execute("SELECT text FROM segments WHERE session_id = ? ORDER BY seq",
                                                   (sid,)))
    finally:
        conn.close()
    for word in (*FIRST_FINAL_WORDS, LAST_WORD):
        assert word in text.lower(), text
