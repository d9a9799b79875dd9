"""The command palette (ctrl+p): every key of the screen it was opened on, by name. Each
screen lists it in its `COMMANDS`."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider


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
