"""Every past meeting, newest first: open, rename, delete (after a question), export, summarize."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from notetaker.inert import inert
from notetaker.summary import duration_text, export_session, os_error_text
from notetaker.tui.deps import AppDeps
from notetaker.tui.screens.help import KeyCommands
from storage import SessionRecord, StoreError

EMPTY_TEXT = ("No meetings yet.\n\n`notetaker record` records one from the microphone; "
              "`notetaker transcribe FILE` makes one from a recording.")


def local_time(session: SessionRecord) -> str:
    return session.started_at.astimezone().strftime("%Y-%m-%d %H:%M")


def session_length(session: SessionRecord) -> float | None:
    if session.duration_s is not None:
        return session.duration_s
    if session.ended_at is not None:
        return max(0.0, (session.ended_at - session.started_at).total_seconds())
    return None


def status_text(status: str) -> Text:
    """Interrupted meetings stand out; a meeting still recording is marked as such."""
    if status == "interrupted":
        return Text(" INTERRUPTED ", style="bold white on red")
    if status == "recording":
        return Text("● recording", style="bold yellow")
    return Text(status)


def engine_text(session: SessionRecord) -> str:
    return f"{session.engine or '-'}/{session.model or '-'}"


class SessionActions:
    """Keys a meeting has wherever it is shown: rename, export, summarize.

    The screen provides `deps`, `selected_session_id()` and `session_changed()`."""

    deps: AppDeps

    def selected_session_id(self) -> int | None:
        raise NotImplementedError

    def session_changed(self, session_id: int) -> None:
        """Show the store's state of a meeting again (after a rename, say)."""

    def action_rename(self) -> None:
        from notetaker.tui.screens.dialogs import TextPrompt

        sid = self.selected_session_id()
        if sid is None:
            return
        try:
            current = self.deps.store.get_session(sid).title
        except StoreError as e:
            self.notify(str(e), severity="error")  # type: ignore[attr-defined]
            return

        def done(title: str | None) -> None:
            if not title or title == current:
                return
            try:
                self.deps.store.rename_session(sid, title)
            except StoreError as e:
                self.notify(str(e), severity="error")  # type: ignore[attr-defined]
                return
            self.notify(f"renamed meeting {sid} to “{title}”")  # type: ignore[attr-defined]
            self.session_changed(sid)

        self.app.push_screen(TextPrompt("Rename meeting", current), done)  # type: ignore[attr-defined]

    def action_export(self) -> None:
        sid = self.selected_session_id()
        if sid is None:
            return
        try:
            path = export_session(self.deps.store, sid, self.deps.export_dir)
        except StoreError as e:
            self.notify(str(e), severity="error")  # type: ignore[attr-defined]
        except OSError as e:
            self.notify(f"cannot export to {self.deps.export_dir}: {os_error_text(e)}",  # type: ignore[attr-defined]
                        severity="error")
        else:
            self.notify(f"exported {path}")  # type: ignore[attr-defined]

    def action_summarize(self) -> None:
        from notetaker.tui.screens.summary import SummaryScreen

        sid = self.selected_session_id()
        if sid is not None:
            self.app.push_screen(SummaryScreen(self.deps, sid))  # type: ignore[attr-defined]


class SessionsScreen(SessionActions, Screen):
    COMMANDS: ClassVar[set] = {KeyCommands}
    CSS = """
    SessionsScreen #sessions { height: 1fr; }
    SessionsScreen #empty { padding: 2 4; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", priority=True),
        Binding("t", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export"),
        Binding("s", "summarize", "Summarize"),
        Binding("R", "recover", "Recover"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps
        self.sub_title = "Meetings"
        self.sessions: list[SessionRecord] = []

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable = DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        table.add_column("ID", key="id")
        table.add_column("Title", key="title")
        table.add_column("Started", key="started")
        table.add_column("Length", key="length")
        table.add_column("Engine", key="engine")
        table.add_column("Status", key="status")
        yield table
        yield Static(EMPTY_TEXT, id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sessions", DataTable).focus()
        self._offer_recovery()

    def recoverable(self) -> list:
        """Interrupted meetings whose spooled audio was not all transcribed."""
        if self.deps.spool_dir is None:
            return []
        from notetaker.recovery import find_recoverable

        try:
            return [r for r in find_recoverable(self.deps.store, self.deps.spool_dir)
                    if r.recoverable and r.after_last_final_s > 0.5]
        except (StoreError, OSError):
            return []

    def _offer_recovery(self) -> None:
        todo = self.recoverable()
        if todo:
            n = len(todo)
            self.notify(f"{n} interrupted meeting{'s' if n > 1 else ''} left audio that was not transcribed: "
                        "press R to recover (the selected one, or all)", timeout=15)

    def on_screen_resume(self) -> None:
        self.reload()  # first shown, or back from elsewhere: renamed, summarized or recorded meanwhile

    # -- the table --------------------------------------------------------------------------
    def reload(self) -> None:
        table = self.query_one("#sessions", DataTable)
        keep = self.selected_session_id()
        row = table.cursor_row
        try:
            self.sessions = self.deps.store.list_sessions()
        except StoreError as e:
            self.notify(str(e), severity="error")
            return
        table.clear()
        for s in self.sessions:
            length = session_length(s)
            table.add_row(
                Text(str(s.id), justify="right"),
                Text(inert(s.title or "Untitled"), style="bold" if s.status == "interrupted" else ""),
                local_time(s),
                Text(duration_text(length), justify="right"),
                engine_text(s),
                status_text(s.status),
                key=str(s.id),
            )
        ids = [s.id for s in self.sessions]
        if keep in ids:
            table.move_cursor(row=ids.index(keep))
        elif ids:
            table.move_cursor(row=min(row, len(ids) - 1))
        table.display = bool(ids)
        self.query_one("#empty").display = not ids
        self.refresh_bindings()

    def selected_session_id(self) -> int | None:
        table = self.query_one("#sessions", DataTable)
        if not self.sessions or table.row_count == 0:
            return None
        row = min(max(table.cursor_row, 0), table.row_count - 1)
        return int(table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)

    def session_changed(self, session_id: int) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys that act on a meeting are hidden while there is none.
        if action in ("open", "rename", "delete", "export", "summarize", "recover"):
            return bool(self.sessions)
        return True

    # -- keys ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#sessions")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from notetaker.tui.screens.meeting import MeetingScreen

        sid = self.selected_session_id()
        if sid is not None:
            self.app.push_screen(MeetingScreen(self.deps, sid))

    def action_delete(self) -> None:
        from notetaker.tui.screens.dialogs import ConfirmDialog

        sid = self.selected_session_id()
        if sid is None:
            return
        session = next(s for s in self.sessions if s.id == sid)
        if session.status == "recording":
            self.notify(f"meeting {sid} is still recording; finish it first", severity="warning")
            return
        title = inert(session.title or "Untitled")

        def done(yes: bool | None) -> None:
            if not yes:
                return
            from notetaker.meetings import DeleteError, delete_meeting

            try:
                delete_meeting(self.deps.store, self.deps.spool_dir, sid)
            except (StoreError, DeleteError) as e:
                self.notify(str(e), severity="error")
            else:
                self.notify(f"deleted meeting {sid} “{title}”")
            self.reload()

        question = (f"Delete meeting {sid} “{title}” ({local_time(session)}) with its transcript, marks, "
                    "summaries and audio? This cannot be undone.")
        self.app.push_screen(ConfirmDialog(question, "Delete meeting?"), done)

    def action_recover(self) -> None:
        """Transcribe interrupted meetings' spooled audio into them (the selected one if it
        is such a meeting, else all), off the UI thread."""
        todo = self.recoverable()
        sid = self.selected_session_id()
        chosen = [r for r in todo if r.session.id == sid] or todo
        if not chosen:
            self.notify("no interrupted meeting has audio left to recover")
            return
        deps, app = self.deps, self.app
        ids = [r.session.id for r in chosen]
        self.notify(f"recovering meeting{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}…")

        def job() -> None:
            from asr.registry import load_engine

            from notetaker.recovery import RecoveryError, recover_session

            load = deps.engine_loader or (lambda name, model: load_engine(name, model))
            for r in chosen:
                def engine(s=r.session):
                    return load(s.engine, s.model)

                try:
                    result = recover_session(deps.store, deps.spool_dir, r.session.id, engine,
                                             keep_audio=deps.keep_audio)
                    text = f"meeting {r.session.id} recovered: {len(result.added)} more segments"
                    app.call_from_thread(app.notify, text)
                except Exception as e:  # one line per meeting; the others still run
                    why = str(e) if isinstance(e, RecoveryError) else f"{type(e).__name__}: {e}"
                    app.call_from_thread(app.notify, f"meeting {r.session.id}: {why}", severity="error")
            app.call_from_thread(self.reload)

        app.run_job(job, name="recover")

    def action_quit(self) -> None:
        recorder = getattr(self.app, "recorder", None)
        if recorder is not None and not recorder.finished:
            self.notify("a meeting is recording; finish it on its screen (q) first", severity="warning")
            return
        self.app.exit()
