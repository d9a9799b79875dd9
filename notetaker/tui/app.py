"""The application: which screen is shown, global keys, and where model work runs.

Screens never open one another: they post a navigation message (messages.py) and the app,
which alone imports the screens, shows what was asked for. The look is in app.tcss.

Model work (ASR steps, cleanup, summaries, loading a rewrite backend) never runs on the UI
thread. While a meeting is live it goes to the recorder's compute thread (`Recorder.submit`),
which owns MLX; otherwise to one worker thread at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from notetaker.errors import one_line
from notetaker.tui.deps import AppDeps
from notetaker.tui.dialogs import ConfirmDialog, EditDialog, MarkDialog, ReplaceDialog, TextPrompt
from notetaker.tui.messages import LiveEnded, OpenMeeting, OpenSummary, ShowSegment, StartMeeting
from notetaker.tui.new_meeting import NewMeetingDialog
from notetaker.tui.screens.help import HelpScreen
from notetaker.tui.screens.live import LiveScreen
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.screens.search import SearchScreen
from notetaker.tui.screens.sessions import SessionsScreen
from notetaker.tui.screens.summary import SummaryScreen
from notetaker.tui.widgets.notes_pane import NotesPane


class NotetakerApp(App):
    TITLE = "notetaker"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, deps: AppDeps, live: bool = False):
        super().__init__()
        self.deps = deps
        self.start_live = live
        self.recorder = None  # the live meeting's Recorder, while one runs
        self._job_lock = threading.Lock()

    def on_mount(self) -> None:
        self.push_screen(SessionsScreen(self.deps))
        if self.start_live:
            self.push_screen(LiveScreen(self.deps))

    def run_job(self, job: Callable[[], None], name: str = "job") -> None:
        """Run model work off the UI thread: on the live meeting's compute thread, or on a
        worker (one job at a time, so MLX is only ever used by one thread)."""
        recorder = self.recorder
        if recorder is not None and not recorder.finished:
            recorder.submit(job)
            return

        def locked() -> None:
            with self._job_lock:
                job()

        self.run_worker(locked, thread=True, name=name, group="model", exclusive=False)

    # -- navigation: what screens ask for ----------------------------------------------------
    @on(OpenMeeting)
    def _open_meeting(self, m: OpenMeeting) -> None:
        self.push_screen(MeetingScreen(self.deps, m.session_id, focus_segment_id=m.focus_segment_id))

    @on(OpenSummary)
    def _open_summary(self, m: OpenSummary) -> None:
        self.push_screen(SummaryScreen(self.deps, m.session_id, m.backend_name))

    @on(StartMeeting)
    def _start_meeting(self, m: StartMeeting) -> None:
        if self.recorder is not None and not self.recorder.finished:
            self.notify("a meeting is already recording", severity="warning")
            return
        if self.deps.prepare_meeting is not None:
            self._prepare_meeting(self.deps.prepare_meeting, m.choice)

    @work(thread=True, exclusive=True, group="new-meeting")
    def _prepare_meeting(self, prepare_meeting, choice) -> None:
        """The checks and downloads `notetaker record` runs before a meeting, off the UI
        thread; the live view opens once they pass, and a failure is one line."""
        try:
            deps = prepare_meeting(choice)
        except Exception as e:
            self.call_from_thread(self.notify, f"cannot start the meeting: {one_line(e)}", severity="error")
            return
        self.call_from_thread(self.push_screen, LiveScreen(deps))

    @on(LiveEnded)
    def _live_ended(self, m: LiveEnded) -> None:
        """`notetaker record` ends with its meeting; a meeting started here goes back to the
        meetings list, where it now shows."""
        if self.start_live:
            self.exit(m.result)
            return
        live = next((s for s in self.screen_stack if isinstance(s, LiveScreen)), None)
        if live is None:
            return
        while self.screen is not live:
            self.pop_screen()
        self.pop_screen()
        if m.result is not None:
            self.notify(f"meeting {m.result.session_id} saved: {m.result.finals} segments")

    @on(ShowSegment)
    def _show_segment(self, m: ShowSegment) -> None:
        """In the live meeting's view when the summary asking is of the meeting being recorded
        (the screen right below it), else in the meeting's stored transcript."""
        stack = self.screen_stack
        below = stack[-2] if len(stack) > 1 and isinstance(stack[-1], SummaryScreen) else None
        if isinstance(below, LiveScreen) and below.session_id == m.session_id:
            self.screen.dismiss()
            below.scroll_to_segment(m.segment_id)
            return
        self.push_screen(MeetingScreen(self.deps, m.session_id, focus_segment_id=m.segment_id))

    # -- keys ----------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """ctrl+q (or the palette's quit) during a meeting finishes it safely first."""
        live = next((s for s in self.screen_stack if isinstance(s, LiveScreen)), None)
        if live is not None and self.recorder is not None and not self.recorder.finished:
            live.finish("quit")
            return
        self.exit()

    def action_search(self) -> None:
        if not isinstance(self.screen, (SearchScreen, ModalScreen)):
            self.push_screen(SearchScreen(self.deps))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_sections()))


def key_sections() -> list[tuple[str, type]]:
    """(heading, class) for the app and each screen, in the order a person meets them."""
    return [("Everywhere", NotetakerApp), ("Meetings", SessionsScreen), ("Live meeting", LiveScreen),
            ("Notes (live meeting)", NotesPane), ("Meeting", MeetingScreen), ("Search", SearchScreen), ("Summary", SummaryScreen),
            ("Help", HelpScreen), ("Yes/no question", ConfirmDialog), ("Text prompt", TextPrompt),
            ("Mark", MarkDialog), ("Edit line", EditDialog), ("Find and replace", ReplaceDialog),
            ("New meeting", NewMeetingDialog)]


def make_app(deps: AppDeps, live: bool = False) -> NotetakerApp:
    """The app over a store, an engine factory and a clock (tests pass scripted ones)."""
    return NotetakerApp(deps, live=live)
