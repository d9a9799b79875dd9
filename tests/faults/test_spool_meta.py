"""A spool whose spool.json was edited to a channel layout notetaker never writes is one
line and exit 2 from `recover`, never a mis-channelled FLAC and a 'complete' meeting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from storage import SessionStore

from ..app.spooled import interrupted_meeting


@pytest.mark.parametrize("channels", [["mic", "system"], ["left", "right", "centre"], ["mono", "mono"]])
def test_an_edited_channel_layout_is_one_line(cli, channels):
    cli.home.mkdir(mode=0o700)
    audio = np.zeros(16000 * 3, np.float32)
    with SessionStore.open(cli.db_path) as store:
        sid = interrupted_meeting(store, cli.home / "sessions", audio, [("Hello.", 0.0, 1.0)])
    meta_path = cli.home / "sessions" / str(sid) / "spool.json"
    meta = json.loads(meta_path.read_text())
    meta["channels"] = channels
    meta_path.write_text(json.dumps(meta))
    r = cli("recover", str(sid))
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert "channel layout" in r.err
    assert cli.session_rows() == [(sid, "interrupted")]
    assert not (cli.home / "sessions" / str(sid) / "audio.flac").exists()
