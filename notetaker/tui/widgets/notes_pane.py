"""The person's own notes beside the live transcript: the lines saved so far, each with the
meeting time it was typed at, and a line to type the next one (Enter saves it)."""

from __future__ import annotations

import bisect

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from notetaker.inert import inert
from storage import NoteRecord
from storage.export import clock

PLACEHOLDER = "a note (Enter saves it, Esc back to the transcript)"


def note_text(note: NoteRecord) -> Text:
    text = Text(f"[{clock(note.t_s)}] ", style="bold")
    text.append(inert(" ".join(note.text.split())))
    return text


class NotesPane(Vertical):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[tuple[float, int]] = []  # (t_s, id) of each shown line, in order

    def compose(self) -> ComposeResult:
        yield Static("Notes", classes="notes-title")
        yield VerticalScroll(id="notes-list")
        yield Input(placeholder=PLACEHOLDER, id="note-input")

    def add_note(self, note: NoteRecord) -> None:
        """Show a saved line in time order (saves finish in any order: each is its own job)."""
        key = (note.t_s, note.id)
        at = bisect.bisect(self._keys, key)
        self._keys.insert(at, key)
        lines = self.query_one("#notes-list", VerticalScroll)
        widget = Static(note_text(note), classes="note")
        if at < len(lines.children):
            lines.mount(widget, before=at)
        else:
            lines.mount(widget)
        lines.scroll_end(animate=False)

    @property
    def input(self) -> Input:
        return self.query_one("#note-input", Input)
