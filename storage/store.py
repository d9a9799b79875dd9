"""SessionStore: sessions, segments and their corrections, marks, notes, summaries, search, crash
recovery, JSON exchange."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage import edits as _edits
from storage import search as _search
from storage import speakers as _speakers
from storage.citations import citations_json
from storage.db import (
    BUSY_TIMEOUT_MS,
    FTS_BATCH,
    NEXT_SESSION_ID,
    has_pending,
    index_pending,
    open_db,
    open_db_readonly,
    prepare,
    rebuild_index,
)
from storage.errors import SegmentNotFound, SessionNotFound, StoreError
from storage.export import parse_citations, parse_session_dict, session_dict
from storage.records import (
    MARK_KINDS,
    SHOWN_SQL,
    Citation,
    MarkRecord,
    MeetingHits,
    NoteRecord,
    SearchHit,
    SegmentRecord,
    SessionRecord,
    SummaryRecord,
    TextChange,
    parse_iso,
    to_iso,
    utc_now,
)
from storage.speakers import SpeakerRecord
from storage.transaction import Transaction, foreign_key_failed, friendly_errors

__all__ = [
    "Citation",
    "MarkRecord",
    "NoteRecord",
    "SearchHit",
    "SegmentRecord",
    "SessionRecord",
    "SessionStore",
    "SpeakerRecord",
    "SummaryRecord",
]

_SESSION_COLS = (
    "id, title, started_at, ended_at, status, engine, model, language, delay_ms, audio_path, duration_s"
)
_SEGMENT_COLS = "id, session_id, seq, start_s, end_s, text, channel, speaker, flags, clean_text, edited_text"
_SUMMARY_COLS = "id, session_id, backend, model, created_at, markdown, citations"
_NOTE_COLS = "id, session_id, t_s, text, created_at"

# One statement: the next seq is read and the row written under the same write lock.
_INSERT_SEGMENT = """
INSERT INTO segments (session_id, seq, start_s, end_s, text, channel, speaker, flags)
SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7
FROM segments WHERE session_id = ?1
RETURNING id, seq
"""


class SessionStore:
    """All reads and writes of meeting data; takes a Database so tests can pass an in-memory one.

    Safe to share between threads: one lock serialises use of the connection.
    """

    def __init__(self, db: Database, readonly: bool = False) -> None:
        self.db = db
        self._conn: sqlite3.Connection = db.conn
        self._lock = threading.RLock()
        self._queued = 0  # segments added by this store since it last indexed
        self.fts_batch = FTS_BATCH
        self.readonly = readonly
        self._file = _main_file(self._conn)
        self._identity = _identity(self._file)
        self.recovered: tuple[int, ...] = ()
        self._dead: frozenset[int] = frozenset()
        if readonly:  # reads only: no migrations, no fix-ups, no indexing
            self._dead = frozenset(sid for sid, _ in self._dead_recordings())  # shown as interrupted, left as they are
            return
        prepare(db)
        self.recovered = self.recover()
        try:
            self.index_now()  # finals a crashed process left unindexed
        except StoreError:
            pass  # busy: the next search or finish indexes them

    def still_there(self) -> bool:
        """Whether the database file is still the one this store opened (a data home
        removed or replaced while recording leaves the writes going to a deleted file)."""
        return self._file is None or _identity(self._file) == self._identity

    @classmethod
    def open(cls, path: str | Path | None) -> SessionStore:
        return cls(open_db(path))

    @classmethod
    def open_readonly(cls, path: str | Path) -> SessionStore:
        """For commands that only read (list, show, search, export): nothing is written, so
        they work on a full disk or a read-only home. A file that does not exist yet reads
        as empty; one whose schema is older than this notetaker's is opened (and migrated)
        for writing, as before."""
        db = open_db_readonly(path)
        if db is None:
            return cls.open(path)
        return cls(db, readonly=True)

    def close(self) -> None:
        with self._lock:
            try:
                if not self.readonly:
                    self.index_now()
            except StoreError:
                pass  # a read-only or busy file: the next writer indexes them
            self._conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def _write(self) -> Transaction:
        """`with self._write() as conn:` one committed transaction (a savepoint inside the caller's)."""
        return Transaction(self._conn, self._lock)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one state of the file, even while a recorder writes."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            with friendly_errors():
                self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.rollback()  # read-only: nothing to keep

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple]:
        with self._lock, friendly_errors():
            return self._conn.execute(sql, params).fetchall()

    def _require_session(self, session_id: int) -> None:
        if not self._read("SELECT 1 FROM sessions WHERE id = ?", (session_id,)):
            raise SessionNotFound(session_id)

    # ------------------------------------------------------------ sessions

    def create_session(
        self,
        title: str,
        engine: str | None,
        model: str | None,
        language: str | None = None,
        delay_ms: int | None = None,
        audio_path: str | Path | None = None,
        started_at: datetime | str | None = None,
    ) -> int:
        """A new session in `recording`, owned by this process until finished."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (id, title, started_at, status, engine, model, language,"
                " delay_ms, audio_path, owner_pid, owner_host)"
                f" VALUES ({NEXT_SESSION_ID}, ?, ?, 'recording', ?, ?, ?, ?, ?, ?, ?)",
                (
                    title or "",
                    _iso(started_at or utc_now()),
                    engine,
                    model,
                    language,
                    delay_ms,
                    str(audio_path) if audio_path is not None else None,
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
            return _rowid(cur)

    def finish_session(
        self, session_id: int, status: str = "complete", duration_s: float | None = None
    ) -> None:
        if status not in ("complete", "interrupted"):
            raise StoreError(f"a session can finish as complete or interrupted, not {status!r}")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE sessions SET status = ?, ended_at = ?, duration_s = COALESCE(?, duration_s),"
                " owner_pid = NULL, owner_host = NULL WHERE id = ?",
                (status, to_iso(utc_now()), duration_s, session_id),
            )
            if cur.rowcount:
                self._index(conn)
        if cur.rowcount == 0:
            raise SessionNotFound(session_id)

    def rename_session(self, session_id: int, title: str) -> None:
        with self._write() as conn:
            cur = conn.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
        if cur.rowcount == 0:
            raise SessionNotFound(session_id)

    def delete_session(self, session_id: int) -> None:
        """The session and, by ON DELETE CASCADE, its segments (and their index), marks, notes
        (and theirs), summaries."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        if cur.rowcount == 0:
            raise SessionNotFound(session_id)

    def get_session(self, session_id: int) -> SessionRecord:
        rows = self._read(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise SessionNotFound(session_id)
        return self._shown(_session(rows[0]))

    def list_sessions(self, limit: int | None = None, offset: int = 0) -> list[SessionRecord]:
        """Newest first."""
        rows = self._read(
            f"SELECT {_SESSION_COLS} FROM sessions ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
        )
        return [self._shown(_session(r)) for r in rows]

    def interrupted_sessions(self) -> list[SessionRecord]:
        rows = self._read(
            f"SELECT {_SESSION_COLS} FROM sessions WHERE status = 'interrupted'"
            " ORDER BY started_at DESC, id DESC"
        )
        return [_session(r) for r in rows]

    def _dead_recordings(self) -> list[tuple[int, int | None]]:
        """(id, pid) of `recording` sessions whose process is gone."""
        rows = self._read("SELECT id, owner_pid FROM sessions WHERE status = 'recording'")
        return [(sid, pid) for sid, pid in rows if pid is None or not pid_alive(pid)]

    def _shown(self, record: SessionRecord) -> SessionRecord:
        return replace(record, status="interrupted") if record.id in self._dead else record

    def recover(self) -> tuple[int, ...]:
        """Mark `recording` sessions whose owning process is gone as `interrupted`.

        Liveness is judged by pid on this machine; the host is kept for diagnosis
        only, because host names drift (macOS renames itself on network changes).
        """
        dead = self._dead_recordings()
        flipped = []
        for sid, pid in dead:
            with self._write() as conn:
                # Guarded by status and owner: its process may have finished it meanwhile.
                cur = conn.execute(
                    "UPDATE sessions SET status = 'interrupted', owner_pid = NULL, owner_host = NULL,"
                    " duration_s = COALESCE(duration_s,"
                    "   (SELECT MAX(end_s) FROM segments WHERE session_id = sessions.id))"
                    " WHERE id = ? AND status = 'recording' AND owner_pid IS ?",
                    (sid, pid),
                )
            if cur.rowcount:
                flipped.append(sid)
        return tuple(flipped)

    # ------------------------------------------------------------ segments

    def add_segment(
        self,
        session_id: int,
        text: str,
        start_s: float,
        end_s: float,
        channel: str | None = None,
        speaker: str | None = None,
        flags: Iterable[str] = (),
        wait_ms: int | None = None,
    ) -> SegmentRecord:
        """Append one final; committed before this returns (one transaction per call).
        `wait_ms`: how long to wait for another writer's lock (default: the busy timeout);
        a recorder that can keep the final and try again later waits briefly."""
        flag_tuple = tuple(flags)
        start, end = float(start_s), float(end_s)
        flags_json = json.dumps(flag_tuple) if flag_tuple else None
        params = (session_id, start, end, text, channel, speaker, flags_json)
        with self._lock:
            if wait_ms is not None:
                self._set_busy_timeout(wait_ms)
            try:
                with self._write() as conn:
                    ((seg_id, seq),) = conn.execute(_INSERT_SEGMENT, params).fetchall()
                    self._queued += 1
                    if self._queued >= self.fts_batch:
                        index_pending(conn)
                        self._queued = 0
            except StoreError as exc:
                if foreign_key_failed(exc):
                    raise SessionNotFound(session_id) from None
                raise
            finally:
                if wait_ms is not None:
                    self._set_busy_timeout(BUSY_TIMEOUT_MS)
        return SegmentRecord(seg_id, session_id, seq, start, end, text, channel, speaker, flag_tuple)

    def _set_busy_timeout(self, ms: int) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
        except sqlite3.Error:
            pass  # a closed or broken connection: the write that follows says so

    def segments(self, session_id: int) -> list[SegmentRecord]:
        """In order of their number (seq: 1, 2, … as they were added, which is time order)."""
        rows = self._read(
            f"SELECT {_SEGMENT_COLS} FROM segments WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        if not rows:
            self._require_session(session_id)
        return [_segment(r) for r in rows]

    def get_segment(self, segment_id: int) -> SegmentRecord:
        rows = self._read(f"SELECT {_SEGMENT_COLS} FROM segments WHERE id = ?", (segment_id,))
        if not rows:
            raise SegmentNotFound(segment_id)
        return _segment(rows[0])

    def set_clean_text(self, cleaned: Mapping[int, str]) -> None:
        """Store cleaned text beside the raw text of segments (one transaction); the raw text
        is never changed. Unknown ids raise SegmentNotFound and nothing is written."""
        if not cleaned:
            return
        with self._write() as conn:
            for segment_id, text in cleaned.items():
                cur = conn.execute("UPDATE segments SET clean_text = ? WHERE id = ?", (text, segment_id))
                if cur.rowcount == 0:
                    raise SegmentNotFound(segment_id)

    def uncleaned_segments(self, session_id: int, limit: int | None = None) -> list[SegmentRecord]:
        """Segments of a session with no cleaned text yet, oldest first."""
        sql = f"SELECT {_SEGMENT_COLS} FROM segments WHERE session_id = ? AND clean_text IS NULL ORDER BY seq"
        rows = self._read(sql + (" LIMIT ?" if limit else ""), (session_id, limit) if limit else (session_id,))
        if not rows:
            self._require_session(session_id)
        return [_segment(r) for r in rows]

    def update_segment_text(self, segment_id: int, text: str) -> SegmentRecord:
        with self._write() as conn:
            cur = conn.execute("UPDATE segments SET text = ? WHERE id = ?", (text, segment_id))
        if cur.rowcount == 0:
            raise SegmentNotFound(segment_id)
        return self.get_segment(segment_id)

    def delete_segment(self, segment_id: int) -> None:
        """The others keep their numbers (a gap is left): summaries cite them by number."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))
        if cur.rowcount == 0:
            raise SegmentNotFound(segment_id)

    def last_segment_end(self, session_id: int) -> float:
        """Where transcription stopped: spooled audio after this can be transcribed again."""
        rows = self._read("SELECT MAX(end_s) FROM segments WHERE session_id = ?", (session_id,))
        if rows[0][0] is None:
            self._require_session(session_id)
            return 0.0
        return float(rows[0][0])

    # ------------------------------------------------------------ corrections (storage/edits.py)

    def segment_at(self, session_id: int, seq: int) -> SegmentRecord:
        """A segment by its number in its meeting (`#3`), as people name it."""
        rows = self._read(f"SELECT {_SEGMENT_COLS} FROM segments WHERE session_id = ? AND seq = ?",
                          (session_id, seq))
        if not rows:
            self._require_session(session_id)
            raise StoreError(f"meeting {session_id} has no segment #{seq}; `notetaker show {session_id}` lists them")
        return _segment(rows[0])

    def edit_segment(self, session_id: int, seq: int, text: str) -> TextChange | None:
        """Make segment #seq show `text` (its heard text is kept); None when it already does.
        Text equal to what it showed unedited removes the edit; empty text is refused."""
        with self._write() as conn:
            change = _edits.edit_change(self.segment_at(session_id, seq), text)
            if change is None:
                return None
            _edits.apply(conn, [change], to_iso(utc_now()))
        return change

    def preview_replace(self, find: str, replacement: str, session_id: int | None,
                        case_sensitive: bool = False, whole_word: bool = True) -> list[TextChange]:
        """What replacing `find` (whole words, any case, by default) would change in a meeting's
        shown text, or in every meeting's (`session_id` None); nothing is written."""
        found = _edits.pattern(find, case_sensitive, whole_word)
        if session_id is not None:
            self._require_session(session_id)
        # SQLite narrows the rows down (a tenth of the time over many meetings); the pattern decides.
        likes = _edits.like_filters(find)
        where = ["session_id = ?"] * (session_id is not None) + [f"{SHOWN_SQL} LIKE ? ESCAPE '\\'"] * len(likes)
        rows = self._read(f"SELECT {_SEGMENT_COLS} FROM segments WHERE {' AND '.join(where) or '1'}"
                          " ORDER BY session_id, seq", [session_id] * (session_id is not None) + likes)
        return _edits.replacements([_segment(r) for r in rows], found, replacement)

    def apply_changes(self, changes: Sequence[TextChange]) -> list[TextChange]:
        """Store previewed changes as edits in one transaction, undone together per meeting. A
        segment changed since the preview is skipped: the changes made are returned."""
        if not changes:
            return []
        with self._write() as conn:
            return _edits.apply(conn, changes, to_iso(utc_now()))

    def undo_last_edit(self, session_id: int) -> list[TextChange]:
        """Undo a meeting's last edit, or its last replace entirely; what changed back (empty
        when there is nothing left to undo)."""
        with self._write() as conn:
            self._require_session(session_id)
            return _edits.undo_last(conn, session_id)

    # ------------------------------------------------------------ marks and summaries

    def add_mark(self, session_id: int, t_s: float, kind: str, text: str = "") -> MarkRecord:
        if kind not in MARK_KINDS:
            raise StoreError(f"a mark is one of {', '.join(MARK_KINDS)}, not {kind!r}")
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO marks (session_id, t_s, kind, text) VALUES (?, ?, ?, ?)",
                    (session_id, float(t_s), kind, text),
                )
        except StoreError as exc:
            if foreign_key_failed(exc):
                raise SessionNotFound(session_id) from None
            raise
        return MarkRecord(_rowid(cur), session_id, float(t_s), kind, text)

    def marks(self, session_id: int) -> list[MarkRecord]:
        rows = self._read(
            "SELECT id, session_id, t_s, kind, text FROM marks WHERE session_id = ? ORDER BY t_s, id",
            (session_id,),
        )
        if not rows:
            self._require_session(session_id)
        return [MarkRecord(*r) for r in rows]

    # ------------------------------------------------------------ notes

    def add_note(self, session_id: int, t_s: float, text: str,
                 created_at: datetime | str | None = None) -> NoteRecord:
        """One line of the person's own notes, typed `t_s` seconds into the meeting;
        committed before this returns (one transaction per line, like a final)."""
        created = parse_iso(_iso(created_at or utc_now()))
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO notes (session_id, t_s, text, created_at) VALUES (?, ?, ?, ?)",
                    (session_id, float(t_s), text, to_iso(created)),
                )
        except StoreError as exc:
            if foreign_key_failed(exc):
                raise SessionNotFound(session_id) from None
            raise
        return NoteRecord(_rowid(cur), session_id, float(t_s), text, created)

    def notes(self, session_id: int) -> list[NoteRecord]:
        """In meeting time order (lines typed at the same second: in the order typed)."""
        rows = self._read(f"SELECT {_NOTE_COLS} FROM notes WHERE session_id = ? ORDER BY t_s, id", (session_id,))
        if not rows:
            self._require_session(session_id)
        return [_note(r) for r in rows]

    def edit_note(self, note_id: int, text: str) -> NoteRecord:
        """New text for a line; its time stays when it was typed. StoreError when no such note."""
        with self._write() as conn:
            rows = conn.execute(f"UPDATE notes SET text = ? WHERE id = ? RETURNING {_NOTE_COLS}",
                                (text, note_id)).fetchall()
        if not rows:
            raise StoreError(f"no note {note_id}")
        return _note(rows[0])

    def delete_note(self, note_id: int) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        if cur.rowcount == 0:
            raise StoreError(f"no note {note_id}")

    def add_summary(
        self,
        session_id: int,
        backend: str | None,
        model: str | None,
        markdown: str,
        citations: Iterable[Citation | Mapping[str, Any]] = (),
        created_at: datetime | str | None = None,
    ) -> SummaryRecord:
        """A summary and, for each bullet, the segments it rests on by number (seq), as
        its Markdown cites them (`[#3]`)."""
        cites = parse_citations(list(citations))
        created = parse_iso(_iso(created_at or utc_now()))
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO summaries (session_id, backend, model, created_at, markdown, citations)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (session_id, backend, model, to_iso(created), markdown, citations_json(cites)),
                )
        except StoreError as exc:
            if foreign_key_failed(exc):
                raise SessionNotFound(session_id) from None
            raise
        return SummaryRecord(_rowid(cur), session_id, backend, model, created, markdown, cites)

    def summaries(self, session_id: int) -> list[SummaryRecord]:
        """Oldest first."""
        rows = self._read(
            f"SELECT {_SUMMARY_COLS} FROM summaries WHERE session_id = ? ORDER BY created_at, id",
            (session_id,),
        )
        if not rows:
            self._require_session(session_id)
        return [_summary(r) for r in rows]

    def latest_summary(self, session_id: int) -> SummaryRecord | None:
        rows = self._read(
            f"SELECT {_SUMMARY_COLS} FROM summaries WHERE session_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (session_id,),
        )
        if not rows:
            self._require_session(session_id)
            return None
        return _summary(rows[0])

    # ------------------------------------------------------------ speakers

    def speakers(self, session_id: int) -> list[SpeakerRecord]:
        """The meeting's speaker labels with their names, segments and talk time (storage.speakers)."""
        with self._snapshot():
            self._require_session(session_id)
            with friendly_errors():
                return _speakers.speakers(self._conn, session_id)

    def speaker_names(self, session_id: int) -> dict[str, str]:
        """{label: name} of the named speakers: what transcripts show for their labels."""
        with self._snapshot():
            self._require_session(session_id)
            with friendly_errors():
                return _speakers.names(self._conn, session_id)

    def relabel(self, session_id: int, labels: Mapping[int, str | None], across_channels: bool = False) -> int:
        """Speaker labels for segments by number (seq), all in one transaction; how many changed."""
        with self._write() as conn:
            self._require_session(session_id)
            return _speakers.relabel(conn, session_id, labels, across_channels)

    def relabel_spans(self, session_id: int, spans: Sequence[tuple[float, float, str]],
                      channel: str | None = None) -> int:
        """A diarizer's turns `(start_s, end_s, label)` onto the segments they overlap most
        (of one channel, when given), in one transaction; how many segments were labelled."""
        with self._write() as conn:
            labels = _speakers.labels_from_spans(self.segments(session_id), spans, channel)
            return _speakers.relabel(conn, session_id, labels)

    def rename_speaker(self, session_id: int, label: str, name: str | None) -> str | None:
        """Give a label a name (empty: the label shows again); the name as stored."""
        with self._write() as conn:
            self._require_session(session_id)
            return _speakers.rename(conn, session_id, label, name)

    def merge_speakers(self, session_id: int, source: str, target: str, across_channels: bool = False) -> int:
        """`source` into `target` (see storage.speakers.merge); how many segments moved."""
        with self._write() as conn:
            self._require_session(session_id)
            return _speakers.merge(conn, session_id, source, target, across_channels)

    def edit_speakers(self, session_id: int, edits: Sequence[tuple[str, str, str]],
                      across_channels: bool = True) -> list[str | int | None]:
        """A person's edits, in order and all or none: ("rename", label, name) and
        ("merge", source, target); each one's result (the name kept, the segments moved).
        A person merging says so: across channels too, by default."""
        out: list[str | int | None] = []
        with self._write() as conn:
            self._require_session(session_id)
            for kind, a, b in edits:
                if kind == "rename":
                    out.append(_speakers.rename(conn, session_id, a, b))
                elif kind == "merge":
                    out.append(_speakers.merge(conn, session_id, a, b, across_channels))
                else:
                    raise StoreError(f"a speaker edit is a rename or a merge, not {kind!r}")
        return out

    # ------------------------------------------------------------ search

    def search(
        self,
        query: str,
        limit: int = 20,
        session_id: int | None = None,
        highlight: tuple[str, str] = ("[", "]"),
    ) -> list[SearchHit]:
        """Best matches first. FTS5 syntax works (AND/OR/NOT, NEAR, "phrases", prefix*);
        anything else is searched as plain words. Raises BadQuery for an empty or huge query."""
        with self._lock:
            self._ready_to_search(session_id)
            return _search.search(self._conn, query, limit, session_id, highlight)

    def search_meetings(
        self,
        query: str,
        limit: int = 20,
        session_id: int | None = None,
        highlight: tuple[str, str] = ("[", "]"),
    ) -> list[MeetingHits]:
        """Meetings containing every term (in transcript, notes or title), best first, each with
        its best hits: the search box's language (storage/query.py). Raises BadQuery."""
        with self._lock:
            self._ready_to_search(session_id)
            return _search.search_meetings(self._conn, query, limit, session_id, highlight)

    def _ready_to_search(self, session_id: int | None) -> None:
        if session_id is not None:
            self._require_session(session_id)
        try:
            self.index_now()
        except StoreError:
            pass  # read-only or busy: search what is indexed (all but the last few finals)

    def index_now(self) -> None:
        """Index segments still queued (by any process); a no-op when none are."""
        with self._lock:
            with friendly_errors():
                pending = has_pending(self._conn)
            if pending:
                with self._write() as conn:
                    self._index(conn)

    def reindex(self) -> None:
        """Rebuild the search index from all segments (repairs any drift)."""
        with self._write() as conn:
            rebuild_index(conn)
            self._queued = 0

    def _index(self, conn: sqlite3.Connection) -> None:
        index_pending(conn)
        self._queued = 0

    # ------------------------------------------------------------ JSON exchange

    def export_json(self, session_id: int) -> dict[str, Any]:
        """Everything about one session (see storage.export.session_dict), read from one snapshot."""
        with self._snapshot():
            return session_dict(
                self.get_session(session_id),
                self.segments(session_id),
                self.marks(session_id),
                self.summaries(session_id),
                notes=self.notes(session_id),
                speakers=self.speaker_names(session_id),
            )

    def import_json(self, data: Mapping[str, Any]) -> int:
        """Add an exported session as a new one (new ids, the same segment numbers, so its
        summaries cite the same sentences); atomic."""
        parsed = parse_session_dict(data)
        s = parsed.session
        # Nobody is recording an imported session, so it cannot stay `recording`.
        status = "interrupted" if s.status == "recording" else s.status
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (id, title, started_at, ended_at, status, engine, model, language,"
                f" delay_ms, audio_path, duration_s) VALUES ({NEXT_SESSION_ID}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    s.title,
                    to_iso(s.started_at),
                    to_iso(s.ended_at) if s.ended_at else None,
                    status,
                    s.engine,
                    s.model,
                    s.language,
                    s.delay_ms,
                    s.audio_path,
                    s.duration_s,
                ),
            )
            new_id = _rowid(cur)
            # Segment numbers (seq) are kept as exported, so citations, which name them, need no remapping.
            for seg in parsed.segments:
                conn.execute(
                    "INSERT INTO segments (session_id, seq, start_s, end_s, text, channel, speaker, flags,"
                    " clean_text, edited_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new_id,
                        seg.seq,
                        seg.start_s,
                        seg.end_s,
                        seg.text,
                        seg.channel,
                        seg.speaker,
                        json.dumps(seg.flags) if seg.flags else None,
                        seg.clean_text,
                        seg.edited_text,  # the edits stay; their log (undo) is the exporter's
                    ),
                )
            conn.executemany(
                "INSERT INTO marks (session_id, t_s, kind, text) VALUES (?, ?, ?, ?)",
                [(new_id, m.t_s, m.kind, m.text) for m in parsed.marks],
            )
            conn.executemany(
                "INSERT INTO notes (session_id, t_s, text, created_at) VALUES (?, ?, ?, ?)",
                [(new_id, n.t_s, n.text, to_iso(n.created_at)) for n in parsed.notes],
            )
            conn.executemany(  # labels only on segments get their rows as they are named
                "INSERT INTO speakers (session_id, label, name) VALUES (?, ?, ?)",
                [(new_id, label, name) for label, name in parsed.speakers.items()],
            )
            for summ in parsed.summaries:
                conn.execute(
                    "INSERT INTO summaries (session_id, backend, model, created_at, markdown, citations)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        new_id,
                        summ.backend,
                        summ.model,
                        to_iso(summ.created_at),
                        summ.markdown,
                        citations_json(summ.citations),
                    ),
                )
            self._index(conn)
        return new_id


# ---------------------------------------------------------------- helpers


def _iso(value: datetime | str) -> str:
    try:
        return to_iso(value)
    except ValueError:
        raise StoreError(f"{str(value)[:40]!r} is not an ISO-8601 time") from None


def _rowid(cur: sqlite3.Cursor) -> int:
    assert cur.lastrowid is not None  # always set after a one-row INSERT
    return cur.lastrowid


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) succeeding is our answer


def _main_file(conn: sqlite3.Connection) -> str | None:
    rows = conn.execute("PRAGMA database_list").fetchall()
    return next((r[2] for r in rows if r[1] == "main" and r[2]), None)


def _identity(file: str | None) -> tuple[int, int] | None:
    if file is None:
        return None
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _session(r: tuple) -> SessionRecord:
    return SessionRecord(
        id=r[0],
        title=r[1],
        started_at=parse_iso(r[2]),
        ended_at=parse_iso(r[3]) if r[3] else None,
        status=r[4],
        engine=r[5],
        model=r[6],
        language=r[7],
        delay_ms=r[8],
        audio_path=r[9],
        duration_s=r[10],
    )


def _segment(r: tuple) -> SegmentRecord:
    flags = tuple(json.loads(r[8])) if r[8] else ()
    return SegmentRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], flags, r[9], r[10])


def _note(r: tuple) -> NoteRecord:
    return NoteRecord(r[0], r[1], r[2], r[3], parse_iso(r[4]))


def _summary(r: tuple) -> SummaryRecord:
    cites = parse_citations(json.loads(r[6]) if r[6] else [])
    return SummaryRecord(r[0], r[1], r[2], r[3], parse_iso(r[4]), r[5], cites)

