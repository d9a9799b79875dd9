"""The new-meeting dialog (`n` on the meetings list): a title, the input (a device, or an audio
file played as if live when there is none or one is wanted), the system audio, and the speech
model (the memory plan's choice first, then the downloaded ones that fit).

Like the other dialogs (dialogs.py) it dismisses with its answer, a `MeetingChoice` (None when
cancelled); what it offers comes from `AppDeps.meeting_setup`, so it reads no device itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from notetaker.tui.deps import MeetingChoice, MeetingSetup


class NewMeetingDialog(ModalScreen[MeetingChoice | None]):
    """Tab moves between the fields; enter in a text field (or the Start button) starts the
    meeting, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, setup: MeetingSetup) -> None:
        super().__init__()
        self.setup = setup

    def compose(self) -> ComposeResult:
        setup = self.setup
        with Vertical(classes="dialog", id="new-meeting"):
            yield Label("New meeting", classes="title")
            yield Input(setup.title, placeholder="title", id="title")
            yield Label("Input", classes="field")
            if setup.devices:
                yield OptionList(*(Option(label, id=str(i)) for i, (label, _) in enumerate(setup.devices)),
                                 id="device")
            else:
                yield Static(setup.no_device or "no audio input device found", id="no-device", classes="problem")
            placeholder = "audio file played as if live" + ("" if not setup.devices else " (instead of the device)")
            yield Input(placeholder=placeholder, id="file")
            yield Checkbox("system audio too" if setup.system_audio else "system audio (no loopback device found)",
                           value=False, id="system", disabled=not setup.system_audio)
            yield Label("Speech model", classes="field")
            yield OptionList(*(Option(c.label, id=str(i)) for i, c in enumerate(setup.speech)), id="speech")
            yield Static("", id="problem", classes="problem")
            yield Button("Start", variant="primary", id="start")
            yield Static("tab  next field    enter  start    escape  cancel", classes="hint")

    def on_mount(self) -> None:
        for list_id in ("#device", "#speech"):
            for options in self.query(list_id).results(OptionList):
                if options.option_count:
                    options.highlighted = 0
        self.query_one("#problem").display = False
        self.query_one("#title", Input).focus()

    def choice(self) -> MeetingChoice | str:
        """What was chosen, or one line saying what is missing."""
        title = self.query_one("#title", Input).value.strip() or self.setup.title or "Meeting"
        file_text = self.query_one("#file", Input).value.strip()
        file = Path(file_text).expanduser() if file_text else None
        if file is not None and not file.is_file():
            return f"no audio file at {file_text}"
        device = None
        if file is None:
            if not self.setup.devices:
                return "no input device: give an audio file"
            index = self.query_one("#device", OptionList).highlighted or 0
            device = self.setup.devices[index][1]
        speech = None
        if self.setup.speech:
            speech = self.setup.speech[self.query_one("#speech", OptionList).highlighted or 0]
        system = self.query_one("#system", Checkbox).value and file is None
        return MeetingChoice(title, device=device, file=file, system_audio=system, speech=speech,
                             rewrite=self.setup.rewrite)

    def _start(self) -> None:
        choice = self.choice()
        if isinstance(choice, str):
            problem = self.query_one("#problem", Static)
            problem.update(choice)
            problem.display = True
            return
        self.dismiss(choice)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._start()

    @on(Button.Pressed, "#start")
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._start()

    def action_cancel(self) -> None:
        self.dismiss(None)
