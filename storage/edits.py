"""A person's corrections of a transcript: an edit of one segment, find-and-replace across a
meeting (or all of them), and undo.

The heard `text` is never changed: a correction goes to `segments.edited_text` (shown before
the cleanup and the heard text, see `records.shown_text`), and each change is logged in
`segment_edits` (the edited_text before and after) so it can be undone. The changes of one
find-and-replace share a batch and are undone together, as a person expects; a single edit
is a batch of its own. An edit back to the text the segment showed unedited removes the
edit (edited_text NULL). An empty edit is refused: a segment is corrected, never blanked.

The search index follows edits through the UPDATE of `segments.edited_text` (its triggers
index the shown text); nothing here writes the index.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence

from storage.errors import StoreError
from storage.records import SegmentRecord, TextChange, shown_text


def tidy(text: str) -> str:
    """One line, single spaces: what an edit stores (a segment is one line of speech)."""
    return " ".join(text.split())


def edit_change(seg: SegmentRecord, text: str) -> TextChange | None:
    """The change that makes `seg` show `text`; None when it already does."""
    after = tidy(text)
    if not after:
        raise StoreError(f"#{seg.seq}: an edit cannot be empty (undo it, or type the heard text back)")
    if after == tidy(seg.display_text):
        return None
    return TextChange(seg.session_id, seg.id, seg.seq, seg.start_s, seg.display_text, after)


def pattern(find: str, case_sensitive: bool = False, whole_word: bool = True) -> re.Pattern[str]:
    """`find` as a literal pattern: any run of spaces in it matches any run of whitespace, and
    (`whole_word`) its ends must not be inside a longer word ("cat" is not in "category")."""
    words = find.split()
    if not words:
        raise StoreError("nothing to find: give the words to replace")
    body = r"\s+".join(re.escape(w) for w in words)
    if whole_word:
        body = (r"(?<!\w)" if re.match(r"\w", words[0]) else "") + body
        body += r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
    return re.compile(body, 0 if case_sensitive else re.IGNORECASE)


def like_filters(find: str) -> list[str]:
    """LIKE patterns a segment must match to hold `find`: one per plain-ASCII word (SQLite's
    LIKE ignores case only for ASCII, so other words are left to the exact match)."""
    return ["%" + re.sub(r"([\\%_])", r"\\\1", w) + "%" for w in find.split() if w.isascii()]


def replacements(segments: Iterable[SegmentRecord], found: re.Pattern[str], replacement: str) -> list[TextChange]:
    """Each segment whose shown text `found` matches, with the replacement made (literally: no
    backreferences). A segment the replacement would leave empty is left out."""
    new = tidy(replacement)
    out = []
    for seg in segments:
        before = seg.display_text
        replaced, n = found.subn(lambda _m: new, before)
        after = tidy(replaced)
        if n and after and after != tidy(before):
            out.append(TextChange(seg.session_id, seg.id, seg.seq, seg.start_s, before, after))
    return out


def apply(conn: sqlite3.Connection, changes: Sequence[TextChange], now: str) -> list[TextChange]:
    """Store each change as an edit and log it, one batch per meeting; call inside a write
    transaction. A segment deleted, or showing other text than `before` (changed since the
    preview), is skipped: the changes made are returned."""
    applied = []
    batches: dict[int, int] = {}
    for ch in changes:
        row = conn.execute("SELECT text, clean_text, edited_text FROM segments WHERE id = ? AND session_id = ?",
                           (ch.segment_id, ch.session_id)).fetchone()
        if row is None or shown_text(*row) != ch.before:
            continue
        text, clean, old = row
        edited = None if ch.after == tidy(shown_text(text, clean, None)) else ch.after
        if edited == old:
            continue
        cur = conn.execute(
            "INSERT INTO segment_edits (session_id, segment_id, before, after, created_at, batch)"
            " VALUES (?, ?, ?, ?, ?, ?)", (ch.session_id, ch.segment_id, old, edited, now, batches.get(ch.session_id)))
        if ch.session_id not in batches:
            batches[ch.session_id] = cur.lastrowid
            conn.execute("UPDATE segment_edits SET batch = id WHERE id = ?", (cur.lastrowid,))
        conn.execute("UPDATE segments SET edited_text = ? WHERE id = ?", (edited, ch.segment_id))
        applied.append(ch)
    return applied


def undo_last(conn: sqlite3.Connection, session_id: int) -> list[TextChange]:
    """Undo a meeting's last edit, or all of its last replace, and forget it (the next undo
    goes one further back); call inside a write transaction. Empty when nothing is left."""
    last = conn.execute("SELECT batch FROM segment_edits WHERE session_id = ? ORDER BY id DESC LIMIT 1",
                        (session_id,)).fetchone()
    if last is None:
        return []
    rows = conn.execute(
        "SELECT e.id, e.segment_id, e.before, s.seq, s.start_s, s.text, s.clean_text, s.edited_text"
        " FROM segment_edits e JOIN segments s ON s.id = e.segment_id"
        " WHERE e.session_id = ? AND e.batch = ? ORDER BY e.id DESC", (session_id, last[0])).fetchall()
    undone = []
    for edit_id, segment_id, before, seq, start_s, text, clean, now_edited in rows:
        conn.execute("UPDATE segments SET edited_text = ? WHERE id = ?", (before, segment_id))
        conn.execute("DELETE FROM segment_edits WHERE id = ?", (edit_id,))
        undone.append(TextChange(session_id, segment_id, seq, start_s, shown_text(text, clean, now_edited),
                                 shown_text(text, clean, before)))
    return sorted(undone, key=lambda c: c.seq)
