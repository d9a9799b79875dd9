"""Deleting a meeting deletes it: rows (segments, marks, summaries, search index) and its
audio in the data home; the file it was transcribed from stays; ids are never reused, so a
later meeting never takes over a deleted one's folder. CLI (`notetaker delete`) and TUI."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
import pytest
import soundfile as sf

from storage import SessionStore
from storage.errors import SessionNotFound

from .conftest import write_wav


def recorded(cli, tmp_path, name="meeting.wav") -> int:
    """A meeting made with a spool (live path), whose audio is kept as sessions/<id>/audio.flac."""
    src = write_wav(tmp_path / name, 3.0)
    r = cli("transcribe", src, "--realtime", "--speed", "20", "--json")
    assert r.rc == 0, r.err
    return next(e["id"] for e in r.json_lines() if e["type"] == "session")


def add_notes(cli, sid: int) -> None:
    with SessionStore.open(cli.db_path) as store:
        store.add_segment(sid, "The zebrafish budget is approved.", 0.0, 1.0)
        store.add_mark(sid, 0.5, "decision", "zebrafish budget")
        store.add_summary(sid, "none", None, "- zebrafish budget [#1]", [])


def test_cli_delete_removes_rows_index_and_audio_and_ids_are_not_reused(cli, tmp_path):
    keep = recorded(cli, tmp_path, "keep.wav")
    gone = recorded(cli, tmp_path, "gone.wav")
    add_notes(cli, gone)
    folder = cli.home / "sessions" / str(gone)
    assert any(folder.iterdir())
    assert "zebrafish" in cli("search", "zebrafish").out

    r = cli("delete", str(gone))  # no terminal, no --yes: refused, nothing deleted
    assert r.rc == 2 and "--yes" in r.err and folder.exists()
    r = cli("delete", str(gone), "--yes")
    assert r.rc == 0, r.err
    assert not folder.exists() and (cli.home / "sessions" / str(keep)).exists()
    assert (tmp_path / "gone.wav").exists()  # the user's own file is theirs
    with SessionStore.open(cli.db_path) as store:
        with pytest.raises(SessionNotFound):
            store.get_session(gone)
        assert store.search("zebrafish") == []
    db = sqlite3.connect(cli.db_path)
    for table in ("segments", "marks", "summaries"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (gone,)).fetchone()[0] == 0
    db.close()
    assert cli("search", "zebrafish").out.strip() == ""

    again = recorded(cli, tmp_path, "again.wav")  # the newest id was deleted: not handed out again
    assert again > gone
    assert cli("delete", "999", "--yes").rc == 2


def test_delete_checks_every_id_before_deleting_any(cli, tmp_path):
    sid = recorded(cli, tmp_path)
    r = cli("delete", str(sid), "12345", "--yes")
    assert r.rc == 2 and "no session 12345" in r.err
    assert cli.session_rows() == [(sid, "complete")]


def test_tui_delete_removes_the_audio_too(cli, tmp_path):
    from notetaker.tui.app import make_app
    from notetaker.tui.deps import AppDeps

    sid = recorded(cli, tmp_path)
    folder = cli.home / "sessions" / str(sid)
    assert folder.exists()
    store = SessionStore.open(cli.db_path)
    deps = AppDeps(store=store, engine_factory=lambda: None, spool_dir=cli.home / "sessions",
                   export_dir=tmp_path, rewrite_backend="none")
    app = make_app(deps)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("d", "y")
            for _ in range(20):
                await pilot.pause(0.05)

    try:
        asyncio.run(main())
        assert store.list_sessions() == []
    finally:
        store.close()
    assert not folder.exists()


def test_a_kept_flac_is_the_meeting_audio(cli, tmp_path):
    """The folder removed above is where the meeting's audio lives (so removing it matters)."""
    sid = recorded(cli, tmp_path)
    flac = cli.home / "sessions" / str(sid) / "audio.flac"
    audio, rate = sf.read(flac)
    assert rate == 16000 and abs(len(audio) / rate - 3.0) < 0.1 and np.abs(audio).max() > 0.1
