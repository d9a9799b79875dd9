"""Every key of every screen, read from the screens' own BINDINGS so this cannot drift, and
the command-palette provider that offers the current screen's keys as commands."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


def bindings_of(owner: type) -> list[Binding]:
    """The Binding objects a class declares (tuples and multi-key strings expanded)."""
    out: list[Binding] = []
    for item in getattr(owner, "BINDINGS", []):
        binding = item if isinstance(item, Binding) else Binding(*item)
        for key in binding.key.split(","):
            out.append(dataclasses.replace(binding, key=key.strip()))
    return out


def key_sections() -> list[tuple[str, type]]:
    """(heading, class) for the app and each screen, in the order a person meets them."""
    from notetaker.tui.app import NotetakerApp
    from notetaker.tui.screens.dialogs import ConfirmDialog, MarkDialog, TextPrompt
    from notetaker.tui.screens.meeting import MeetingScreen
    from notetaker.tui.screens.search import SearchScreen
    from notetaker.tui.screens.sessions import SessionsScreen
    from notetaker.tui.screens.summary import SummaryScreen

    sections: list[tuple[str, type]] = [("Everywhere", NotetakerApp), ("Meetings", SessionsScreen)]
    try:
        from notetaker.tui.screens.live import LiveScreen

        sections.append(("Live meeting", LiveScreen))
    except ImportError:  # pragma: no cover - the live view ships with the app
        pass
    sections += [("Meeting", MeetingScreen), ("Search", SearchScreen), ("Summary", SummaryScreen),
                 ("Help", HelpScreen), ("Yes/no question", ConfirmDialog), ("Text prompt", TextPrompt),
                 ("Mark", MarkDialog)]
    return sections


class KeyCommands(Provider):
    """The command palette (ctrl+p) lists every key of the screen it was opened on, by name."""

    def _commands(self) -> Iterator[tuple[str, str, object]]:
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not active.enabled or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            shown = self.app.get_key_display(binding)
            run = functools.partial(self.app.run_action, binding.action, active.node)
            yield binding.description, f"key: {shown}", run

    async def discover(self) -> Hits:
        for name, help_text, run in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)


# Textual's own keys every screen has (App.BINDINGS and the palette), described for people.
BUILTIN_KEYS = [("ctrl+p", "Command palette: every key below, by name"), ("ctrl+q", "Quit"),
                ("tab / shift+tab", "Move between fields")]


class HelpScreen(Screen):
    """Keys by screen; escape (or q, or ?) closes."""

    COMMANDS: ClassVar[set] = {KeyCommands}
    CSS = """
    HelpScreen #help-body { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
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
        for heading, owner in key_sections():
            table.add_row(Text(heading, style="bold underline"), "")
            if owner.__name__ == "NotetakerApp":
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
