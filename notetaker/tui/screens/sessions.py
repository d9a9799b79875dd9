"""Every past meeting, newest first: open, rename, delete (after a question), export, summarize;
and a new meeting started from here (`n`)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Header, Static

from notetaker.inert import inert
from notetaker.errors import one_line
from notetaker.summary import duration_text
from notetaker.tui.deps import AppDeps
from notetaker.tui.dialogs import ConfirmDialog
from notetaker.tui.display import engine_text, local_time, session_length, status_text
from notetaker.tui.messages import OpenMeeting, StartMeeting
from notetaker.tui.new_meeting import NewMeetingDialog
from notetaker.tui.palette import KeyCommands
from notetaker.tui.session_screen import SessionScreen
from storage import SessionRecord, StoreError

EMPTY_TEXT = ("No meetings yet.\n\n`notetaker record` records one from the microphone; "
              "`notetaker transcribe FILE` makes one from a recording.")


class SessionsScreen(SessionScreen):
    COMMANDS: ClassVar[set] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", priority=True),
        Binding("n", "new_meeting", "New meeting"),
        Binding("t", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export"),
        Binding("s", "summarize", "Summarize"),
        Binding("R", "recover", "Recover"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, deps: AppDeps) -> None:
        super().__init__(deps)
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
        if action == "new_meeting":  # only where the app can start one (not in tests without it)
            return self.deps.meeting_setup is not None and self.deps.prepare_meeting is not None
        return True

    # -- keys ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#sessions")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        sid = self.selected_session_id()
        if sid is not None:
            self.app.post_message(OpenMeeting(sid))

    def action_delete(self) -> None:
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
                    labeller = deps.recovery_labeller(deps.store, r.session.id) if deps.recovery_labeller else None
                    result = recover_session(deps.store, deps.spool_dir, r.session.id, engine,
                                             keep_audio=deps.keep_audio, vocabulary=deps.options.vocabulary,
                                             label_speakers=labeller)
                    text = f"meeting {r.session.id} recovered: {len(result.added)} more segments"
                    if result.speakers_note:
                        text += f"; {result.speakers_note}"
                    app.call_from_thread(app.notify, text)
                except Exception as e:  # one line per meeting; the others still run
                    why = str(e) if isinstance(e, RecoveryError) else f"{type(e).__name__}: {one_line(e)}"
                    app.call_from_thread(app.notify, f"meeting {r.session.id}: {why}", severity="error")
            app.call_from_thread(self.reload)

        app.run_job(job, name="recover")

    def action_new_meeting(self) -> None:
        """Ask for the title, input and speech model, then record in the live view; `q`
        there comes back here."""
        recorder = getattr(self.app, "recorder", None)
        if recorder is not None and not recorder.finished:
            self.notify("a meeting is recording already", severity="warning")
            return
        if self.deps.meeting_setup is not None:
            self._ask_for_meeting(self.deps.meeting_setup)

    @work(thread=True, exclusive=True, group="new-meeting")
    def _ask_for_meeting(self, meeting_setup) -> None:
        """Listing the devices (pactl can take seconds) and the models happens here, off the
        UI thread, which keeps taking keys meanwhile."""
        try:
            setup = meeting_setup()
        except Exception as e:  # listing devices or models: one line, the list stays usable
            self.app.call_from_thread(self.notify, f"cannot start a meeting: {one_line(e)}", severity="error")
            return

        def done(choice) -> None:
            if choice is not None:
                self.app.post_message(StartMeeting(choice))

        self.app.call_from_thread(self.app.push_screen, NewMeetingDialog(setup), done)

    def action_quit(self) -> None:
        recorder = getattr(self.app, "recorder", None)
        if recorder is not None and not recorder.finished:
            self.notify("a meeting is recording; finish it on its screen (q) first", severity="warning")
            return
        self.app.exit()
