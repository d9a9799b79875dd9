"""The live meeting's transcript: finals with their times as they come, cleaned text put in
place when it arrives, and the partial (dim, never stored) below them. It follows new finals
unless the person scrolled up."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from notetaker.inert import inert
from storage import SegmentRecord
from storage.export import clock


def final_text(seg: SegmentRecord) -> Text:
    text = Text(f"[#{seg.seq} {clock(seg.start_s)}] ", style="bold")  # #n: what summaries cite
    if seg.channel:
        text.append(f"{seg.channel} › ", style="bold cyan" if seg.channel == "mic" else "bold magenta")
    text.append(inert(seg.display_text))
    if seg.flags:
        text.append(f"  ({', '.join(seg.flags)})", style="italic")
    return text


class LiveTranscript(VerticalScroll):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._finals: dict[int, Static] = {}  # segment id → its line

    def compose(self) -> ComposeResult:
        yield Static("", id="partial", classes="dim")

    def add_final(self, seg: SegmentRecord) -> None:
        widget = Static(final_text(seg), classes="final flagged" if seg.flags else "final")
        self._finals[seg.id] = widget
        self.mount(widget, before="#partial")

    def show_cleaned(self, segments: list[SegmentRecord]) -> None:
        for seg in segments:
            widget = self._finals.get(seg.id)
            if widget is not None:
                widget.update(final_text(seg))

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
