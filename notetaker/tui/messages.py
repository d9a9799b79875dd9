"""Every message of the TUI, as dataclasses.

Three kinds: what model work reports from its thread (the recorder's events, a summary being
written, a search answered), and what a screen asks the app for (navigation: screens never
open other screens themselves). Messages that arrive faster than a frame (a partial, the
progress, the summary so far) say so in `can_replace`: Textual then hands the screen only the
newest of a run of them still waiting in its queue, so a slow frame never queues stale text.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from notetaker.recorder import Progress, RecordingResult
from notetaker.summary import StoredSummary
from notetaker.tui.deps import MeetingChoice
from storage import MeetingHits, NoteRecord, SearchHit, SegmentRecord, TextChange

# -- the live meeting: the recorder's events, from its compute thread -------------------------


@dataclass
class Started(Message):
    session_id: int
    engine_label: str


@dataclass
class FinalAdded(Message):
    segment: SegmentRecord


@dataclass
class PartialChanged(Message):
    """The newest partial; a newer one replaces one still waiting to be shown."""

    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PartialChanged)


@dataclass
class ProgressChanged(Message):
    """The newest progress; a newer one replaces one still waiting to be shown."""

    progress: Progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressChanged)


@dataclass
class Cleaned(Message):
    segments: list[SegmentRecord]


@dataclass
class Notice(Message):
    text: str
    severity: str = "information"


@dataclass
class RewriteOff(Message):
    """Cleanup is off for this meeting (the backend failed to load, or failed mid-meeting)."""
    reason: str


class Relabelled(Message):
    """The meeting's speaker labels changed in the store (the end-of-meeting pass)."""


@dataclass
class NoteSaved(Message):
    """A line of the person's own notes is in the store (saved off the UI thread)."""

    note: NoteRecord


@dataclass
class Corrected(Message):
    """Lines the person corrected (an edit, a replace, an undo) are in the store, saved off the
    UI thread: `segments` as they now are, `text` what to tell them (`severity` "error": not saved)."""

    changes: list[TextChange]
    segments: list[SegmentRecord]
    text: str
    severity: str = "information"


@dataclass
class Finished(Message):
    result: RecordingResult | None
    error: str | None = None


# -- a summary being written, from a worker or the compute thread ------------------------------


@dataclass
class SummaryStreamed(Message):
    """The summary so far; a newer one replaces one still waiting to be drawn."""

    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SummaryStreamed)


@dataclass
class SummaryDone(Message):
    summary: StoredSummary


@dataclass
class SummaryFailed(Message):
    error: str


# -- playback, from the player's thread ---------------------------------------------------------


@dataclass
class PlaybackEnded(Message):
    """A line's audio stopped playing: at its end, stopped, or `error` (one line) cut it short.
    `player` says which playback (a newer one may already be playing)."""

    segment_id: int
    player: object
    error: str | None = None


# -- search, from its worker -------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """One row of the results: a meeting (`hit` None) or one of its hits, listed under it."""

    meeting: MeetingHits
    started: str  # the meeting's local start time
    hit: SearchHit | None = None


@dataclass
class SearchAnswered(Message):
    query: str
    results: list[SearchResult]
    error: str | None


# -- navigation: what a screen asks the app to show ---------------------------------------------


@dataclass
class OpenMeeting(Message):
    """Show a stored meeting, scrolled to a segment when one is given."""

    session_id: int
    focus_segment_id: int | None = None


@dataclass
class OpenSummary(Message):
    """Show a meeting's summary (writing one with `backend_name` when none is stored)."""

    session_id: int
    backend_name: str | None = None


@dataclass
class StartMeeting(Message):
    """Record a new meeting as chosen in the new-meeting dialog, in the live view."""

    choice: MeetingChoice


@dataclass
class LiveEnded(Message):
    """The live meeting was ended with `q` and is saved (result None: it never started, or
    `error` says what stopped it): leave its screen."""

    result: RecordingResult | None
    error: str | None = None


@dataclass
class ShowSegment(Message):
    """Show a cited segment: in the live view of its meeting when that is the screen below the
    asking one, else in the meeting's stored transcript."""

    session_id: int
    segment_id: int
