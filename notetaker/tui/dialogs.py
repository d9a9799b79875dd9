"""Modal dialogs: a yes/no question, a one-line text prompt, the mark chooser, a meeting's
speakers (rename, merge), and the corrections of a transcript (edit a line; find and replace
with a preview).

Each dismisses with its answer (None when cancelled), so callers use
`app.push_screen(dialog, callback)`. They live beside `screens/`, not in it: any screen may
ask a question, and screens never import one another. Their look is in app.tcss (`.dialog`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from notetaker.errors import one_line
from notetaker.inert import inert
from notetaker.summary import duration_text
from notetaker.tui.display import EDITED_MARK, change_text
from storage import SessionStore, SpeakerRecord, StoreError
from storage.export import clock
from storage.records import MARK_KINDS, SegmentRecord, TextChange


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
    it into that one (a person picking both may join the mic and system sides). With `find`
    (a past meeting), `f` finds the speakers afresh from its kept audio, off the UI thread
    (notetaker.diarization.find_in_meeting: what it did, one line). Writes as it goes;
    dismisses True when anything changed, so the screen shows the names again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "merge", "Merge into…"),
        Binding("f", "find", "Find from the audio"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, store: SessionStore, session_id: int,
                 find: Callable[[SessionStore, int], str] | None = None) -> None:
        super().__init__()
        self.store = store
        self.session_id = session_id
        self.find = find
        self.finding = False
        self.changed = False
        self.merging: str | None = None  # the label picked to merge into another
        self.speakers: list[SpeakerRecord] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Speakers", classes="title")
            yield OptionList(id="speakers")
            yield Static(id="merging", classes="field")
            find = "    f  find from the audio" if self.find else ""
            yield Static(f"enter  rename    m  merge into…{find}    escape  close", classes="hint")

    def on_mount(self) -> None:
        self.show()
        self.query_one("#speakers", OptionList).focus()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return self.find is not None if action == "find" else True

    def action_find(self) -> None:
        if self.find is None or self.finding:
            return
        self.finding = True
        self.notify("finding speakers in the meeting's audio…")
        self._find(self.find)

    @work(thread=True, exclusive=True, group="find-speakers")
    def _find(self, find: Callable[[SessionStore, int], str]) -> None:
        try:
            done, severity = find(self.store, self.session_id), "information"
        except Exception as e:  # one line: no models, no audio kept, named speakers, ...
            done, severity = one_line(e), "error"
        self.app.call_from_thread(self._found, done, severity)

    def _found(self, done: str, severity: str) -> None:
        self.finding = False
        if severity != "error":
            self.changed = True
        self.notify(done, severity=severity)
        self.show()

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


class EditDialog(ModalScreen[tuple[SegmentRecord, str] | None]):
    """Correct a line: its shown text to edit, what was heard beneath when that differs; ↑/↓
    step to the line before or after (the live view opens it on the newest final). Dismisses
    (segment, text) on enter, None on escape; empty text is refused in place."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "step(-1)", "Line before"),
        Binding("down", "step(1)", "Line after"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, lines: Sequence[SegmentRecord], at: int) -> None:
        super().__init__()
        self.lines = list(lines)
        self.at = max(0, min(at, len(self.lines) - 1))

    @property
    def segment(self) -> SegmentRecord:
        return self.lines[self.at]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("", id="edit-title", classes="title")
            yield Input(id="text")
            yield Static("", id="heard", classes="field")
            yield Static("", id="edit-problem", classes="problem")
            yield Static("enter  save    ↑↓  line before/after    escape  cancel", classes="hint")

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        seg = self.segment
        edited = EDITED_MARK + " edited" if seg.edited else ""
        self.query_one("#edit-title", Label).update(f"Edit #{seg.seq} {clock(seg.start_s)}{edited}")
        box = self.query_one("#text", Input)
        box.value = seg.display_text
        box.cursor_position = len(box.value)
        box.focus()
        heard = self.query_one("#heard", Static)
        heard.update(Text(f"heard: {inert(seg.text)}") if seg.display_text != seg.text else "")
        heard.display = seg.display_text != seg.text
        self.query_one("#edit-problem", Static).display = False

    def action_step(self, by: int) -> None:
        if 0 <= self.at + by < len(self.lines):
            self.at += by
            self._show()

    @on(Input.Submitted, "#text")
    def _submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            problem = self.query_one("#edit-problem", Static)
            problem.update("a line cannot be empty; escape leaves it as it was")
            problem.display = True
            return
        self.dismiss((self.segment, event.value))

    def action_cancel(self) -> None:
        self.dismiss(None)


Preview = Callable[[str, str, bool], list[TextChange]]


class ReplaceDialog(ModalScreen[list[TextChange] | None]):
    """Find and replace: each line that would change is shown as you type (before → after);
    enter in the replacement applies them all (dismisses the changes), escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preview: Preview, where: str, offer_vocabulary: bool = False) -> None:
        super().__init__()
        self.preview = preview  # (find, replacement, case sensitive) → changes; writes nothing
        self.where = where
        self.offer_vocabulary = offer_vocabulary  # a box to add the replacement to the vocabulary
        self.changes: list[TextChange] = []

    @property
    def replacement(self) -> str:
        return self.query_one("#replacement", Input).value

    @property
    def add_to_vocabulary(self) -> bool:
        """Whether the person asked for the replacement to join the custom vocabulary."""
        return self.offer_vocabulary and self.query_one("#vocabulary", Checkbox).value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Find and replace in {self.where}", classes="title")
            yield Input(placeholder="find (whole words)", id="find")
            yield Input(placeholder="replace with", id="replacement")
            yield Checkbox("match case", id="case")
            if self.offer_vocabulary:
                yield Checkbox("add the replacement to the vocabulary (the engines spell it so next time)",
                               id="vocabulary")
            yield Static("", id="replace-count", classes="field")
            with VerticalScroll(id="changes"):
                yield Static("", id="changes-text")
            yield Static("enter  next field / replace all    escape  cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#find", Input).focus()
        self._refresh()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _refresh(self) -> None:
        find = self.query_one("#find", Input).value
        try:
            self.changes = self.preview(find, self.query_one("#replacement", Input).value,
                                        self.query_one("#case", Checkbox).value) if find.strip() else []
            count = (f"{len(self.changes)} line{'s' * (len(self.changes) != 1)} change" if self.changes
                     else "no line changes" if find.strip() else "type the words to find")
        except StoreError as e:
            self.changes, count = [], str(e)
        self.query_one("#replace-count", Static).update(count)
        self.query_one("#changes-text", Static).update(Text("\n").join(change_text(c) for c in self.changes))

    @on(Input.Submitted, "#find")
    def _next(self) -> None:
        self.query_one("#replacement", Input).focus()

    @on(Input.Submitted, "#replacement")
    def _apply(self) -> None:
        if self.changes:
            self.dismiss(self.changes)
        else:
            self.app.bell()

    def action_cancel(self) -> None:
        self.dismiss(None)
