"""Read commands work on a full disk: `sessions`, `show`, `search` and `export` open the
store without writing (read-only, or immutable where even that would need to write), and
a meeting whose process died still reads as interrupted though nothing is fixed up."""

from __future__ import annotations

import os
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage import SessionStore

MOUNT_ROOT = Path("/tmp")


@contextmanager
def tmpfs(size: str):
    """A small tmpfs of its own (root only, as CI runs), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = MOUNT_ROOT / f"notetaker-tmpfs-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode:
        mnt.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
        mnt.rmdir()


@pytest.fixture
def full_home(tmp_path):
    """A 3 MB tmpfs holding a home with two meetings, then filled."""
    with tmpfs("3M") as mnt:
        home = mnt / "home"
        home.mkdir(mode=0o700)
        with SessionStore.open(home / "notetaker.db") as store:
            done = store.create_session("Budget review", "whisper", "tiny.en")
            store.add_segment(done, "The zebrafish budget is approved.", 0.0, 2.0)
            store.finish_session(done, "complete", duration_s=2.0)
            dead = store.create_session("Crashed standup", "whisper", "tiny.en")
            store.add_segment(dead, "Before the crash.", 0.0, 1.0)
        import sqlite3

        conn = sqlite3.connect(home / "notetaker.db")  # its process is gone: no such pid
        conn.execute("UPDATE sessions SET owner_pid = 999999999 WHERE id = ?", (dead,))
        conn.commit()
        conn.close()
        with open(mnt / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield home


def test_read_commands_work_on_a_full_disk(cli, full_home):
    from .conftest import CLI

    c = CLI(cli.base, home=full_home)
    before = (full_home / "notetaker.db").read_bytes()
    r = c("sessions")
    assert r.rc == 0, r.err
    assert "Budget review" in r.out and "INTERRUPTED" in r.out  # shown so, not written so
    r = c("show", "1")
    assert r.rc == 0 and "zebrafish" in r.out, r.err
    r = c("search", "zebrafish")
    assert r.rc == 0 and "zebrafish" in r.out, r.err
    r = c("export", "1", "-f", "md")
    assert r.rc == 0 and "zebrafish" in r.out, r.err
    assert (full_home / "notetaker.db").read_bytes() == before
    # a writer says the disk is full, in one line
    r = c("import", full_home / "notetaker.db")
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1


def test_reading_a_home_that_does_not_exist_creates_nothing(cli, tmp_path):
    from .conftest import CLI

    home = tmp_path / "nowhere"
    c = CLI(cli.base, home=home)
    r = c("sessions")
    assert r.rc == 0 and "no meetings yet" in r.err
    assert c("search", "budget").rc == 0
    assert not home.exists()


def test_a_disk_filling_up_mid_meeting_keeps_what_was_written(cli, tmp_path):
    """The home on a 700 KB tmpfs: the raw spool (32 KB a second) fills it during a live
    meeting. Capture stops with one line, the finals and the audio written so far stay,
    and the meeting reads back as interrupted from the full disk."""
    from ..app.spooled import write_clip
    from .conftest import CLI

    with tmpfs("700k") as mnt:
        c = CLI(cli.base, home=mnt / "home")
        clip, _ = write_clip(tmp_path / "long.wav", ["es01", "es02", "es03", "es04", "es05", "es06", "es07", "es08"])
        r = c("transcribe", clip, "--realtime", "--speed", "8", timeout=300)
        assert r.rc != 0
        stopped = [line for line in r.err.splitlines() if "capture stopped" in line]
        assert len(stopped) == 1 and "everything so far is saved" in stopped[0], r.err
        assert "Traceback" not in r.err
        listed = c("sessions")
        assert listed.rc == 0 and "INTERRUPTED" in listed.out, listed.err
        from notetaker.spool import open_spool

        spooled = open_spool(mnt / "home" / "sessions" / "1").seconds
        assert 5 < spooled < 35
        shown = c("show", "1")
        assert shown.rc == 0
