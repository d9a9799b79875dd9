"""TUI fixtures: a store in a temporary folder with a few meetings at fixed times (one
interrupted, one with a summary that cites segments), a scripted rewrite backend, a fixed
clock, and the app built from them. Times show in UTC so screenshots never depend on where
the tests run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.pilot import Pilot

from notetaker.tui.app import NotetakerApp, make_app
from notetaker.tui.deps import AppDeps
from rewrite.backend import RewriteBackend
from rewrite.base import Message, RewriteError
from storage import Citation, SessionStore
from tests.rewrite.scripted_backend import ScriptedBackend

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class FixedClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@dataclass
class Seeded:
    store: SessionStore
    budget: int  # complete, long, no summary
    design: int  # interrupted
    standup: int  # complete, has a summary citing segments
    seg: dict[str, int] = field(default_factory=dict)  # notable segment ids by name
    num: dict[str, int] = field(default_factory=dict)  # their numbers in their meetings (what summaries cite)


BUDGET_LINES = [
    "Good morning, let's go through the budget for the next quarter.",
    "Marketing asked for twelve thousand more than last time.",
    "We agreed to keep the travel budget flat.",
    "Sam will send the updated numbers by Friday.",
]
FILLER = "Item {n} was discussed briefly and nobody had concerns."


def seed(store: SessionStore) -> Seeded:
    ids: dict[str, int] = {}
    budget = store.create_session("Budget review", "whisper", "tiny.en", language="en",
                                  started_at="2025-03-03T09:00:00Z")
    for i, text in enumerate(BUDGET_LINES):
        ids[f"budget{i}"] = store.add_segment(budget, text, i * 5.0, i * 5.0 + 4.5).id
    for n in range(40):  # long enough that a late segment is off screen at first
        t = 20.0 + n * 6.0
        ids[f"filler{n}"] = store.add_segment(budget, FILLER.format(n=n), t, t + 5.5).id
    ids["late"] = store.add_segment(budget, "Finally the offsite venue: the lakeside hotel won.", 300.0, 306.0).id
    store.set_clean_text({ids["budget1"]: "Marketing asked for 12,000 more than last time."})
    store.add_mark(budget, 15.0, "decision", "travel budget stays flat")
    store.add_mark(budget, 17.0, "action", "Sam: numbers by Friday")
    store.finish_session(budget, "complete", duration_s=754.0)

    design = store.create_session("Design sync", "qwen3", "0.6b", started_at="2025-03-04T14:30:00Z")
    ids["design0"] = store.add_segment(design, "The new onboarding flow needs one more screen.", 0.0, 3.0).id
    ids["design1"] = store.add_segment(design, "Let's review the budget impact next week.", 3.0, 6.5).id
    store.finish_session(design, "interrupted", duration_s=95.0)

    standup = store.create_session("Standup", "voxtral", "mini-realtime", started_at="2025-03-05T08:15:00Z")
    ids["standup0"] = store.add_segment(standup, "Yesterday I fixed the export bug.", 0.0, 2.5).id
    ids["standup1"] = store.add_segment(standup, "Today I am pairing with Ana on search.", 2.5, 5.0).id
    ids["standup2"] = store.add_segment(standup, "No blockers.", 5.0, 6.0).id
    store.finish_session(standup, "complete", duration_s=61.0)
    nums = {name: store.get_segment(i).seq for name, i in ids.items()}
    store.add_summary(
        standup, "scripted", "scripted-1",
        f"## Progress\n\n- The export bug is fixed [#{nums['standup0']}]\n"
        f"- Pairing with Ana on search today [#{nums['standup1']}]\n\n## Blockers\n\n- None [#{nums['standup2']}]\n",
        citations=[Citation("The export bug is fixed", (nums["standup0"],)),
                   Citation("Pairing with Ana on search today", (nums["standup1"],)),
                   Citation("None", (nums["standup2"],))],
        created_at="2025-03-05T08:20:00Z",
    )
    return Seeded(store, budget, design, standup, ids, nums)


def summary_reply(seeded: Seeded) -> str:
    """What the scripted model writes for the budget meeting: two good citations, one bad."""
    s = seeded.num
    return (f"## Decisions\n\n- Travel budget stays flat [#{s['budget2']}]\n\n"
            f"## Action items\n\n- Sam sends the updated numbers by Friday [#{s['budget3']}, #{s['budget1']}]\n"
            f"- Book the lakeside hotel [#{s['late']}] [#99999]\n")


@pytest.fixture
def store(tmp_path: Path):
    with SessionStore.open(tmp_path / "notetaker.db") as st:
        yield st


@pytest.fixture
def seeded(store: SessionStore) -> Seeded:
    return seed(store)


@dataclass
class Rewrite:
    """The rewrite factory the app gets: hands out scripted backends and records each ask."""

    replies: list[str] | Callable[[list[Message], int], str] | None = None
    fail: Exception | None = None
    backend_class: type[ScriptedBackend] = ScriptedBackend
    asked: list[str] = field(default_factory=list)
    made: list[ScriptedBackend] = field(default_factory=list)

    def __call__(self, name: str) -> RewriteBackend | None:
        self.asked.append(name)
        if self.fail is not None:
            raise self.fail
        if name == "none":
            return None
        backend = self.backend_class(self.replies if callable(self.replies) else self._next_reply)
        self.made.append(backend)
        return backend

    def _next_reply(self, messages: list[Message], max_tokens: int) -> str:
        """Replies are taken in order across every backend handed out."""
        if not self.replies:
            raise RewriteError("scripted backend: no reply left")
        return self.replies.pop(0)


def _no_engine():
    raise AssertionError("these screens never load an ASR engine")


@pytest.fixture
def rewrite() -> Rewrite:
    return Rewrite()


@pytest.fixture
def make_deps(tmp_path: Path, rewrite: Rewrite) -> Callable[..., AppDeps]:
    def make(store: SessionStore, **overrides) -> AppDeps:
        values = {"store": store, "engine_factory": _no_engine, "rewrite_factory": rewrite,
                  "export_dir": tmp_path / "exports", "templates_dir": None, "rewrite_backend": "mlx",
                  "clock": FixedClock()}
        values.update(overrides)
        return AppDeps(**values)

    return make


@pytest.fixture
def app(seeded: Seeded, make_deps) -> NotetakerApp:
    return make_app(make_deps(seeded.store))


def drive(app: NotetakerApp, scenario: Callable[[Pilot], Awaitable[None]], size: tuple[int, int] = SIZE) -> None:
    """Run the app headless and play `scenario` on it (no pytest-asyncio needed)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot, delay: float = 0.0) -> None:
    """Let timers fire, workers finish and their messages be handled."""
    if delay:
        await pilot.pause(delay)
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
