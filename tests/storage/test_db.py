"""Opening the database: migrations, private files, WAL and pragmas, and refusing bad files."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from storage import SessionStore, StoreError, open_db, schema_version
from storage.db import KNOWN_MIGRATIONS, MIGRATION_SET, SCHEMA_VERSION

TABLES = {"sessions", "segments", "marks", "notes", "summaries", "segments_fts", "notes_fts", "sessions_fts",
          "fts_state", "_sqlite_migrations"}
TRIGGERS = {"segments_ai", "segments_ad", "segments_au", "notes_ai", "notes_ad", "notes_au", "sessions_fts_ai",
            "sessions_fts_ad", "sessions_fts_au"}


def _names(db, kind: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = ?", [kind]).fetchall()}


def test_migrations_from_empty_db_create_everything() -> None:
    db = open_db(None)
    assert TABLES <= _names(db, "table")
    assert TRIGGERS <= _names(db, "trigger")
    fts_sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'segments_fts'").fetchone()[0]
    for part in ("fts5", "content='segments_shown'", "content_rowid='id'", "unicode61 remove_diacritics 2"):
        assert part in fts_sql
    assert schema_version(db) == SCHEMA_VERSION == len(KNOWN_MIGRATIONS) >= 1
    recorded = db.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET]
    ).fetchall()
    assert [r[0] for r in recorded] == KNOWN_MIGRATIONS


def test_reopen_is_idempotent(db_path: Path) -> None:
    store = SessionStore.open(db_path)
    sid = store.create_session("kept", "e", "m")
    store.finish_session(sid)
    store.close()
    db = open_db(db_path)
    assert schema_version(db) == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0] == SCHEMA_VERSION
    assert SessionStore(db).get_session(sid).title == "kept"


def test_session_id_lookups_use_an_index() -> None:
    db = open_db(None)
    plan = " ".join(
        str(r) for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM segments WHERE session_id = 1")
    )
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan


def test_newer_schema_is_refused(db_path: Path) -> None:
    open_db(db_path).conn.close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES (?, '9999_from_the_future', 'x')",
        [MIGRATION_SET],
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer notetaker") as err:
        open_db(db_path)
    assert "\n" not in str(err.value) and "SELECT" not in str(err.value)


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), b"just some notes\nnot a database\n", b"SQLite format 2\x00" + b"\x00" * 100],
    ids=["random-bytes", "text-file", "wrong-header"],
)
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not an SQLite file") as err:
        open_db(path)
    assert path.read_bytes() == content  # and left untouched
    assert "\n" not in str(err.value)


def test_a_damaged_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    with pytest.raises(StoreError) as err:
        open_db(path)
    assert "\n" not in str(err.value) and "SELECT" not in str(err.value)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another program"):
        open_db(path)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        open_db(tmp_path)


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        open_db(blocker / "sub" / "notetaker.db")


def test_an_unwritable_place_is_refused(tmp_path: Path) -> None:
    target = Path("/proc/notetaker-test.db")  # refused even to root
    with pytest.raises(StoreError):
        open_db(target)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StoreError):
            open_db(locked / "notetaker.db")


def test_files_are_private_and_pragmas_set(db_path: Path) -> None:
    store = SessionStore.open(db_path)
    store.add_segment(store.create_session("t", "e", "m"), "hello", 0, 1)  # make the WAL exist
    folder_mode = stat.S_IMODE(db_path.parent.stat().st_mode)
    assert folder_mode == 0o700
    for suffix in ("", "-wal", "-shm"):
        f = db_path.with_name(db_path.name + suffix)
        assert f.exists(), suffix
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, suffix
    db = store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_loose_modes_left_by_someone_else_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "loose.db"
    open_db(path).conn.close()
    os.chmod(path, 0o644)
    open_db(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_umask_does_not_widen_the_file(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "wide" / "n.db"
        open_db(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_memory_databases() -> None:
    for arg in (None, ":memory:"):
        db = open_db(arg)
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert schema_version(db) == SCHEMA_VERSION


def test_processes_opening_a_fresh_file_together_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "race" / "n.db"
    code = f"from storage import SessionStore; SessionStore.open({str(path)!r}).create_session('x', 'e', 'm')"
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=root, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = SessionStore.open(path)
    assert len(store.list_sessions()) == 4
    assert schema_version(store.db) == SCHEMA_VERSION
