"""Full-text search over segments and the person's own notes: FTS5 syntax for power users,
plain words for everyone else."""

from __future__ import annotations

import re
import sqlite3
import time

from storage.db import describe
from storage.errors import BadQuery, StoreError
from storage.records import SearchHit

# Long enough for any real search; a pasted page is refused rather than ANDed term by term.
MAX_QUERY_CHARS = 500
MAX_QUERY_WORDS = 32
# Each short prefix* expands to thousands of terms (~80 ms for "a*" over 9M words).
MAX_PREFIX_TERMS = 4
# bm25 is computed for every match before sorting; a word in half of all segments
# costs ~0.5 s over 9M words. Broad queries rank their newest RANK_WINDOW matches.
RANK_WINDOW = 20_000
SNIPPET_TOKENS = 12
ELLIPSIS = "…"
# A query still running after this long (a huge prefix expansion) is stopped.
DEADLINE_S = 2.0

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# FTS5 reports a query it cannot parse as plain SQLITE_ERROR; anything else is the database.
_SQLITE_ERROR = 1
_SQLITE_INTERRUPT = 9

# ORDER BY rank (FTS5's bm25(), never reconfigured) lets FTS5 sort internally,
# so snippet() runs only for the rows returned, not for every match. The rowid
# range is the rank window (and, within a session, that session's stretch of
# the doclists: 2 ms instead of 80 ms for a common word over 460k segments).
_SEARCH = """
SELECT segments_fts.rowid, segments_fts.rank,
       snippet(segments_fts, 0, :open, :close, :ellipsis, :tokens),
       segments.session_id, segments.seq, segments.start_s, segments.end_s, sessions.title
FROM segments_fts
JOIN segments ON segments.id = segments_fts.rowid
JOIN sessions ON sessions.id = segments.session_id
WHERE segments_fts MATCH :query
  AND segments_fts.rowid BETWEEN :lo AND :hi {session_filter}
ORDER BY segments_fts.rank
LIMIT :limit
"""
_SEARCH_ALL = _SEARCH.format(session_filter="")
_SEARCH_SESSION = _SEARCH.format(session_filter="\n  AND segments.session_id = :session_id")

# The person's own notes: a few lines per meeting, so no rank window is needed.
_NOTES = """
SELECT notes_fts.rowid, notes_fts.rank,
       snippet(notes_fts, 0, :open, :close, :ellipsis, :tokens),
       notes.session_id, notes.t_s, sessions.title
FROM notes_fts
JOIN notes ON notes.id = notes_fts.rowid
JOIN sessions ON sessions.id = notes.session_id
WHERE notes_fts MATCH :query {session_filter}
ORDER BY notes_fts.rank
LIMIT :limit
"""
_SEARCH_NOTES = _NOTES.format(session_filter="")
_SEARCH_NOTES_SESSION = _NOTES.format(session_filter="AND notes.session_id = :session_id")


def clean_query(query: str) -> str:
    """The query as it will be searched, or BadQuery for one that cannot be."""
    if not isinstance(query, str):
        raise BadQuery("the query must be text")
    # Lone surrogates cannot be sent to SQLite; control characters only confuse it.
    text = query.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", text).strip()
    if not text:
        raise BadQuery("empty query")
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(
            f"query too long ({len(text)} characters; the limit is {MAX_QUERY_CHARS}); "
            "search for a few distinctive words"
        )
    words = text.split()
    if len(words) > MAX_QUERY_WORDS:
        raise BadQuery(f"too many words ({len(words)}; the limit is {MAX_QUERY_WORDS})")
    prefixes = sum("*" in w for w in words)
    if prefixes > MAX_PREFIX_TERMS:
        raise BadQuery(f"too many prefix* terms ({prefixes}; the limit is {MAX_PREFIX_TERMS})")
    return text


def plain_words_query(text: str) -> str:
    """Every whitespace-separated word as a quoted phrase (a trailing * kept as a prefix).

    The result always parses as FTS5: quotes inside a word are doubled.
    """
    terms: list[str] = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if not word:
            continue
        terms.append('"' + word.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms)


def search(
    conn: sqlite3.Connection,
    query: str,
    limit: int = 20,
    session_id: int | None = None,
    highlight: tuple[str, str] = ("[", "]"),
) -> list[SearchHit]:
    """Best matches first (bm25) among segments and the person's notes; try the query as
    FTS5 syntax, then as plain words."""
    text = clean_query(query)
    if limit < 1:
        return []
    open_mark, close_mark = highlight
    params: dict[str, object] = {
        "open": open_mark,
        "close": close_mark,
        "ellipsis": ELLIPSIS,
        "tokens": SNIPPET_TOKENS,
        "limit": int(limit),
        "session_id": session_id,
    }
    sql, lo, hi = _SEARCH_ALL, 0, 2**63 - 1
    if session_id is not None:
        sql = _SEARCH_SESSION
        lo, hi = conn.execute(
            "SELECT MIN(id), MAX(id) FROM segments WHERE session_id = ?", (session_id,)
        ).fetchone()
    deadline = time.monotonic() + DEADLINE_S
    # Checked every ~10k VM steps; returning True makes SQLite stop with "interrupted".
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)

    def run(fts_query: str) -> tuple[list[tuple], list[tuple]]:
        asked = {**params, "query": fts_query}
        rows = [] if lo is None else _ranked(conn, sql, {**asked, "lo": lo, "hi": hi})
        notes = conn.execute(_SEARCH_NOTES_SESSION if session_id is not None else _SEARCH_NOTES, asked).fetchall()
        return rows, notes

    try:
        try:
            rows, notes = run(text)
        except sqlite3.OperationalError as exc:
            if _code(exc) != _SQLITE_ERROR:
                raise _as_store_error(exc) from None
            fallback = plain_words_query(text)
            if not fallback:
                raise BadQuery(f"nothing to search for in {_shorten(text)!r}; type some words") from None
            try:
                rows, notes = run(fallback)
            except sqlite3.OperationalError as exc2:
                raise _as_store_error(exc2) from None
    finally:
        conn.set_progress_handler(None, 0)
    hits = [
        SearchHit(
            session_id=row[3],
            session_title=row[7],
            segment_id=row[0],
            seq=row[4],
            start_s=row[5],
            end_s=row[6],
            snippet=row[2],
            rank=row[1],
        )
        for row in rows
    ] + [
        SearchHit(
            session_id=row[3],
            session_title=row[5],
            segment_id=None,
            seq=None,
            start_s=row[4],
            end_s=row[4],
            snippet=row[2],
            rank=row[1],
            kind="note",
            note_id=row[0],
        )
        for row in notes
    ]
    if not notes:
        return hits
    return sorted(hits, key=lambda h: h.rank)[:limit]


def _ranked(conn: sqlite3.Connection, sql: str, params: dict[str, object]) -> list[tuple]:
    """Run the search, ranking only the newest RANK_WINDOW matches of a broad query."""
    # Walking a doclist newest-first is cheap (no bm25): ~1 ms for 20k rows.
    floor = conn.execute(
        "SELECT rowid FROM segments_fts WHERE segments_fts MATCH :query"
        " AND rowid BETWEEN :lo AND :hi ORDER BY rowid DESC LIMIT 1 OFFSET :skip",
        {"query": params["query"], "lo": params["lo"], "hi": params["hi"], "skip": RANK_WINDOW - 1},
    ).fetchone()
    if floor is not None:
        params = {**params, "lo": floor[0]}
    return conn.execute(sql, params).fetchall()


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def _as_store_error(exc: sqlite3.Error) -> StoreError:
    if _code(exc) == _SQLITE_INTERRUPT:
        return BadQuery("that query matches too much to rank in time; add words or drop a short prefix*")
    if _code(exc) == _SQLITE_ERROR:  # even the plain-words form failed: should not happen
        return BadQuery("could not search for that; try plain words without quotes or symbols")
    return StoreError(f"search failed: {describe(exc)}")


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
