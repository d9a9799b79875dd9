"""A home the user cannot read is one line and exit 2 for every command, never a
traceback. File modes do not bind root (who runs CI), so the kernel's answer for such a
home, EACCES on every path inside it, is simulated in-process."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from notetaker.cli import main


@pytest.fixture
def unreadable(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    inside = str(home) + os.sep
    real_stat, real_open = os.stat, os.open

    def stat(path, *a, **k):
        if str(path).startswith(inside):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *a, **k)

    def open_(path, *a, **k):
        if str(path).startswith(inside):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "open", open_)
    return home


@pytest.mark.parametrize("args", [["sessions"], ["show", "1"], ["search", "budget"], ["export", "1", "-f", "md"],
                                  ["recover"], ["delete", "1", "--yes"]])
def test_every_command_is_one_line(unreadable, args, capsys):
    rc = main(["--home", str(unreadable), *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Permission denied" in err and "Traceback" not in err
    assert not any(Path(unreadable).iterdir())
