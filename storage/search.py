"""Full-text search over segments, the person's own notes and meeting titles.

`search_meetings` is the search people use (the CLI and the TUI): the search box's language
(storage/query.py), meetings that contain every term, each with its best hits. `search` is
the older flat list of segment and note hits for one FTS5 query (every term in one segment).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field

from storage.db import describe, shown_text
from storage.errors import BadQuery, StoreError
from storage.query import Query, mark, parse_query, shorten
from storage.records import MeetingHits, SearchHit, parse_iso

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

# ORDER BY rank (FTS5's bm25(); the heard text of edited segments weighs less) lets FTS5 sort internally,
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
                raise BadQuery(f"nothing to search for in {shorten(text)!r}; type some words") from None
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

# -- meetings: every term somewhere in the meeting ---------------------------------------------

# A term's newest matches looked at to find its meetings. Mapping matches to meetings costs
# ~3 us each, so a term with more (a common word, in over 1% of all segments) is "broad":
# it counts in the meetings its newest matches reach and in those where it shares a segment
# with the rarest other term; when every term is broad, only the meetings of the newest
# matches are considered. A word left out that is broad is looked for meeting by meeting.
MEETING_WINDOW = 5_000
HITS_PER_MEETING = 3

_TERM_ROWS = """
SELECT f.rowid, s.session_id, {ok} FROM (
    SELECT rowid FROM segments_fts WHERE segments_fts MATCH :q AND rowid BETWEEN :lo AND :hi
    ORDER BY rowid DESC LIMIT :window
) AS f JOIN segments AS s ON s.id = f.rowid
"""
_TERM_NOTES = """
SELECT notes_fts.rowid, notes.session_id FROM notes_fts JOIN notes ON notes.id = notes_fts.rowid
WHERE notes_fts MATCH :q AND (:sid IS NULL OR notes.session_id = :sid)
"""
_TERM_TITLES = "SELECT rowid FROM sessions_fts WHERE sessions_fts MATCH :q AND (:sid IS NULL OR rowid = :sid)"
_SPAN = "SELECT MIN(id), MAX(id) FROM segments WHERE session_id = ?"
_OCCURS = """
SELECT 1 FROM segments_fts JOIN segments AS s ON s.id = segments_fts.rowid
WHERE segments_fts MATCH :q AND segments_fts.rowid BETWEEN :lo AND :hi AND s.session_id = :sid AND {ok}
LIMIT 1
"""
# Power queries only: plain ones are marked by storage.query.mark (much cheaper).
_SEGMENT_SNIPPET = """
SELECT snippet(segments_fts, 0, :open, :close, :ellipsis, :tokens) FROM segments_fts
WHERE segments_fts MATCH :q AND segments_fts.rowid = :id
"""
_NOTE_SNIPPET = """
SELECT snippet(notes_fts, 0, :open, :close, :ellipsis, :tokens) FROM notes_fts
WHERE notes_fts MATCH :q AND notes_fts.rowid = :id
"""
_TITLE = ("SELECT highlight(sessions_fts, 0, :open, :close) FROM sessions_fts"
          " WHERE sessions_fts MATCH :q AND rowid = :id")
# A speaker is named per meeting (speakers table) or given by label; matched without case.
_SPEAKER = ("(s.speaker = :speaker{i} COLLATE NOCASE OR EXISTS (SELECT 1 FROM speakers AS sp"
            " WHERE sp.session_id = s.session_id AND sp.label = s.speaker AND sp.name = :speaker{i} COLLATE NOCASE))")


@dataclass
class _Found:
    """Where one term occurs: segment rows by meeting (newest first), notes, titles."""

    rows: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    titles: set[int] = field(default_factory=set)
    complete: bool = True  # False: only its newest MEETING_WINDOW segment matches were seen

    def meetings(self) -> set[int]:
        return set(self.rows) | set(self.notes) | self.titles


def search_meetings(
    conn: sqlite3.Connection,
    query: str,
    limit: int = 20,
    session_id: int | None = None,
    highlight: tuple[str, str] = ("[", "]"),
    per_meeting: int = HITS_PER_MEETING,
) -> list[MeetingHits]:
    """Meetings that contain every term of `query` (the search box's language, storage/query.py)
    and none it leaves out, best first: most terms in the title, then in one segment or note,
    then most mentions, then newest. BadQuery for a query that cannot be searched."""
    text = clean_query(query)
    prefix_last = not query[-1:].isspace()  # "laun" is being typed; "launch " is done
    parsed = parse_query(text, prefix_last)
    if limit < 1:
        return []
    deadline = time.monotonic() + DEADLINE_S
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        try:
            return _Search(conn, parsed, session_id, highlight).meetings(limit, per_meeting)
        except sqlite3.OperationalError as exc:
            if not (parsed.power and _code(exc) == _SQLITE_ERROR):
                raise _as_store_error(exc) from None
        words = parse_query(text, prefix_last, power=False)  # FTS5 could not parse it: plain words
        try:
            return _Search(conn, words, session_id, highlight).meetings(limit, per_meeting)
        except sqlite3.OperationalError as exc:
            raise _as_store_error(exc) from None
    finally:
        conn.set_progress_handler(None, 0)


class _Search:
    """One query's evaluation: each term's meetings, intersected, ranked, with their hits."""

    def __init__(self, conn: sqlite3.Connection, query: Query, session_id: int | None,
                 highlight: tuple[str, str]) -> None:
        self.conn, self.query, self.session_id = conn, query, session_id
        self.lo, self.hi = 0, 2**63 - 1
        if session_id is not None:
            lo, hi = conn.execute(_SPAN, (session_id,)).fetchone()
            self.lo, self.hi = (lo, hi) if lo is not None else (1, 0)
        self.ok = " AND ".join(
            [f"({' OR '.join(_SPEAKER.format(i=i) for i in range(len(query.speakers)))})"] * bool(query.speakers)
            + [f"s.channel IN ({', '.join(f':channel{i}' for i in range(len(query.channels)))})"] * bool(query.channels)
            + ([f"s.session_id = {int(session_id)}"] if session_id is not None else [])
        ) or "1"
        self.params: dict[str, object] = {f"speaker{i}": v for i, v in enumerate(query.speakers)}
        self.params.update({f"channel{i}": v for i, v in enumerate(query.channels)})
        self.marks = {"open": highlight[0], "close": highlight[1], "ellipsis": ELLIPSIS, "tokens": SNIPPET_TOKENS}

    def meetings(self, limit: int, per_meeting: int) -> list[MeetingHits]:
        q = self.query
        found = [self._find(term) for term in q.terms]
        candidates = self._candidates(found)
        broad: list[str] = []
        for term in q.excluded:
            # Left out by what a meeting shows (not an edit's heard text), whoever said it.
            gone = self._find(term, column="text : ", filtered=False)
            candidates -= gone.meetings()
            if not gone.complete:
                broad.append(f"text : {term}")
        weights = [math.log(1 + len(candidates) / max(1, len(f.meetings()))) + 1 for f in found]
        ranked: list[int] = []
        for sid in sorted(candidates, key=lambda sid: self._meeting_key(found, sid), reverse=True):
            if not any(self._occurs(term, sid, filtered=False) for term in broad):
                ranked.append(sid)
                if len(ranked) == limit:
                    break
        return self._results(ranked, found, weights, per_meeting)

    def _find(self, term: str, column: str = "", filtered: bool = True, segments_only: bool = False) -> _Found:
        found = _Found()
        params = {**self.params, "q": column + term, "lo": self.lo, "hi": self.hi, "window": MEETING_WINDOW,
                  "sid": self.session_id}
        ok = self.ok if filtered else ("1" if self.session_id is None else f"s.session_id = {int(self.session_id)}")
        rows = self.conn.execute(_TERM_ROWS.format(ok=ok), params).fetchall()
        found.complete = len(rows) < MEETING_WINDOW
        for rowid, sid, matches in rows:
            if matches:
                found.rows[sid].append(rowid)
        if segments_only or (filtered and self.query.filtered):
            return found  # notes and titles have no speaker or channel
        for rowid, sid in self._optional(_TERM_NOTES, {"q": term, "sid": self.session_id}):
            found.notes[sid].append(rowid)
        found.titles.update(sid for (sid,) in self._optional(_TERM_TITLES, {"q": term, "sid": self.session_id}))
        return found

    def _optional(self, sql: str, params: dict[str, object]) -> list[tuple]:
        """Notes and titles for a term; an FTS5 query naming a column they lack finds none there."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if self.query.power and _code(exc) == _SQLITE_ERROR:
                return []
            raise

    def _candidates(self, found: list[_Found]) -> set[int]:
        if not found:  # only filters or left-out words: every meeting (that has such segments)
            if self.query.filtered:
                sql = f"SELECT DISTINCT s.session_id FROM segments AS s WHERE {self.ok}"
            else:
                sql = "SELECT id FROM sessions WHERE :sid IS NULL OR id = :sid"
            return {sid for (sid,) in self.conn.execute(sql, {**self.params, "sid": self.session_id})}
        exact = [(len(f.meetings()), term, f) for term, f in zip(self.query.terms, found) if f.complete]
        if not exact:
            return set.intersection(*(f.meetings() for f in found))
        candidates = set.intersection(*(f.meetings() for _, _, f in exact))
        rarest = min(exact)[1]
        for term, f in zip(self.query.terms, found):
            if not f.complete:  # broad: also where it shares a segment with the rarest term
                together = self._find(f"({rarest}) AND ({term})", segments_only=True)
                for sid, rows in together.rows.items():
                    f.rows[sid] = sorted(set(f.rows.get(sid, ())) | set(rows), reverse=True)
                candidates &= f.meetings()
        return candidates

    def _occurs(self, term: str, session_id: int, filtered: bool = True) -> bool:
        lo, hi = self.conn.execute(_SPAN, (session_id,)).fetchone()
        if lo is None:
            return False
        ok = self.ok if filtered else "1"
        params = {**self.params, "q": term, "lo": lo, "hi": hi, "sid": session_id}
        return self.conn.execute(_OCCURS.format(ok=ok), params).fetchone() is not None

    @staticmethod
    def _meeting_key(found: list[_Found], sid: int) -> tuple[int, int, int, int]:
        in_title = sum(sid in f.titles for f in found)
        together: dict[tuple[str, int], int] = defaultdict(int)
        mentions = 0
        for f in found:
            for kind, ids in (("s", f.rows.get(sid, ())), ("n", f.notes.get(sid, ()))):
                mentions += len(ids)
                for i in ids:
                    together[kind, i] += 1
        return in_title, max(together.values(), default=0), mentions, sid

    def _results(self, ranked: list[int], found: list[_Found], weights: list[float],
                 per_meeting: int) -> list[MeetingHits]:
        if not ranked:
            return []
        either = " OR ".join(f"({t})" for t in self.query.terms)
        info = {sid: (title, started) for sid, title, started in self.conn.execute(
            f"SELECT id, title, started_at FROM sessions WHERE id IN ({', '.join(map(str, ranked))})")}
        out = []
        for sid in ranked:
            title, started = info[sid]
            hits = (self._hits(sid, title, found, weights, either, per_meeting) if found
                    else self._filter_hits(sid, title, per_meeting))
            in_title = any(sid in f.titles for f in found)
            if in_title:
                title = self.conn.execute(_TITLE, {**self.marks, "q": either, "id": sid}).fetchone()[0]
            out.append(MeetingHits(sid, title, in_title, parse_iso(started), tuple(hits)))
        return out

    def _hits(self, sid: int, title: str, found: list[_Found], weights: list[float], either: str,
              per_meeting: int) -> list[SearchHit]:
        """The meeting's segments and notes holding the most (and rarest) terms; earliest on a tie."""
        score: dict[tuple[str, int], float] = defaultdict(float)
        for f, weight in zip(found, weights):
            for i in f.rows.get(sid, ()):
                score["s", i] += weight
            for i in f.notes.get(sid, ()):
                score["n", i] += weight
        best = sorted(score, key=lambda k: (-score[k], k[1]))[:per_meeting]
        segments = self._texts(f"SELECT id, seq, start_s, end_s, {shown_text('segments')} FROM segments",
                               [i for kind, i in best if kind == "s"])
        notes = self._texts("SELECT id, NULL, t_s, t_s, text FROM notes", [i for kind, i in best if kind == "n"])
        hits = []
        for kind, i in best:
            seq, start, end, text = (segments if kind == "s" else notes)[i]
            if self.query.power:
                sql = _SEGMENT_SNIPPET if kind == "s" else _NOTE_SNIPPET
                snippet = self.conn.execute(sql, {**self.marks, "q": either, "id": i}).fetchone()[0]
            else:
                snippet = mark(text, self.query.phrases, (self.marks["open"], self.marks["close"]), SNIPPET_TOKENS)
            hits.append(SearchHit(sid, title, i if kind == "s" else None, seq, start, end, snippet, -score[kind, i],
                                  "segment" if kind == "s" else "note", i if kind == "n" else None))
        return hits

    def _texts(self, select: str, ids: list[int]) -> dict[int, tuple]:
        if not ids:
            return {}
        rows = self.conn.execute(f"{select} WHERE id IN ({', '.join(map(str, ids))})").fetchall()
        return {row[0]: row[1:] for row in rows}

    def _filter_hits(self, sid: int, title: str, per_meeting: int) -> list[SearchHit]:
        """No words to match: the meeting's first segments that pass the filters."""
        if not self.query.filtered:
            return []
        rows = self.conn.execute(
            f"SELECT s.id, s.seq, s.start_s, s.end_s, {shown_text('s')} FROM segments AS s"
            f" WHERE s.session_id = :sid AND {self.ok} ORDER BY s.seq LIMIT :n",
            {**self.params, "sid": sid, "n": per_meeting}).fetchall()
        return [SearchHit(sid, title, i, seq, start, end, _first_words(text), 0.0) for i, seq, start, end, text in rows]


def _first_words(text: str) -> str:
    words = text.split()
    return " ".join(words[:SNIPPET_TOKENS]) + (ELLIPSIS if len(words) > SNIPPET_TOKENS else "")
