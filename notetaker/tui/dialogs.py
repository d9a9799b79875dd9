"""Modal dialogs: a yes/no question, a one-line text prompt, and the mark chooser.

Each dismisses with its answer (None when cancelled), so callers use
`app.push_screen(dialog, callback)`. They live beside `screens/`, not in it: any screen may
ask a question, and screens never import one another. Their look is in app.tcss (`.dialog`).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from storage.records import MARK_KINDS


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; dismisses True for `y`, False for `n` or escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str, title: str = "Are you sure?") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Static(self.question, id="question")
            yield Static("y  yes    n  no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextPrompt(ModalScreen[str | None]):
    """One line of text; dismisses the stripped text on enter (None when empty), None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Input(self.value, placeholder=self.placeholder, id="text")
            yield Static("enter  save    escape  cancel", classes="hint")

    @on(Input.Submitted, "#text")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MarkDialog(ModalScreen[tuple[str, str] | None]):
    """Pick a kind (a/d/q/n or arrows and enter), then optional text (enter saves).
    Dismisses `(kind, text)`, or None on escape."""

    KEYS: ClassVar[dict[str, str]] = {kind[0]: kind for kind in MARK_KINDS}  # a, d, q, n
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"pick('{kind}')", kind.capitalize()) for key, kind in KEYS.items()),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, kind: str = "action", text: str = "") -> None:
        super().__init__()
        self.kind = kind if kind in MARK_KINDS else MARK_KINDS[0]
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Mark this moment", classes="title")
            yield OptionList(*(Option(f"{k[0]}  {k.capitalize()}", id=k) for k in MARK_KINDS), id="kinds")
            yield Input(self.text, placeholder="what about it (optional)", id="text")
            yield Static("a/d/q/n or ↑↓ enter  kind    enter  save    escape  cancel", classes="hint")

    def on_mount(self) -> None:
        kinds = self.query_one("#kinds", OptionList)
        kinds.highlighted = MARK_KINDS.index(self.kind)
        kinds.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While typing the text, letters are text, not kinds.
        return not (action == "pick" and isinstance(self.focused, Input))

    def action_pick(self, kind: str) -> None:
        self.kind = kind
        self.query_one("#kinds", OptionList).highlighted = MARK_KINDS.index(kind)
        self.query_one("#text", Input).focus()

    @on(OptionList.OptionHighlighted, "#kinds")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.kind = event.option.id

    @on(OptionList.OptionSelected, "#kinds")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_pick(event.option.id)

    @on(Input.Submitted, "#text")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss((self.kind, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
