"""Plain records read from the store; frozen so a caller cannot mistake them for live rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

STATUSES: tuple[str, ...] = ("recording", "complete", "interrupted")
MARK_KINDS: tuple[str, ...] = ("action", "decision", "question", "note")


@dataclass(frozen=True)
class SessionRecord:
    id: int
    title: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "complete"
    engine: str | None = None
    model: str | None = None
    language: str | None = None
    delay_ms: int | None = None
    audio_path: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class SegmentRecord:
    id: int  # database-wide; never shown
    session_id: int
    seq: int  # the segment's number in its meeting (1, 2, …): shown as #3, cited as [#3]
    start_s: float
    end_s: float
    text: str
    channel: str | None = None
    speaker: str | None = None
    flags: tuple[str, ...] = ()
    clean_text: str | None = None  # the rewrite backend's cleanup; `text` stays the raw final
    edited_text: str | None = None  # the person's correction (storage/edits.py); None: unedited

    @property
    def display_text(self) -> str:
        return shown_text(self.text, self.clean_text, self.edited_text)

    @property
    def spoken_text(self) -> str:
        """What was said: the heard text, or the person's correction of it. Subtitles and plain
        text use it (the cleanup's rewording stays out of them, a correction does not)."""
        return self.edited_text if self.edited_text is not None else self.text

    @property
    def edited(self) -> bool:
        return self.edited_text is not None


def shown_text(text: str, clean_text: str | None, edited_text: str | None) -> str:
    """The one rule for a segment's text on screen and in Markdown: the person's correction,
    else the cleanup, else what was heard. An edit is made on this text."""
    if edited_text is not None:
        return edited_text
    return clean_text if clean_text else text


# `shown_text` in SQL, over the segments table's columns (for filtering before Python does).
SHOWN_SQL = "COALESCE(edited_text, NULLIF(clean_text, ''), text)"


@dataclass(frozen=True)
class TextChange:
    """One segment's shown text before and after an edit, a replacement or an undo."""

    session_id: int
    segment_id: int
    seq: int
    start_s: float
    before: str
    after: str


@dataclass(frozen=True)
class MarkRecord:
    id: int
    session_id: int
    t_s: float
    kind: str
    text: str = ""


@dataclass(frozen=True)
class NoteRecord:
    """One line of the person's own notes (Markdown), typed `t_s` seconds into the meeting."""

    id: int
    session_id: int
    t_s: float
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Citation:
    """One summary bullet and the segments it rests on, by their number in the meeting
    (`SegmentRecord.seq`, what transcripts show as `#3` and the bullet cites as `[#3]`)."""

    bullet: str
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class SummaryRecord:
    id: int
    session_id: int
    backend: str | None
    model: str | None
    created_at: datetime
    markdown: str
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    """A segment of a transcript, or (`kind` "note") a line of the person's own notes: then
    `segment_id` and `seq` are None, `note_id` names it and start_s = end_s = its time."""

    session_id: int
    session_title: str
    segment_id: int | None
    seq: int | None
    start_s: float
    end_s: float
    snippet: str
    rank: float  # FTS5 bm25() (search_meetings: minus its share of the terms): lower is better
    kind: str = "segment"  # or "note"
    note_id: int | None = None

    @property
    def is_note(self) -> bool:
        return self.kind == "note"


@dataclass(frozen=True)
class MeetingHits:
    """A meeting that matches a search (every term occurs in it: transcript, notes or title)
    and its best hits, best first: segments and notes holding most of the terms. No hits when
    only the title matched or the query only left meetings out."""

    session_id: int
    title: str  # the matched words marked when the title matched
    title_matched: bool
    started_at: datetime
    hits: tuple[SearchHit, ...] = ()


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_iso(value: datetime | str) -> str:
    """ISO-8601 in UTC, to the second, with a Z: sorts as text and reads plainly."""
    dt = parse_iso(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # naive times are taken as UTC
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse what `to_iso` wrote (or any ISO-8601 time); ValueError when it is not one."""
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)
