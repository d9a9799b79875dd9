"""Opening the notetaker database: private files, WAL, pragmas, and append-only migrations."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database, Migrations

from storage.citations import migrate_summary
from storage.errors import StoreError

BUSY_TIMEOUT_MS = 5000
MIGRATION_SET = "notetaker"
SQLITE_HEADER = b"SQLite format 3\x00"

# Append-only: a released migration is never edited, only followed by a new one.
migrations = Migrations(MIGRATION_SET)
KNOWN_MIGRATIONS: list[str] = []


def _migration(name: str) -> Callable[[Callable[[Database], None]], Callable[[Database], None]]:
    KNOWN_MIGRATIONS.append(name)
    return migrations(name=name)


@_migration("0001_initial")
def _m0001_initial(db: Database) -> None:
    for statement in _SCHEMA_0001:
        db.execute(statement)


_SCHEMA_0001: tuple[str, ...] = (
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL DEFAULT 'recording'
            CHECK (status IN ('recording', 'complete', 'interrupted')),
        engine TEXT,
        model TEXT,
        language TEXT,
        delay_ms INTEGER,
        audio_path TEXT,
        duration_s REAL,
        owner_pid INTEGER,
        owner_host TEXT
    )""",
    "CREATE INDEX sessions_started_at ON sessions (started_at)",
    # segments(session_id, seq) is unique; its index also serves every
    # session_id lookup and the ON DELETE CASCADE, so no second index is kept.
    """CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        start_s REAL NOT NULL,
        end_s REAL NOT NULL,
        text TEXT NOT NULL,
        channel TEXT,
        speaker TEXT,
        flags TEXT,
        UNIQUE (session_id, seq)
    )""",
    """CREATE TABLE marks (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        t_s REAL NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('action', 'decision', 'question', 'note')),
        text TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX marks_session_id ON marks (session_id, t_s)",
    """CREATE TABLE summaries (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        backend TEXT,
        model TEXT,
        created_at TEXT NOT NULL,
        markdown TEXT NOT NULL,
        citations TEXT NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX summaries_session_id ON summaries (session_id)",
    """CREATE VIRTUAL TABLE segments_fts USING fts5 (
        text,
        content='segments',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )""",
    # Each final is committed alone, but FTS5 writes a new index segment per
    # transaction (~7 of the ~9 pages such a commit wrote). So segments with
    # id > indexed_upto are not yet indexed; the store indexes them in batches
    # (`index_pending`): every FTS_BATCH inserts, before any search, on finish.
    """CREATE TABLE fts_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_upto INTEGER NOT NULL
    )""",
    "INSERT INTO fts_state (id, indexed_upto) VALUES (1, 0)",
    # A rowid can be reused after the newest row is deleted; such a row lands
    # below the watermark and is indexed at once.
    """CREATE TRIGGER segments_ai AFTER INSERT ON segments
    WHEN new.id <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
    END""",
    # A row above the watermark is not in the index: deleting it there would corrupt it.
    """CREATE TRIGGER segments_ad AFTER DELETE ON segments
    WHEN old.id <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
    # Only a change of text touches the index; flag or speaker edits stay cheap.
    """CREATE TRIGGER segments_au AFTER UPDATE OF id, text ON segments BEGIN
        INSERT INTO segments_fts (segments_fts, rowid, text)
            SELECT 'delete', old.id, old.text WHERE old.id <= (SELECT indexed_upto FROM fts_state);
        INSERT INTO segments_fts (rowid, text)
            SELECT new.id, new.text WHERE new.id <= (SELECT indexed_upto FROM fts_state);
    END""",
)

@_migration("0002_clean_text")
def _m0002_clean_text(db: Database) -> None:
    # Cleaned text (punctuation, casing, fillers removed) beside the raw text, which is
    # never overwritten by rewriting; NULL until a rewrite backend has cleaned the segment.
    db.execute("ALTER TABLE segments ADD COLUMN clean_text TEXT")


@_migration("0003_session_ids_never_reused")
def _m0003_session_ids_never_reused(db: Database) -> None:
    # INTEGER PRIMARY KEY hands a deleted newest id out again, and a new meeting then took
    # the deleted one's spool folder. The highest id ever deleted is kept; new ids go above.
    db.execute("CREATE TABLE id_floor (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("""CREATE TRIGGER sessions_ad_floor AFTER DELETE ON sessions BEGIN
        INSERT INTO id_floor (name, value) VALUES ('sessions', old.id)
            ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
    END""")


@_migration("0004_citations_by_segment_number")
def _m0004_citations_by_segment_number(db: Database) -> None:
    # Summaries cited database-wide segment ids, which no transcript shows and an import
    # changes; they now cite each segment's number in its meeting (segments.seq).
    rows = db.execute("SELECT id, session_id, markdown, citations FROM summaries").fetchall()
    numbers: dict[int, dict[int, int]] = {}
    for summary_id, session_id, markdown, stored in rows:
        if session_id not in numbers:
            numbers[session_id] = dict(
                db.execute("SELECT id, seq FROM segments WHERE session_id = ?", [session_id]).fetchall()
            )
        text, cites = migrate_summary(markdown, stored, numbers[session_id])
        db.execute("UPDATE summaries SET markdown = ?, citations = ? WHERE id = ?", [text, cites, summary_id])


@_migration("0005_notes")
def _m0005_notes(db: Database) -> None:
    # The person's own notes, typed during the meeting: one row per line, stamped with the
    # meeting time it was entered at. Few and typed by hand, so their search index is kept
    # by plain triggers (no batching as for segments).
    db.execute("""CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        t_s REAL NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""")
    db.execute("CREATE INDEX notes_session_id ON notes (session_id, t_s)")
    db.execute("""CREATE VIRTUAL TABLE notes_fts USING fts5 (
        text,
        content='notes',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )""")
    db.execute("""CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
        INSERT INTO notes_fts (rowid, text) VALUES (new.id, new.text);
    END""")
    db.execute("""CREATE TRIGGER notes_ad AFTER DELETE ON notes BEGIN
        INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""")
    db.execute("""CREATE TRIGGER notes_au AFTER UPDATE OF id, text ON notes BEGIN
        INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO notes_fts (rowid, text) VALUES (new.id, new.text);
    END""")


@_migration("0006_edits_and_speakers")
def _m0006_edits_and_speakers(db: Database) -> None:
    # A person's correction of a segment, kept beside the heard `text` (which is never
    # overwritten, as with `clean_text`); NULL while the segment is unedited.
    db.execute("ALTER TABLE segments ADD COLUMN edited_text TEXT")
    # Every edit, in order, so the last one can be undone: `before` is the edited_text the
    # segment had (NULL: it was unedited), `after` the one it got (NULL: edit removed).
    db.execute("""CREATE TABLE segment_edits (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
        before TEXT,
        after TEXT,
        created_at TEXT NOT NULL
    )""")
    db.execute("CREATE INDEX segment_edits_session_id ON segment_edits (session_id, id)")
    # Speaker labels of a meeting (segments.speaker holds the label: S1, S2, ...) and the
    # name a person gave each; a label merged into another is rewritten in segments.
    db.execute("""CREATE TABLE speakers (
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        name TEXT,
        PRIMARY KEY (session_id, label)
    )""")


def shown_text(row: str) -> str:
    """The text a segment shows (a person's edit, else what was heard), as SQL over `row`."""
    return f"COALESCE({row}.edited_text, {row}.text)"


def _heard(row: str) -> str:
    """What was heard, only where an edit changed it (NULL otherwise: nothing extra indexed)."""
    return f"CASE WHEN {row}.edited_text <> {row}.text THEN {row}.text END"


def _fts_row(row: str) -> str:
    return f"{row}.id, {shown_text(row)}, {_heard(row)}"


@_migration("0007_search_shown_text_and_titles")
def _m0007_search_shown_text_and_titles(db: Database) -> None:
    # Search finds what a segment shows: a person's edit, else the heard text. The heard text
    # of an edited segment stays findable in a second column (`heard`, NULL for unedited
    # segments so it costs nothing for them), ranked below the shown text. The index reads
    # both through a view, so snippets show the shown text. A rebuild: ~4 s for 1,000 hours.
    for trigger in ("segments_ai", "segments_ad", "segments_au"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DROP TABLE segments_fts")
    db.execute(f"""CREATE VIEW segments_shown AS
        SELECT id, {shown_text("segments")} AS text, {_heard("segments")} AS heard FROM segments""")
    db.execute("""CREATE VIRTUAL TABLE segments_fts USING fts5 (
        text,
        heard,
        content='segments_shown',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )""")
    # bm25 weights per column: a word only in the heard text of an edited segment ranks lower.
    db.execute("INSERT INTO segments_fts (segments_fts, rank) VALUES ('rank', 'bm25(1.0, 0.25)')")
    # As in 0001: rows above the watermark wait for `index_pending` (one FTS5 segment per batch).
    db.execute(f"""CREATE TRIGGER segments_ai AFTER INSERT ON segments
    WHEN new.id <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO segments_fts (rowid, text, heard) VALUES ({_fts_row("new")});
    END""")
    db.execute(f"""CREATE TRIGGER segments_ad AFTER DELETE ON segments
    WHEN old.id <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO segments_fts (segments_fts, rowid, text, heard) VALUES ('delete', {_fts_row("old")});
    END""")
    # An edit (edited_text) changes what is shown, so it re-indexes the row like a text change.
    db.execute(f"""CREATE TRIGGER segments_au AFTER UPDATE OF id, text, edited_text ON segments BEGIN
        INSERT INTO segments_fts (segments_fts, rowid, text, heard)
            SELECT 'delete', {_fts_row("old")} WHERE old.id <= (SELECT indexed_upto FROM fts_state);
        INSERT INTO segments_fts (rowid, text, heard)
            SELECT {_fts_row("new")} WHERE new.id <= (SELECT indexed_upto FROM fts_state);
    END""")
    # Meeting titles: a few short rows kept by plain triggers, as notes are.
    db.execute("""CREATE VIRTUAL TABLE sessions_fts USING fts5 (
        title,
        content='sessions',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )""")
    db.execute("""CREATE TRIGGER sessions_fts_ai AFTER INSERT ON sessions BEGIN
        INSERT INTO sessions_fts (rowid, title) VALUES (new.id, new.title);
    END""")
    db.execute("""CREATE TRIGGER sessions_fts_ad AFTER DELETE ON sessions BEGIN
        INSERT INTO sessions_fts (sessions_fts, rowid, title) VALUES ('delete', old.id, old.title);
    END""")
    db.execute("""CREATE TRIGGER sessions_fts_au AFTER UPDATE OF id, title ON sessions BEGIN
        INSERT INTO sessions_fts (sessions_fts, rowid, title) VALUES ('delete', old.id, old.title);
        INSERT INTO sessions_fts (rowid, title) VALUES (new.id, new.title);
    END""")
    rebuild_index(db.conn)


@_migration("0008_edit_batches")
def _m0008_edit_batches(db: Database) -> None:
    # A find-and-replace changes many segments at once and is undone at once: its log rows
    # share a batch (the id of its first row); a single edit is a batch of its own.
    db.execute("ALTER TABLE segment_edits ADD COLUMN batch INTEGER")
    db.execute("UPDATE segment_edits SET batch = id")


# The id for a new session: above every id there is and every id ever deleted.
NEXT_SESSION_ID = ("(SELECT MAX(COALESCE((SELECT MAX(id) FROM sessions), 0),"
                   " COALESCE((SELECT value FROM id_floor WHERE name = 'sessions'), 0)) + 1)")


# Unindexed segments are indexed once this many wait: one FTS5 segment per batch.
FTS_BATCH = 1024

_PENDING = "SELECT COALESCE((SELECT MAX(id) FROM segments), 0) > (SELECT indexed_upto FROM fts_state)"
# The watermark only rises: lowering it would make deletes skip the index.
_RAISE_WATERMARK = (
    "UPDATE fts_state SET indexed_upto = MAX(indexed_upto, COALESCE((SELECT MAX(id) FROM segments), 0))"
)


def has_pending(conn: sqlite3.Connection) -> bool:
    """Whether any committed segment is not yet in the search index."""
    return bool(conn.execute(_PENDING).fetchone()[0])


def index_pending(conn: sqlite3.Connection) -> None:
    """Index every segment above the watermark; call inside a write transaction."""
    conn.execute(
        "INSERT INTO segments_fts (rowid, text, heard) SELECT id, text, heard FROM segments_shown"
        " WHERE id > (SELECT indexed_upto FROM fts_state) ORDER BY id"
    )
    conn.execute(_RAISE_WATERMARK)


def rebuild_index(conn: sqlite3.Connection) -> None:
    """Rebuild the whole FTS5 indexes (segments, notes, titles); call inside a write transaction."""
    for table in ("segments_fts", "notes_fts", "sessions_fts"):
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
    conn.execute(_RAISE_WATERMARK)


# Below every migration: the count is the schema version.
SCHEMA_VERSION = len(KNOWN_MIGRATIONS)


def open_db(path: str | Path | None = None) -> Database:
    """Open (creating if needed) the database at `path`; None or ":memory:" is in memory."""
    if path is None or str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        db = Database(conn, execute_plugins=False)
        prepare(db)
        return db
    file = Path(path).expanduser()
    _make_private_file(file)
    try:
        conn = sqlite3.connect(str(file), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {file}: {describe(exc)}") from None
    try:
        db = Database(conn, execute_plugins=False)
        db.execute("PRAGMA journal_mode=WAL")
        prepare(db, where=str(file))
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {file}: {describe(exc)}") from None
    # SQLite gives -wal/-shm the main file's mode; tighten any left by an older run.
    for extra in (file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
        _tighten(extra, 0o600)
    return db


def open_db_readonly(path: str | Path) -> Database | None:
    """A connection that never writes: `mode=ro`, or, where even that needs to write (a
    WAL database's shared-memory file on a full disk), `immutable=1`, which reads the file
    as it is. An empty in-memory database when the file does not exist; None when the
    file's schema is older than ours (it needs a writer to migrate it)."""
    from urllib.parse import quote

    file = Path(path).expanduser()
    try:
        present = file.exists()
    except OSError as e:  # a home you cannot read
        raise StoreError(f"cannot open {file}: {e.strerror or e}") from None
    if not present:
        return open_db(None)
    last: sqlite3.Error | None = None
    for flags in ("mode=ro", "immutable=1"):
        conn = None
        try:
            conn = sqlite3.connect(f"file:{quote(str(file))}?{flags}", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            db = Database(conn, execute_plugins=False)
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            applied = _check_applied(db, str(file))
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            last = exc
            continue
        except StoreError:
            conn.close()
            raise
        if applied < SCHEMA_VERSION:
            conn.close()
            return None
        return db
    raise StoreError(f"cannot open {file}: {describe(last)}")


def prepare(db: Database, where: str = "the database") -> None:
    """Per-connection pragmas and pending migrations; cheap and idempotent."""
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        # Up to 32 MB of page cache (the 2 MB default is small for index merges and search).
        db.execute("PRAGMA cache_size=-32768")
        migrate(db, where)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open {where}: {describe(exc)}") from None


def migrate(db: Database, where: str = "the database") -> None:
    """Apply pending migrations in one IMMEDIATE transaction, refusing newer or foreign files."""
    if _check_applied(db, where) == SCHEMA_VERSION:
        return  # the usual case: a read, no lock
    # IMMEDIATE takes the write lock before looking again, so two processes
    # opening a fresh file cannot both apply the same migration.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        if _check_applied(db, where) == 0:
            if _has_foreign_tables(db):
                raise StoreError(f"{where} is an SQLite database of another program, not notetaker's")
            if not _has_fts5(db):
                raise StoreError("this Python's SQLite has no FTS5 full-text search; use one built with it")
        migrations.apply(db)
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()


def _check_applied(db: Database, where: str) -> int:
    applied = [m.name for m in migrations.applied(db)]
    if any(name not in KNOWN_MIGRATIONS for name in applied):
        raise StoreError(
            f"{where} was written by a newer notetaker (schema {len(applied)}, this one knows "
            f"{SCHEMA_VERSION}); upgrade notetaker to open it"
        )
    return len(applied)


def schema_version(db: Database) -> int:
    """How many of our migrations this database has applied."""
    return len(migrations.applied(db))


# Primary SQLite result codes (the low byte of the extended code) in plain words.
_BUSY = "the database is busy (another notetaker is writing); try again"
_PLAIN_WORDS = {
    3: "permission denied",
    5: _BUSY,
    6: _BUSY,
    8: "the file or its folder is read-only",
    9: "the operation was interrupted",
    10: "a disk error occurred",
    11: "the database file is damaged",
    13: "the disk is full",
    14: "the file cannot be opened (missing folder or no permission)",
    19: "the change breaks one of the database's rules",
    26: "it is not an SQLite database",
}


def describe(exc: sqlite3.Error) -> str:
    """SQLite's error as plain words for a person (never the SQL)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _PLAIN_WORDS:
        return _PLAIN_WORDS[code & 0xFF]
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc).lower():
        return "the database is closed"
    return f"database error ({type(exc).__name__})"


def _make_private_file(file: Path) -> None:
    """Create the folder 0700 and the file 0600 without a window where they are wider."""
    if file.is_dir():
        raise StoreError(f"{file} is a folder, not a database file")
    folder = file.parent
    try:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
            _tighten(folder, 0o700)  # mkdir's mode is masked by the umask
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)  # an empty file is a valid empty SQLite database
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create {file}: {exc.strerror or exc}") from None
    if not os.access(file, os.R_OK | os.W_OK):
        raise StoreError(f"{file} is not readable and writable by you")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"the folder of {file} is not writable (SQLite needs it for its journal)")
    _tighten(file, 0o600)
    with open(file, "rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise StoreError(f"{file} is not a notetaker database (it is not an SQLite file)")


def _tighten(path: Path, mode: int) -> None:
    """Drop group/other bits on a file we own; leave other people's files alone."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


def _has_foreign_tables(db: Database) -> bool:
    names = [n for n in db.table_names() if not n.startswith(("sqlite_", "_sqlite_"))]
    return bool(names)


def _has_fts5(db: Database) -> bool:
    # Some builds ship FTS5 without listing it in compile_options: try it.
    try:
        db.conn.execute("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5 (x)")
        db.conn.execute("DROP TABLE temp._fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


__all__ = [
    "BUSY_TIMEOUT_MS",
    "FTS_BATCH",
    "KNOWN_MIGRATIONS",
    "SCHEMA_VERSION",
    "describe",
    "has_pending",
    "index_pending",
    "migrate",
    "migrations",
    "open_db",
    "prepare",
    "rebuild_index",
    "schema_version",
]
