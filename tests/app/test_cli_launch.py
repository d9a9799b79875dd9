"""Closing the TUI while a meeting still records: the launcher stops the recorder and waits
while it saves, so the process neither hangs on a busy compute thread nor loses audio."""

from __future__ import annotations

import threading
import time

from textual import work
from textual.app import App

from notetaker.cli.tui import _run_app


class Recording:
    """Stands in for a live Recorder: runs until stopped, then takes a while to save."""

    session_id = 7

    def __init__(self) -> None:
        self.finished = False
        self.complete: bool | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        self._stop.wait(30)
        time.sleep(0.2)  # the last finals and the spool are written
        self.finished = True

    def stop(self, complete: bool = False) -> None:
        self.complete = complete
        self._stop.set()

    def end(self) -> None:  # the user ending a live meeting: complete
        self.stop(complete=True)


class ClosesWhileRecording(App):
    """An app whose compute worker records, and that exits without finishing the meeting."""

    def __init__(self) -> None:
        super().__init__()
        self.recorder = Recording()

    def run(self, **kwargs):
        return super().run(headless=True, **kwargs)

    def on_mount(self) -> None:
        self.record()
        self.set_timer(0.2, lambda: self.exit("closed"))

    @work(thread=True)
    def record(self) -> None:
        self.recorder.run()


def test_a_recording_left_running_is_stopped_and_saved_before_the_launcher_returns():
    app = ClosesWhileRecording()
    started = time.monotonic()
    result, stopped = _run_app(app)
    assert result == "closed" and stopped == 7
    assert app.recorder.finished and app.recorder.complete is True
    assert time.monotonic() - started < 20  # not the recorder's 30 s: it was stopped


def test_nothing_to_stop_when_the_meeting_had_finished():
    app = ClosesWhileRecording()
    app.recorder.finished = True
    app.recorder.stop()  # finished on its own screen: the worker ends at once
    result, stopped = _run_app(app)
    assert (result, stopped) == ("closed", None)
