"""The live meeting's transcript: finals with their times as they come, marks between them at
their moment, cleaned text and the person's corrections put in place when they arrive, and the
partial (dim, never stored) below them. It fills from the top and follows new finals unless the
person scrolled up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from notetaker.inert import inert
from notetaker.tui.display import EDITED_MARK, mark_line
from storage import MarkRecord, SegmentRecord
from storage.export import clock
from storage.speakers import NO_NAMES, voice


def final_text(seg: SegmentRecord, names: Mapping[str, str] = NO_NAMES) -> Text:
    """`[#n hh:mm:ss] Anya (system) › text`: who speaks (a name from `names` {label: name},
    else the label, and the channel) coloured by channel."""
    text = Text(f"[#{seg.seq} {clock(seg.start_s)}] ", style="bold")  # #n: what summaries cite
    who = voice(seg, names)
    if who:
        text.append(f"{inert(who)} › ", style="bold magenta" if seg.channel == "system" else "bold cyan")
    text.append(inert(seg.display_text))
    if seg.edited:
        text.append(EDITED_MARK, style="dim")
    if seg.flags:
        text.append(f"  ({', '.join(seg.flags)})", style="italic")
    return text


class LiveTranscript(VerticalScroll):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._finals: dict[int, Static] = {}  # segment id → its line
        self._shown: dict[int, SegmentRecord] = {}  # segment id → what its line shows
        self.names: Mapping[str, str] = NO_NAMES  # {label: name} of the meeting's speakers
        self._lines: list[tuple[bool, float, Static]] = []  # (is a mark, time, line), as shown

    def compose(self) -> ComposeResult:
        yield Static("", id="partial", classes="dim")

    def add_final(self, seg: SegmentRecord) -> None:
        """At the end, but before a mark made after the moment it starts (its final can come
        a few seconds after the mark was made)."""
        widget = Static(final_text(seg, self.names), classes="final flagged" if seg.flags else "final")
        self._finals[seg.id] = widget
        self._shown[seg.id] = seg
        at = len(self._lines)
        while at > 0 and self._lines[at - 1][0] and self._lines[at - 1][1] > seg.start_s:
            at -= 1
        self._insert(at, (False, seg.start_s, widget))

    def add_mark(self, mark: MarkRecord) -> None:
        """Between the finals, before the first that starts after it."""
        widget = Static(mark_line(mark), classes="mark")
        at = next((i for i, (is_mark, t, _) in enumerate(self._lines) if not is_mark and t > mark.t_s),
                  len(self._lines))
        self._insert(at, (True, mark.t_s, widget))

    def _insert(self, at: int, line: tuple[bool, float, Static]) -> None:
        before = self._lines[at][2] if at < len(self._lines) else self.query_one("#partial")
        self._lines.insert(at, line)
        self.mount(line[2], before=before)
        self.call_after_refresh(self._follow)

    def _follow(self) -> None:
        # Anchored only once the lines overflow: an anchored view shorter than its content
        # would be drawn at the bottom of the screen rather than from the top.
        if not self.is_anchored and self.max_scroll_y > 0:
            self.anchor()

    def show_cleaned(self, segments: list[SegmentRecord]) -> None:
        # Only the cleanup is taken: a correction made since the recorder read the row stays.
        self.show_edited([replace(self._shown[s.id], clean_text=s.clean_text)
                          for s in segments if s.id in self._shown])

    def show_edited(self, segments: list[SegmentRecord]) -> None:
        """Lines corrected (or cleaned) in place: nothing moves, nothing is added."""
        for seg in segments:
            widget = self._finals.get(seg.id)
            if widget is not None:
                self._shown[seg.id] = seg
                widget.update(final_text(seg, self.names))

    def show_speakers(self, names: Mapping[str, str], segments: Iterable[SegmentRecord] = ()) -> None:
        """Speakers renamed or merged: every line shown says who speaks now (`segments`: the
        stored ones, whose labels a merge changed), and so will new ones."""
        self.names = dict(names)
        self._shown.update((seg.id, seg) for seg in segments if seg.id in self._shown)
        for seg_id, widget in self._finals.items():
            widget.update(final_text(self._shown[seg_id], self.names))

    def finals(self) -> list[SegmentRecord]:
        """The finals shown, in their order (their number)."""
        return sorted(self._shown.values(), key=lambda s: s.seq)

    def show_partial(self, text: str) -> None:
        self.query_one("#partial", Static).update(Text(text, style="dim italic"))

    def clear_partial(self) -> None:
        self.query_one("#partial", Static).update("")

    def scroll_to_segment(self, segment_id: int) -> bool:
        """Bring a final into view; False when it is not shown here."""
        widget = self._finals.get(segment_id)
        if widget is None:
            return False
        self.scroll_to_widget(widget)
        return True
