"""The base of every screen that shows stored meetings: the keys a meeting has wherever it is
shown (rename, export, summarize)."""

from __future__ import annotations

from textual.screen import Screen

from notetaker.summary import export_session, os_error_text
from notetaker.tui.deps import AppDeps
from notetaker.tui.dialogs import TextPrompt
from notetaker.tui.messages import OpenSummary
from storage import StoreError


class SessionScreen(Screen):
    """A screen over the store with one meeting selected (or none).

    Subclasses say which meeting is selected (`selected_session_id`) and how to show it again
    after it changed (`session_changed`); their BINDINGS name the actions they offer."""

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps

    def selected_session_id(self) -> int | None:
        raise NotImplementedError

    def session_changed(self, session_id: int) -> None:
        """Show the store's state of a meeting again (after a rename, say)."""

    def action_rename(self) -> None:
        sid = self.selected_session_id()
        if sid is None:
            return
        try:
            current = self.deps.store.get_session(sid).title
        except StoreError as e:
            self.notify(str(e), severity="error")
            return

        def done(title: str | None) -> None:
            if not title or title == current:
                return
            try:
                self.deps.store.rename_session(sid, title)
            except StoreError as e:
                self.notify(str(e), severity="error")
                return
            self.notify(f"renamed meeting {sid} to “{title}”")
            self.session_changed(sid)

        self.app.push_screen(TextPrompt("Rename meeting", current), done)

    def action_export(self) -> None:
        sid = self.selected_session_id()
        if sid is None:
            return
        try:
            path = export_session(self.deps.store, sid, self.deps.export_dir)
        except StoreError as e:
            self.notify(str(e), severity="error")
        except OSError as e:
            self.notify(f"cannot export to {self.deps.export_dir}: {os_error_text(e)}", severity="error")
        else:
            self.notify(f"exported {path}")

    def action_summarize(self) -> None:
        sid = self.selected_session_id()
        if sid is not None:
            self.app.post_message(OpenSummary(sid))
