"""The person's own notes beside the live transcript: the lines saved so far, each with the
meeting time it was typed at, and a line to type the next one (Enter saves it).

Up and down walk back through the saved lines, as a shell's history does: the line picked is
shown in the field to be changed, Enter saves the change (emptied, the line is deleted), and
escape (or down past the last line) goes back to typing a new one. The pane only shows and
picks; the screen saves (`NoteEntered`)."""

from __future__ import annotations

import bisect

from rich.text import Text
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from notetaker.inert import inert
from storage import NoteRecord
from storage.export import clock

PLACEHOLDER = "a note (Enter saves it, ↑ edits one, Esc back to the transcript)"
EDITING = "editing the line at {at}: Enter saves it, emptied it is deleted, Esc keeps it"


def note_text(note: NoteRecord) -> Text:
    text = Text(f"[{clock(note.t_s)}] ", style="bold")
    text.append(inert(" ".join(note.text.split())))
    return text


class NotesPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "older", "Edit the line before", show=False),
        Binding("down", "newer", "Edit the line after (past the last: a new line)", show=False),
    ]

    @dataclass
    class NoteEntered(Message):
        """Enter in the field: a new line (`note` None), or the change of a saved line (`text`
        empty: delete it)."""

        text: str
        note: NoteRecord | None

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[tuple[float, int]] = []  # (t_s, id) of each shown line, in order
        self._notes: dict[int, NoteRecord] = {}
        self._draft = ""  # what was being typed when up was first pressed
        self.editing: NoteRecord | None = None

    def compose(self) -> ComposeResult:
        yield Static("Notes", classes="notes-title")
        yield VerticalScroll(id="notes-list")
        yield Input(placeholder=PLACEHOLDER, id="note-input")

    def add_note(self, note: NoteRecord) -> None:
        """Show a saved line in time order (saves finish in any order: each is its own job)."""
        key = (note.t_s, note.id)
        at = bisect.bisect(self._keys, key)
        self._keys.insert(at, key)
        self._notes[note.id] = note
        lines = self.query_one("#notes-list", VerticalScroll)
        widget = Static(note_text(note), classes="note", id=f"note-{note.id}")
        if at < len(lines.children):
            lines.mount(widget, before=at)
        else:
            lines.mount(widget)
        lines.scroll_end(animate=False)

    def change_note(self, note: NoteRecord) -> None:
        """Show a saved line's new text."""
        self._notes[note.id] = note
        self.query_one(f"#note-{note.id}", Static).update(note_text(note))

    def remove_note(self, note_id: int) -> None:
        self._keys = [k for k in self._keys if k[1] != note_id]
        self._notes.pop(note_id, None)
        for widget in self.query(f"#note-{note_id}"):
            widget.remove()

    @property
    def input(self) -> Input:
        return self.query_one("#note-input", Input)

    # -- picking a saved line to change --------------------------------------------------------
    def action_older(self) -> None:
        ids = [note_id for _, note_id in self._keys]
        if not ids:
            return
        if self.editing is None:
            self._draft = self.input.value
            self._pick(ids[-1])
        elif self.editing.id in ids and ids.index(self.editing.id) > 0:
            self._pick(ids[ids.index(self.editing.id) - 1])

    def action_newer(self) -> None:
        ids = [note_id for _, note_id in self._keys]
        if self.editing is None:
            return
        at = ids.index(self.editing.id) if self.editing.id in ids else len(ids) - 1
        if at + 1 < len(ids):
            self._pick(ids[at + 1])
        else:
            self.stop_editing(restore=True)

    def _pick(self, note_id: int) -> None:
        if self.editing is not None:
            self._mark(self.editing.id, False)
        self.editing = self._notes[note_id]
        self._mark(note_id, True)
        self.input.value = self.editing.text
        self.input.cursor_position = len(self.input.value)
        self.input.placeholder = EDITING.format(at=clock(self.editing.t_s))
        self.query_one(f"#note-{note_id}").scroll_visible(animate=False)

    def _mark(self, note_id: int, on_: bool) -> None:
        for widget in self.query(f"#note-{note_id}"):
            widget.set_class(on_, "editing")

    def stop_editing(self, restore: bool = False) -> bool:
        """Back to typing a new line (with what was being typed, when `restore`); whether a
        line was being edited."""
        if self.editing is None:
            return False
        self._mark(self.editing.id, False)
        self.editing = None
        self.input.value = self._draft if restore else ""
        self.input.placeholder = PLACEHOLDER
        return True

    @on(Input.Submitted, "#note-input")
    def _entered(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        note = self.editing
        if note is None and not text:
            return
        if note is not None and text == note.text:  # unchanged: nothing to save
            self.stop_editing()
            return
        self.post_message(self.NoteEntered(text, note))
