"""Correcting a transcript on screen, in the meeting view and the live view alike: edit a
line, undo the last correction, find and replace with a preview (storage/edits.py keeps the
heard text and logs each change for undo).

The store work runs on a worker thread (during a meeting the recorder writes too, and another
process may hold the database for a moment); its answer comes back as a `Corrected` message.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding

from notetaker.config import ConfigError
from notetaker.tui.dialogs import EditDialog, ReplaceDialog
from notetaker.tui.messages import Corrected
from storage import SegmentRecord, StoreError, TextChange

# In each screen's BINDINGS (Textual takes bindings only from widget classes, not mixins).
# `u` stays out of the footer, which is full: each correction's notice names it.
CORRECTION_KEYS = [
    Binding("c", "edit_line", "Edit"),
    Binding("u", "undo_edit", "Undo edit", show=False),
    Binding("f", "find_replace", "Replace"),
]


def _lines(n: int) -> str:
    return f"{n} line{'s' * (n != 1)}"


class Corrections:
    """For a Screen with `deps` and `session_id`: it says which lines may be edited and which
    is selected (`editable_lines`), and shows corrected segments (`show_corrected`)."""

    def editable_lines(self) -> tuple[list[SegmentRecord], int]:
        raise NotImplementedError

    def show_corrected(self, segments: list[SegmentRecord]) -> None:
        raise NotImplementedError

    def action_edit_line(self) -> None:
        lines, at = self.editable_lines()
        if self.session_id is None or not lines:
            return
        sid = self.session_id

        def done(answer: tuple[SegmentRecord, str] | None) -> None:
            if answer is not None:
                seg, text = answer
                self._correct(lambda store: _as_list(store.edit_segment(sid, seg.seq, text)),
                              lambda ch: f"edited #{ch[0].seq}; u undoes it" if ch else f"#{seg.seq} already reads so")

        self.app.push_screen(EditDialog(lines, at), done)

    def action_undo_edit(self) -> None:
        if self.session_id is not None:
            sid = self.session_id
            self._correct(lambda store: store.undo_last_edit(sid),
                          lambda ch: ("nothing to undo" if not ch else f"undid the change of #{ch[0].seq}"
                                      if len(ch) == 1 else f"undid the replace in {_lines(len(ch))}"))

    def action_find_replace(self) -> None:
        if self.session_id is None:
            return
        sid, store = self.session_id, self.deps.store

        add = self.deps.add_to_vocabulary
        dialog = ReplaceDialog(lambda find, new, case: store.preview_replace(find, new, sid, case),
                               f"meeting {sid}", offer_vocabulary=add is not None)

        def done(changes: list[TextChange] | None) -> None:
            if not changes:
                return
            term = dialog.replacement if dialog.add_to_vocabulary else None

            def say(applied: list[TextChange]) -> str:
                text = _replaced(applied, len(changes))
                if term is not None:  # the replace is saved whatever the vocabulary says
                    try:
                        add(term)
                        text += f"; “{' '.join(term.split())}” added to the vocabulary"
                    except ConfigError as e:
                        text += f"; not added to the vocabulary: {e}"
                return text

            self._correct(lambda st: st.apply_changes(changes), say)

        self.app.push_screen(dialog, done)

    def _correct(self, work: Callable[..., list[TextChange]], say: Callable[[list[TextChange]], str]) -> None:
        store = self.deps.store

        def run() -> None:
            try:
                changes = work(store)
                segments = [store.get_segment(c.segment_id) for c in changes]
            except StoreError as e:
                self.post_message(Corrected([], [], f"not saved: {e}", "error"))
                return
            self.post_message(Corrected(changes, segments, say(changes)))

        self.run_worker(run, thread=True, group="corrections", name="correct")

    def on_corrected(self, m: Corrected) -> None:
        m.stop()
        if m.segments:
            self.show_corrected(m.segments)
        self.notify(m.text, severity=m.severity)


def _as_list(change: TextChange | None) -> list[TextChange]:
    return [change] if change is not None else []


def _replaced(changes: list[TextChange], asked: int) -> str:
    skipped = asked - len(changes)
    return (f"replaced in {_lines(len(changes))}; u undoes it"
            + (f" ({_lines(skipped)} changed meanwhile, left as they are)" if skipped else ""))
