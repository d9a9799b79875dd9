"""The application: screens, global keys, and where model work runs.

Model work (ASR steps, cleanup, summaries, loading a rewrite backend) never runs on the UI
thread. While a meeting is live it goes to the recorder's compute thread (`Recorder.submit`),
which owns MLX; otherwise to one worker thread at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual.app import App
from textual.binding import Binding

from notetaker.tui.deps import AppDeps


class NotetakerApp(App):
    TITLE = "notetaker"
    CSS = """
    .dim { color: $text-muted; text-style: italic; }
    #status { dock: top; height: auto; max-height: 2; background: $boost; color: $text; padding: 0 1; }
    #transcript { height: 1fr; padding: 0 1; }
    .final { margin: 0 0 0 0; }
    .final.flagged { color: $warning; }
    .interrupted { color: $error; text-style: bold; }
    """
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
        from notetaker.tui.screens.live import LiveScreen
        from notetaker.tui.screens.sessions import SessionsScreen

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

    async def action_quit(self) -> None:
        """ctrl+q (or the palette's quit) during a meeting finishes it safely first."""
        from notetaker.tui.screens.live import LiveScreen

        live = next((s for s in self.screen_stack if isinstance(s, LiveScreen)), None)
        if live is not None and self.recorder is not None and not self.recorder.finished:
            live.action_finish()
            return
        self.exit()

    def action_search(self) -> None:
        from textual.screen import ModalScreen

        from notetaker.tui.screens.search import SearchScreen

        if not isinstance(self.screen, (SearchScreen, ModalScreen)):
            self.push_screen(SearchScreen(self.deps))

    def action_help(self) -> None:
        from notetaker.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def make_app(deps: AppDeps, live: bool = False) -> NotetakerApp:
    """The app over a store, an engine factory and a clock (tests pass scripted ones)."""
    return NotetakerApp(deps, live=live)
