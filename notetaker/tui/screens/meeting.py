"""One stored meeting: what it was, its marks, the person's own notes, its transcript (whose
lines the person can correct) and its latest summary; opened from the meetings list, a search
hit (scrolled to the hit) or a summary's citation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from notetaker.inert import inert
from notetaker.summary import duration_text
from notetaker.tui.corrections import CORRECTION_KEYS, Corrections
from notetaker.tui.deps import AppDeps
from notetaker.tui.dialogs import SpeakersDialog
from notetaker.tui.display import (EDITED_MARK, engine_text, linkify_citations, local_time, mark_line,
                                   segment_from_href, session_length, status_text)
from notetaker.tui.messages import PlaybackEnded
from notetaker.tui.palette import KeyCommands
from notetaker.tui.playback import LinePlayer
from notetaker.tui.session_screen import SessionScreen
from notetaker.tui.widgets.notes_pane import note_text
from storage import MarkRecord, SegmentRecord, SessionRecord, StoreError, SummaryRecord
from storage.export import clock, turn_voices, with_marks
from storage.speakers import NO_NAMES


def segment_line(seg: SegmentRecord, who: str = "") -> Text:
    """`[#n hh:mm:ss] who: text` (n: the number summaries cite; who: the speaker's name or
    label, where a turn starts), the person's correction or the cleaned text where there is
    one (a correction marked ✎); suspected hallucinations flagged."""
    line = Text(f"[#{seg.seq} {clock(seg.start_s)}] ", style="bold")
    if who:
        line.append(f"{inert(who)}: ", style="italic")
    line.append(inert(seg.display_text))
    if seg.edited:
        line.append(EDITED_MARK, style="dim")
    if seg.flags:
        line.append(f"  ({', '.join(seg.flags)})", style="italic yellow")
    return line


def playing_line(seg: SegmentRecord, who: str = "") -> Text:
    """The line whose audio is playing: marked, so it stands out wherever the cursor is."""
    return Text("▶ ", style="bold green") + segment_line(seg, who)


def with_voices(segments: list[SegmentRecord], marks: list[MarkRecord],
                names: Mapping[str, str] = NO_NAMES) -> list[tuple[SegmentRecord | MarkRecord, str]]:
    """The transcript in order, marks between the segments, each with the speaker shown at it
    (a name or label where a turn starts, else "")."""
    items = with_marks(segments, marks)
    return list(zip(items, turn_voices(items, names)))


def transcript_options(voiced: list[tuple[SegmentRecord | MarkRecord, str]]) -> list[Option]:
    """The lines of `with_voices` (option id: the segment id), each mark between the segments
    before the first that starts after it (disabled: the cursor passes over marks); a speaker's
    name starts each of their turns, as in the exports."""
    return [Option(mark_line(item), id=f"mark-{item.id}", disabled=True) if isinstance(item, MarkRecord)
            else Option(segment_line(item, who), id=str(item.id)) for item, who in voiced]


def info_line(session: SessionRecord) -> Text:
    line = Text(inert(session.title or "Untitled"), style="bold")
    line.append(f"  ·  {local_time(session)}  ·  {duration_text(session_length(session))}  ·  ")
    line.append_text(status_text(session.status))
    line.append(f"  ·  {engine_text(session)}  ·  meeting {session.id}", style="dim")
    return line


class MeetingScreen(Corrections, SessionScreen):
    COMMANDS: ClassVar[set] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "summarize", "Summarize"),
        Binding("e", "export", "Export"),
        Binding("t", "rename", "Rename", show=False),
        Binding("p", "play", "Play"),
        Binding("space", "stop_playing", "Stop playing", show=False),
        Binding("S", "speakers", "Speakers"),
        *CORRECTION_KEYS,
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, deps: AppDeps, session_id: int, focus_segment_id: int | None = None) -> None:
        super().__init__(deps)
        self.session_id = session_id
        self.focus_segment_id = focus_segment_id
        self.session: SessionRecord | None = None
        self.segments: list[SegmentRecord] = []
        self.summary: SummaryRecord | None = None
        self._index: dict[int, int] = {}  # segment id → option index
        self._ids: dict[int, int] = {}  # segment number (seq, what citations name) → segment id
        self.playback = LinePlayer(self, deps)
        self._marked: set[str] = set()  # option ids shown as playing
        self._who: dict[int, str] = {}  # segment id → the speaker shown at it (a turn's first line)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="meeting-info")
        yield Static(id="marks")
        with VerticalScroll(id="meeting-notes"):
            yield Static(id="meeting-notes-text")
        yield OptionList(id="transcript")
        with VerticalScroll(id="summary-pane"):
            yield Markdown(id="meeting-summary", open_links=False)
        yield Footer()

    async def on_screen_resume(self) -> None:
        first = self.session is None
        await self.load()  # first shown, or back from elsewhere: renamed or summarized meanwhile
        if first:
            self.query_one("#transcript", OptionList).focus()
            if self.focus_segment_id is not None:
                # After the first layout, when the list knows its height and can scroll.
                self.call_after_refresh(self.scroll_to_segment, self.focus_segment_id)

    async def load(self) -> None:
        store = self.deps.store
        try:
            self.session = store.get_session(self.session_id)
            self.segments = store.segments(self.session_id)
            marks = store.marks(self.session_id)
            notes = store.notes(self.session_id)
            names = store.speaker_names(self.session_id)
            self.summary = store.latest_summary(self.session_id)
        except StoreError as e:
            self.notify(str(e), severity="error")
            self.query_one("#meeting-info", Static).update(Text(str(e), style="bold red"))
            return
        self.sub_title = inert(self.session.title or "Untitled")
        self.query_one("#meeting-info", Static).update(info_line(self.session))
        marks_widget = self.query_one("#marks", Static)
        marks_widget.update(Text("\n").join(mark_line(m) for m in marks))
        marks_widget.display = bool(marks)
        shown = Text()
        shown.append("Your notes\n", style="bold")
        shown.append_text(Text("\n").join(note_text(n) for n in notes))
        self.query_one("#meeting-notes-text", Static).update(shown)
        self.query_one("#meeting-notes").display = bool(notes)

        transcript = self.query_one("#transcript", OptionList)
        keep = transcript.highlighted
        transcript.clear_options()
        voiced = with_voices(self.segments, marks, names)
        options = transcript_options(voiced)
        self._who = {item.id: who for item, who in voiced if isinstance(item, SegmentRecord)}
        self._index = {int(o.id): i for i, o in enumerate(options) if o.id and o.id.isdigit()}
        self._ids = {seg.seq: seg.id for seg in self.segments}
        transcript.add_options(options)
        if not self.segments:
            transcript.add_option(Option(Text("(no transcript)", style="dim italic"), disabled=True))
        elif keep is not None:
            transcript.highlighted = min(keep, len(options) - 1)
        self._show_playing(self.playback.segment_id)

        pane = self.query_one("#summary-pane")
        pane.display = self.summary is not None
        if self.summary is not None:
            s = self.summary
            head = f"## Summary\n\n*{s.backend or '-'}/{s.model or '-'}, " \
                   f"{s.created_at.astimezone():%Y-%m-%d %H:%M}*\n\n"
            await self.query_one("#meeting-summary", Markdown).update(head + linkify_citations(s.markdown))

    # -- segments ---------------------------------------------------------------------------
    def scroll_to_segment(self, segment_id: int) -> bool:
        """Highlight a segment and bring it into view; False when it is not in this meeting."""
        index = self._index.get(segment_id)
        if index is None:
            self.notify(f"segment {segment_id} is not in this meeting", severity="warning")
            return False
        transcript = self.query_one("#transcript", OptionList)
        transcript.highlighted = index
        transcript.scroll_to_highlight(top=False)
        transcript.focus()
        return True

    @property
    def highlighted_segment_id(self) -> int | None:
        transcript = self.query_one("#transcript", OptionList)
        if transcript.highlighted is None or not self.segments:
            return None
        option_id = transcript.get_option_at_index(transcript.highlighted).id
        return int(option_id) if option_id and option_id.isdigit() else None

    # -- playback -------------------------------------------------------------------------------
    def action_play(self) -> None:
        seg = next((s for s in self.segments if s.id == self.highlighted_segment_id), None)
        if seg is not None and self.playback.play(seg):
            self._show_playing(seg.id)

    def action_stop_playing(self) -> None:
        self.playback.stop()

    @on(PlaybackEnded)
    def _played(self, m: PlaybackEnded) -> None:
        if self.playback.ended(m):
            self._show_playing(None)

    def _show_playing(self, segment_id: int | None) -> None:
        """Mark the line playing (the `playing` class on the transcript while one plays)."""
        transcript = self.query_one("#transcript", OptionList)
        transcript.set_class(segment_id is not None, "playing")
        for seg in self.segments:
            if str(seg.id) in self._marked or seg.id == segment_id:
                who = self._who.get(seg.id, "")
                line = playing_line(seg, who) if seg.id == segment_id else segment_line(seg, who)
                transcript.replace_option_prompt(str(seg.id), line)
        self._marked = {str(segment_id)} if segment_id is not None else set()

    def on_screen_suspend(self) -> None:
        self.playback.stop()

    def on_unmount(self) -> None:
        self.playback.stop()

    # -- corrections (notetaker/tui/corrections.py) ---------------------------------------------
    def editable_lines(self) -> tuple[list[SegmentRecord], int]:
        at = next((i for i, seg in enumerate(self.segments) if seg.id == self.highlighted_segment_id), 0)
        return self.segments, at

    def show_corrected(self, segments: list[SegmentRecord]) -> None:
        self.call_later(self._reload_at, segments[0].id if len(segments) == 1 else None)

    async def _reload_at(self, segment_id: int | None) -> None:
        await self.load()
        if segment_id is not None:  # an edit: on the line edited (the dialog may have moved to it)
            self.scroll_to_segment(segment_id)

    @on(Markdown.LinkClicked, "#meeting-summary")
    def _link(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        number = segment_from_href(event.href)
        if number is None:
            return
        if number in self._ids:
            self.scroll_to_segment(self._ids[number])
        else:
            self.notify(f"segment #{number} is not in this meeting", severity="warning")

    # -- keys -----------------------------------------------------------------------------------
    def selected_session_id(self) -> int | None:
        return self.session_id if self.session is not None else None

    def session_changed(self, session_id: int) -> None:
        self.call_later(self.load)

    def action_speakers(self) -> None:
        """Name the meeting's speakers or merge two; the transcript shows the names at once."""
        if self.session is not None:
            self.app.push_screen(SpeakersDialog(self.deps.store, self.session_id, self.deps.find_speakers),
                                 lambda changed: self.call_later(self.load) if changed else None)

    def action_back(self) -> None:
        self.dismiss()
