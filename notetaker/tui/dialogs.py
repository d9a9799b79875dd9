"""Modal dialogs: a yes/no question, a one-line text prompt, the mark chooser, and a meeting's
speakers (rename, merge).

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

from notetaker.inert import inert
from notetaker.summary import duration_text
from storage import SessionStore, SpeakerRecord, StoreError
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
    """One line of text; dismisses the stripped text on enter (None when empty, or "" with
    `empty_ok`: an answer that clears something), None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", empty_ok: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.empty_ok = empty_ok

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Input(self.value, placeholder=self.placeholder, id="text")
            yield Static("enter  save    escape  cancel", classes="hint")

    @on(Input.Submitted, "#text")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or ("" if self.empty_ok else None))

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


def speaker_option(s: SpeakerRecord) -> str:
    """`S2  Anya  1:03 · 12 segments · system`: what the speakers dialog lists."""
    where = f" · {', '.join(s.channels)}" if s.channels else ""
    return f"{inert(s.label):6}{inert(s.name or '–'):22}{duration_text(s.talk_s):>7} · {s.segments} segment{'' if s.segments == 1 else 's'}{where}"


class SpeakersDialog(ModalScreen[bool]):
    """A meeting's speakers with their names and talk time. Enter renames the highlighted one
    (an empty name shows its label again); `m` takes it to merge, then enter on another merges
    it into that one (a person picking both may join the mic and system sides). Writes as it
    goes; dismisses True when anything changed, so the screen shows the names again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "merge", "Merge into…"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, store: SessionStore, session_id: int) -> None:
        super().__init__()
        self.store = store
        self.session_id = session_id
        self.changed = False
        self.merging: str | None = None  # the label picked to merge into another
        self.speakers: list[SpeakerRecord] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Speakers", classes="title")
            yield OptionList(id="speakers")
            yield Static(id="merging", classes="field")
            yield Static("enter  rename    m  merge into…    escape  close", classes="hint")

    def on_mount(self) -> None:
        self.show()
        self.query_one("#speakers", OptionList).focus()

    def show(self) -> None:
        listing = self.query_one("#speakers", OptionList)
        keep = listing.highlighted
        try:
            self.speakers = self.store.speakers(self.session_id)
        except StoreError as e:
            self.notify(str(e), severity="error")
            return
        listing.clear_options()
        listing.add_options([Option(speaker_option(s), id=s.label) for s in self.speakers])
        if not self.speakers:
            listing.add_option(Option("no speaker labels yet", disabled=True))
        else:
            listing.highlighted = min(keep or 0, len(self.speakers) - 1)
        merging = self.query_one("#merging", Static)
        merging.update(f"merge {self.merging} into… (pick one, enter; escape cancels)" if self.merging else "")
        merging.display = self.merging is not None

    @property
    def highlighted(self) -> SpeakerRecord | None:
        index = self.query_one("#speakers", OptionList).highlighted
        return self.speakers[index] if index is not None and index < len(self.speakers) else None

    @on(OptionList.OptionSelected, "#speakers")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        chosen = next((s for s in self.speakers if s.label == event.option.id), None)
        if chosen is None:
            return
        if self.merging is not None:
            self._merge(self.merging, chosen.label)
            return

        def named(name: str | None) -> None:
            if name is not None:
                self._apply(lambda: self.store.rename_speaker(self.session_id, chosen.label, name),
                            f"{chosen.label} is {name}" if name else f"{chosen.label} has no name now")

        self.app.push_screen(TextPrompt(f"Name {chosen.label}", chosen.name or "", "a name (empty: none)",
                                        empty_ok=True), named)

    def action_merge(self) -> None:
        if self.highlighted is not None:
            self.merging = self.highlighted.label
            self.show()

    def _merge(self, source: str, target: str) -> None:
        self.merging = None
        if source == target:
            self.show()
            return
        self._apply(lambda: self.store.merge_speakers(self.session_id, source, target, across_channels=True),
                    f"merged {source} into {target}")

    def _apply(self, change, done: str) -> None:
        try:
            change()
        except StoreError as e:
            self.notify(str(e), severity="error")
        else:
            self.changed = True
            self.notify(done)
        self.show()

    def action_close(self) -> None:
        if self.merging is not None:  # escape first cancels a merge
            self.merging = None
            self.show()
            return
        self.dismiss(self.changed)
