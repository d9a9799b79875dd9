"""Export never destroys: a file already there stays unless --force; devices and FIFOs are
written to as they are and never replaced by a rename (as root, `-o /dev/full` used to
leave a regular file where the device node was)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest


def test_an_existing_file_is_kept_without_force(seeded, tmp_path):
    out = tmp_path / "notes.md"
    out.write_text("my own notes\n")
    r = seeded("export", "1", "-f", "md", "-o", out)
    assert r.rc == 2 and r.err.strip().splitlines() == [f"notetaker: {out} exists; add --force to overwrite it"]
    assert out.read_text() == "my own notes\n"
    r = seeded("export", "1", "-f", "md", "-o", out, "--force")
    assert r.rc == 0 and "We agreed on the budget." in out.read_text()


def test_a_folder_target_keeps_an_earlier_export(seeded, tmp_path):
    assert seeded("export", "1", "-f", "txt", "-o", f"{tmp_path}/").rc == 0
    (written,) = tmp_path.glob("*.txt")
    written.write_text("edited by hand\n")
    r = seeded("export", "1", "-f", "txt", "-o", f"{tmp_path}/")
    assert r.rc == 2 and "--force" in r.err and written.read_text() == "edited by hand\n"


def test_a_link_is_written_through_not_replaced(seeded, tmp_path):
    real = tmp_path / "vault" / "meeting.md"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    assert seeded("export", "1", "-f", "md", "-o", link, "--force").rc == 0
    assert link.is_symlink() and "budget" in real.read_text()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_dev_full_is_an_error_and_stays_a_device(seeded):
    r = seeded("export", "1", "-f", "md", "-o", "/dev/full")
    assert r.rc == 2 and r.err.strip().splitlines() == ["notetaker: cannot write /dev/full: No space left on device"]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert not Path("/dev/full.part").exists()


def test_a_fifo_is_written_directly(seeded, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = seeded("export", "1", "-f", "txt", "-o", fifo, timeout=30)
    reader.join(10)
    assert r.rc == 0, r.err
    assert b"Sam writes it up." in got[0]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dev_stdout_is_written_directly(seeded):
    r = seeded("export", "1", "-f", "txt", "-o", "/dev/stdout")
    assert r.rc == 0 and "We agreed on the budget." in r.out
