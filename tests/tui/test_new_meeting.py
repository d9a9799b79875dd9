"""A meeting started from the meetings list: `n` opens the new-meeting dialog, a file stands in
for the missing input device, the live view records it with a scripted engine, and `q` comes
back to the list, where the meeting now shows complete."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from textual.widgets import DataTable, Input, OptionList, Static

from notetaker.audio import FileSource
from notetaker.tui.app import make_app
from notetaker.tui.deps import MeetingChoice, MeetingSetup, SpeechChoice
from notetaker.tui.new_meeting import NewMeetingDialog
from notetaker.tui.screens.live import LiveScreen
from notetaker.tui.screens.sessions import SessionsScreen
from tests.app.conftest import write_wav
from tests.app.scripted import ScriptedEngine
from tests.app.test_recorder import FINAL_TEXTS, SCRIPT

from .conftest import drive

NO_DEVICE = "no audio input device found; connect a microphone or choose one"
SPEECH = [SpeechChoice("scripted/script-v1, the plan's choice", "scripted", "script-v1")]


def _never(choice: MeetingChoice):
    raise AssertionError("no meeting is started in this test")


async def wait_for(pilot, condition, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


def test_n_starts_a_meeting_from_a_file_and_q_comes_back_to_the_list(store, make_deps, tmp_path: Path):
    wav = write_wav(tmp_path / "kickoff.wav", 3.0)
    opened: list[MeetingChoice] = []

    def prepare_meeting(choice: MeetingChoice):
        opened.append(choice)
        return replace(deps, title=choice.title, audio_path=str(choice.file.resolve()),
                       source_factory=lambda: FileSource.open(choice.file, realtime=True, speed=4.0))

    deps = make_deps(store, engine_factory=lambda: ScriptedEngine(SCRIPT), rewrite_backend="none",
                     meeting_setup=lambda: MeetingSetup(no_device=NO_DEVICE, speech=SPEECH),
                     prepare_meeting=prepare_meeting)
    app = make_app(deps)
    seen: dict = {}

    async def scenario(pilot):
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewMeetingDialog))
        dialog = app.screen
        assert isinstance(dialog, NewMeetingDialog)
        seen["no_device"] = str(dialog.query_one("#no-device", Static).render())
        seen["speech"] = dialog.query_one("#speech", OptionList).highlighted
        await pilot.press(*"Kickoff", "enter")  # no device and no file yet: it says so and stays
        await pilot.pause(0.05)
        seen["problem"] = str(dialog.query_one("#problem", Static).render())
        assert app.screen is dialog
        await pilot.press("tab")
        assert dialog.focused is dialog.query_one("#file", Input)
        dialog.query_one("#file", Input).value = str(wav)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        screen = app.screen
        seen["title"] = str(screen.query_one("#meeting-title", Static).render())
        await wait_for(pilot, lambda: screen.state == "finished")
        seen["sid"] = screen.session_id
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.pause(0.05)
        table = app.screen.query_one("#sessions", DataTable)
        seen["rows"] = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        seen["running"] = app.is_running

    drive(app, scenario)
    assert seen["no_device"] == NO_DEVICE and seen["speech"] == 0
    assert seen["problem"] == "no input device: give an audio file"
    assert seen["title"] == "Kickoff" and seen["running"]
    assert opened == [MeetingChoice("Kickoff", file=wav, speech=SPEECH[0])]
    s = store.get_session(seen["sid"])
    assert s.title == "Kickoff" and s.status == "complete" and s.audio_path == str(wav.resolve())
    assert [seg.text for seg in store.segments(s.id)] == FINAL_TEXTS
    assert [(r[0], r[1], r[-1]) for r in seen["rows"]] == [(str(s.id), "Kickoff", "complete")]


def test_escape_cancels_the_dialog(store, make_deps):
    deps = make_deps(store, meeting_setup=lambda: MeetingSetup(speech=SPEECH), prepare_meeting=_never)
    app = make_app(deps)

    async def scenario(pilot):
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewMeetingDialog))
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_the_dialog_offers_the_devices_and_returns_the_one_chosen(store, make_deps):
    setup = MeetingSetup(devices=[("[1] USB mic  (default)", "usb"), ("[2] Webcam", "cam")], system_audio=True,
                         speech=SPEECH + [SpeechChoice("whisper/tiny.en, 0.3 GB", "whisper", "tiny.en")],
                         title="Meeting 2025-03-05 10:00", rewrite="mlx")
    deps = make_deps(store, meeting_setup=lambda: setup, prepare_meeting=_never)
    app = make_app(deps)
    answers: list = []

    async def scenario(pilot):
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewMeetingDialog))
        dialog = app.screen
        dialog.query_one("#device", OptionList).highlighted = 1
        dialog.query_one("#speech", OptionList).highlighted = 1
        dialog.query_one("#system").value = True
        answers.append(dialog.choice())

    drive(app, scenario)
    assert answers == [MeetingChoice("Meeting 2025-03-05 10:00", device="cam", system_audio=True,
                                     speech=SpeechChoice("whisper/tiny.en, 0.3 GB", "whisper", "tiny.en"),
                                     rewrite="mlx")]


def test_a_meeting_that_cannot_start_is_one_line_and_the_list_stays(store, make_deps):
    """What `prepare_meeting` refuses (a model that does not fit, a device that will not
    open) is said in one line; nothing is recorded and the list keeps working."""
    from notetaker.config import ConfigError

    def prepare_meeting(choice: MeetingChoice):
        raise ConfigError("whisper/large-v3 needs 3.1 GB; this machine can give 2.0 GB\n(try a smaller model)")

    deps = make_deps(store, meeting_setup=lambda: MeetingSetup(speech=SPEECH), prepare_meeting=prepare_meeting)
    app = make_app(deps)
    seen: dict = {}

    async def scenario(pilot):
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewMeetingDialog))
        app.screen.query_one("#file", Input).value = __file__  # any file: it is never opened
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("cannot start" in n.message for n in app._notifications))
        seen["notes"] = [n.message for n in app._notifications]
        seen["screen"] = app.screen

    drive(app, scenario)
    assert seen["notes"] == ["cannot start the meeting: whisper/large-v3 needs 3.1 GB; this machine can give "
                             "2.0 GB (try a smaller model)"]
    assert isinstance(seen["screen"], SessionsScreen) and store.list_sessions() == []
