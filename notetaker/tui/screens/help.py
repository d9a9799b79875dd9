"""Every key of every screen, read from the screens' own BINDINGS so this cannot drift. The app
says which screens there are (`key_sections` in app.py): screens never import one another."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from notetaker.tui.palette import KeyCommands


def bindings_of(owner: type) -> list[Binding]:
    """The Binding objects a class declares (tuples and multi-key strings expanded)."""
    out: list[Binding] = []
    for item in getattr(owner, "BINDINGS", []):
        binding = item if isinstance(item, Binding) else Binding(*item)
        for key in binding.key.split(","):
            out.append(dataclasses.replace(binding, key=key.strip()))
    return out


# Textual's own keys every screen has (App.BINDINGS and the palette), described for people.
BUILTIN_KEYS = [("ctrl+p", "Command palette: every key below, by name"), ("ctrl+q", "Quit"),
                ("tab / shift+tab", "Move between fields")]


class HelpScreen(Screen):
    """Keys by screen; escape (or q, or ?) closes."""

    COMMANDS: ClassVar[set] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, sections: list[tuple[str, type]]) -> None:
        super().__init__()
        self.sections = sections  # (heading, class) for the app and each screen
        self.sub_title = "Keys"

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="help-body"):
            yield Static(self.render_keys(), id="keys")
        yield Footer()

    def render_keys(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, min_width=14)
        table.add_column()
        for heading, owner in self.sections:
            table.add_row(Text(heading, style="bold underline"), "")
            if issubclass(owner, App):  # the app's own keys come with Textual's built-in ones
                for key, what in BUILTIN_KEYS:
                    table.add_row(key, what)
            for key, description in describe(owner, self.app):
                table.add_row(key, description)
            table.add_row("", "")
        return table

    def action_close(self) -> None:
        self.dismiss()


def describe(owner: type, app: App | None = None) -> Iterator[tuple[str, str]]:
    """(key as shown, description) for each binding of `owner`, keys of one action together."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for b in bindings_of(owner):
        shown = app.get_key_display(b) if app is not None else (b.key_display or b.key)
        grouped.setdefault((b.action, b.description), []).append(shown)
    for (_, description), keys in grouped.items():
        yield " / ".join(dict.fromkeys(keys)), description or "-"
