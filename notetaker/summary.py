"""Summaries and Markdown exports of stored meetings, shared by the CLI and the TUI.

No Textual and no printing here: callers say what happened in their own way. Model work
(`summarize_session`) blocks; the TUI runs it off the UI thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewrite.backend import RewriteBackend
from rewrite.base import Note, RewriteError, Segment
from rewrite.prompts import Template
from rewrite.summarize import Summarizer, SummaryResult
from storage import Citation, NoteRecord, SegmentRecord, SessionRecord, SessionStore, SummaryRecord, render
from storage.export import FORMATS
from storage.speakers import NO_NAMES, shown_speaker


def duration_text(seconds: float | None) -> str:
    """`1:02:03`, `12:34`, or `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def slug(title: str) -> str:
    slugged = re.sub(r"[^\w\-]+", "-", title, flags=re.UNICODE).strip("-")
    return slugged[:80] or "meeting"


def export_name(session: SessionRecord, fmt: str = "md") -> str:
    """`12-Weekly-planning.md`: what `notetaker export ID -o DIR/` writes too."""
    return f"{session.id}-{slug(session.title)}.{FORMATS[fmt].extension}"


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a `.part` file, so a crash never leaves half an export under the real name."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class ExistsError(Exception):
    """The target is a file already there and overwriting was not asked for."""


def write_export(path: Path, text: str, force: bool = False) -> None:
    """Write an export where the user said. A regular file (or a link to one) is replaced
    atomically, and only with `force`; anything else there (a terminal, /dev/stdout, a
    FIFO, /dev/full) is written to as it is, never renamed over: as root a rename would
    turn a device node into a plain file. OSError when it cannot."""
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "it is a folder", str(path))
        with open(path, "w", encoding="utf-8") as f:  # no O_CREAT race: it exists and is not ours
            f.write(text)
        return
    if st is not None and not force:
        raise ExistsError(f"{path} exists; add --force to overwrite it")
    write_text_atomic(path.resolve() if path.is_symlink() else path, text)


def export_session(store: SessionStore, session_id: int, folder: Path, fmt: str = "md") -> Path:
    """Write one meeting into `folder` (created if needed); the file's path. OSError when it cannot."""
    session = store.get_session(session_id)
    text = render(fmt, session, store.segments(session_id), store.marks(session_id),
                  store.summaries(session_id), store.notes(session_id), speakers=store.speaker_names(session_id))
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / export_name(session, fmt)
    write_text_atomic(path, text)
    return path


def os_error_text(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


# -- summaries --------------------------------------------------------------------------


def rewrite_segments(segments: Sequence[SegmentRecord], speakers: Mapping[str, str] = NO_NAMES) -> list[Segment]:
    """What the summarizer sees: cleaned text where there is some, empty finals left out, who
    said each (a name from `speakers` {label: name}, else the label).
    Segments go by their number in the meeting (seq), the number transcripts show, so the
    model cites `[#3]` for the line a reader sees as #3."""
    return [Segment(s.seq, s.start_s, s.end_s, s.display_text, s.channel, shown_speaker(s.speaker, speakers) or None)
            for s in segments if s.text.strip()]


def rewrite_notes(notes: Sequence[NoteRecord]) -> list[Note]:
    """The person's own notes as the summarizer takes them: their emphasis, never cited."""
    return [Note(n.t_s, n.text) for n in notes if n.text.strip()]


def clean_session(store: SessionStore, session_id: int, backend: RewriteBackend) -> int:
    """Clean every final of a meeting not cleaned yet (raw text kept); returns how many."""
    todo = [seg for seg in store.uncleaned_segments(session_id) if seg.text.strip()]
    if todo:
        cleaned = backend.cleanup(rewrite_segments(todo))
        store.set_clean_text({seg.id: text for seg, text in zip(todo, cleaned)})
    return len(todo)


def meeting_fields(session: SessionRecord) -> dict[str, object]:
    return {"title": session.title, "date": session.started_at.astimezone().strftime("%Y-%m-%d"),
            "duration": duration_text(session.duration_s), "language": session.language or ""}


def check_transcript(store: SessionStore, session_id: int) -> list[SegmentRecord]:
    """The meeting's segments; RewriteError when there is nothing to summarize."""
    segments = store.segments(session_id)
    if not any(seg.text.strip() for seg in segments):
        raise RewriteError(f"meeting {session_id} has no transcript to summarize")
    return segments


@dataclass(frozen=True)
class StoredSummary:
    record: SummaryRecord
    result: SummaryResult


def summarize_session(store: SessionStore, session_id: int, backend: RewriteBackend,
                      template: str | Template | None = None,
                      on_text: Callable[[str], None] = lambda text: None) -> StoredSummary:
    """Write a summary of a stored meeting (with the person's own notes as their emphasis)
    and store it. `on_text` gets the text so far after
    each streamed piece (checked as it streams: the last text is what is stored). Raises RewriteError (empty transcript, backend failure) and
    StoreError; nothing is stored unless the whole summary was written."""
    session = store.get_session(session_id)
    segments = check_transcript(store, session_id)
    summarizer = Summarizer(backend, template, meeting=meeting_fields(session))
    text = ""
    named = rewrite_segments(segments, store.speaker_names(session_id))
    for piece in summarizer.stream(named, rewrite_notes(store.notes(session_id))):
        if piece:
            text += piece
            on_text(text)
    result = summarizer.result
    caps = backend.capabilities
    record = store.add_summary(session_id, caps.backend, caps.model, result.markdown,
                               citations=[Citation(b, tuple(ids)) for b, ids in result.citations])
    return StoredSummary(record, result)


def removed_citations_note(count: int) -> str:
    return f"removed {count} citation(s) to segments that do not exist" if count else ""


__all__ = [
    "StoredSummary",
    "check_transcript",
    "duration_text",
    "export_name",
    "export_session",
    "meeting_fields",
    "os_error_text",
    "removed_citations_note",
    "rewrite_notes",
    "rewrite_segments",
    "slug",
    "summarize_session",
    "write_text_atomic",
]
