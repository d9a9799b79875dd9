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


def notetaker_command(tmp_path: Path, args: list[str]) -> tuple[str, Path, Path]:
    """The shell line that runs `notetaker ARGS` in tmp_path with a private data home (and
    HOME), offline; returns it, the data home and the file its exit status lands in."""
    home, user = tmp_path / "home", tmp_path / "user"
    user.mkdir(exist_ok=True)
    rc_file = tmp_path / "rc"
    env = {"NOTETAKER_HOME": str(home), "HOME": str(user), "XDG_DATA_HOME": str(user / "xdg"),
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(user / "hf"), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    argv = [sys.executable, "-m", "notetaker", *args]
    # `env -i`: the tmux server's environment must not leak in; the exit status lands in a file.
    command = (f"cd {shlex.quote(str(tmp_path))} && env -i {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} "
               f"{shlex.join(argv)}; echo $? > {shlex.quote(str(rc_file))}")
    return command, home, rc_file


def test_record_a_meeting_in_a_real_terminal(tmp_path):
    record = ["record", "--input", str(SAMPLE), "--realtime", "--speed", "2", "--title", "Smoke meeting"]
    command, home, rc_file = notetaker_command(tmp_path, record)
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


# A meeting started from the meetings list. The notes' first letters are no key of the live
# view, and the mark's text has none of the mark dialog's kind keys (a, d, q, n): a key that
# came before its field had the focus could do nothing but be lost.
NOTES = ("Follow up on the estate", "Budget for the sisters")
MARK = "Help the sisters"
CLEAR_GAP_S = 0.5  # ctrl+u takes effect only after keys sent right behind it (see type_into)
ESC_GAP_S = 1.0  # a lone Escape with a key right behind it reads as alt+key; then the next key


def type_into(tmux: Tmux, text: str, tries: int = 1, timeout: float = 30, refocus: str | None = None) -> None:
    """Type `text` into the focused field (cleared first with ctrl+u) and wait until it shows;
    with `tries` > 1 clear and type it again when it never showed whole (keys sent while the
    focus was still on its way to the field are lost, not typed elsewhere), pressing
    `refocus` first when given (the key that focuses the field; typed into it, it is cleared)."""
    for attempt in range(1, tries + 1):
        if refocus and attempt > 1:
            tmux.keys(refocus)
        tmux.keys("C-u")
        # Textual runs a key binding (the field's ctrl+u) once the key has bubbled up to the
        # app, after the keys sent right behind it were typed: without this pause ctrl+u clears
        # the text it was sent to make room for (seen as "lost keys" in loaded runs).
        time.sleep(CLEAR_GAP_S)
        tmux.keys("-l", text)
        try:
            wait_until(lambda: text in tmux.screen(), timeout, f"{text!r} typed", tmux.screen)
            return
        except AssertionError:
            if attempt == tries:
                raise


def press_until(tmux: Tmux, key: str, condition, timeout: float, what: str, again_s: float = 10):
    """Press `key` until `condition()` holds: a key pressed while the app is still starting
    (or busy) can be lost, so one press alone is no sync. Only for keys whose repeat does no
    harm once they took effect (a letter landing in the field the key focused is cleared by
    `type_into`)."""
    end = time.monotonic() + timeout
    while True:
        tmux.keys(key)
        try:
            return wait_until(condition, min(again_s, max(end - time.monotonic(), 0.5)), what, tmux.screen)
        except AssertionError:
            if time.monotonic() >= end:
                raise


def test_a_meeting_from_the_list_with_notes_and_a_mark_exported_to_markdown(tmp_path):
    """`notetaker` with no command: `n` opens the new-meeting dialog, which (no audio device on
    a test machine) takes the sample as a file; two notes and a decision are taken while it
    plays, the meeting ends with `q`, `e` exports it from the list, and the Markdown holds the
    notes and the mark at the times the screen showed, and the sample's words."""
    (tmp_path / "sample.flac").symlink_to(SAMPLE)  # a short path to type: the app runs in tmp_path
    command, home, rc_file = notetaker_command(tmp_path, [])
    tmux = Tmux(tmp_path / "tmux.sock")
    screen = tmux.screen

    def shown(pattern: str, timeout: float, what: str) -> re.Match:
        return wait_until(lambda: re.search(pattern, screen()), timeout, what, screen)

    try:
        tmux.start(f"sh -c {shlex.quote(command)}")
        wait_until(lambda: "No meetings yet" in screen(), 60, "the empty meetings list", screen)
        press_until(tmux, "n", lambda: "audio file played as if live" in screen(), 60, "the new-meeting dialog")
        type_into(tmux, "Smoke meeting", tries=3)  # the title field has the focus, with a default title
        tmux.keys("Tab")  # the file field: there is no device to choose
        type_into(tmux, "sample.flac", tries=3)
        tmux.keys("Enter")
        wait_until(lambda: "● REC" in screen() or "■ done" in screen(), 120, "the live view recording", screen)
        assert "Smoke meeting" in screen().splitlines()[0]

        # `n` opens the notes pane with its field focused (the focus is set before the pane is
        # drawn, so keys sent once it shows land in the field); Enter saves a line with its time.
        press_until(tmux, "n", lambda: "a note (Enter saves it" in screen(), 60, "the notes pane")
        note_at = {}
        for note in NOTES:
            type_into(tmux, note, timeout=15)
            tmux.keys("Enter")
            note_at[note] = shown(rf"\[(\d\d:\d\d:\d\d)\] {re.escape(note)}", 30, f"the note {note!r} saved")[1]
        tmux.keys("Escape")  # back to the transcript
        time.sleep(ESC_GAP_S)
        press_until(tmux, "m", lambda: "Mark this moment" in screen(), 60, "the mark dialog")
        tmux.keys("d")  # a decision; the focus moves to its text
        time.sleep(0.5)
        type_into(tmux, MARK, tries=3)
        tmux.keys("Enter")
        mark_at = shown(rf"▸ \[(\d\d:\d\d:\d\d)\] Decision: {MARK}", 30, "the mark in the transcript")[1]

        wait_until(lambda: "■ done" in screen(), 180, "the file to end", screen)
        tmux.keys("q")  # ends the meeting: back to the list, where it shows complete
        shown(r"Smoke meeting .*complete", 60, "the meeting complete in the list")
        # `e` exports the selected meeting (the only one) into the folder the app runs in
        exported = press_until(tmux, "e", lambda: list(tmp_path.glob("*-Smoke-meeting.md")), 60, "the export")
        tmux.keys("q")
        wait_until(lambda: rc_file.exists() and rc_file.read_text().strip(), 60, "notetaker to exit after `q`", screen)
        assert rc_file.read_text().strip() == "0"
    finally:
        tmux.kill()

    [path] = exported
    markdown = path.read_text(encoding="utf-8")
    for note in NOTES:
        assert f"- **[{note_at[note]}]** {note}\n" in markdown, markdown
    assert f"> **▸ [{mark_at}] Decision**: {MARK}\n" in markdown, markdown  # inline, at its moment
    assert 'status: "complete"' in markdown, markdown
    transcript = markdown.split("## Transcript", 1)[1].lower()
    for word in FIRST_FINAL_WORDS:
        assert word in transcript, markdown
    assert (home / "notetaker.db").is_file()
