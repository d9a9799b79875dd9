"""A scripted ASR engine for app tests: its sessions emit a fixed list of events as audio
time passes, so recorder behaviour can be checked without any model.

Each scripted event carries the audio time `at` from which it is available. A session
processes fed audio in bounded steps of `step_s` seconds; a step emits every event whose
`at` it has reached. `finish()` emits the finals due within the fed audio and turns a
partial left open at the end into a final, like a real engine committing its last
utterance. Events due after the fed audio never happen (that audio never arrived).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from asr.base import (
    SAMPLE_RATE,
    ASRError,
    Capabilities,
    Engine,
    Event,
    Final,
    MemoryEstimate,
    Partial,
    Session,
    SessionOptions,
)


class ScriptedFailure(RuntimeError):
    """Raised by an injected failure in `step()`."""


@dataclass(frozen=True)
class Cue:
    at: float  # audio seconds after which the event exists
    event: Event


def final(at: float, text: str, start: float | None = None, flags: tuple[str, ...] = ()) -> Cue:
    return Cue(at, Final(text, max(0.0, at - 1.0) if start is None else start, at, flags=flags))


def partial(at: float, text: str, start: float | None = None) -> Cue:
    return Cue(at, Partial(text, max(0.0, at - 0.5) if start is None else start, at))


class ScriptedSession(Session):
    def __init__(self, engine: ScriptedEngine, options: SessionOptions) -> None:
        super().__init__()
        self.engine = engine
        self.options = options
        self._pending = sorted(engine.script, key=lambda c: c.at)
        self._buffered = 0  # samples taken from the feed but not yet processed
        self._done = 0  # samples processed
        self._open_partial: Partial | None = None
        self.finals = 0
        self.finished = False
        self.step_threads: set[str] = set()
        self.feed_threads: set[str] = set()

    def feed_audio(self, pcm) -> None:
        self.feed_threads.add(threading.current_thread().name)
        super().feed_audio(pcm)

    @property
    def done_s(self) -> float:
        return self._done / SAMPLE_RATE

    @property
    def idle(self) -> bool:
        return self._done >= self._fed

    def step(self) -> list[Event]:
        assert not self.finished, "step() after finish()"
        self.step_threads.add(threading.current_thread().name)
        fail = self.engine.fail_after_finals
        if fail is not None and self.finals >= fail:
            raise ScriptedFailure(f"scripted failure after {self.finals} finals")
        self._buffered += self._take_audio().size
        n = min(self._buffered, int(self.engine.step_s * SAMPLE_RATE))
        self._buffered -= n
        self._done += n
        if self.engine.step_cost_s:
            time.sleep(self.engine.step_cost_s)
        return self._due(self.done_s)

    def finish(self) -> list[Event]:
        assert not self.finished, "finish() twice"
        self._buffered += self._take_audio().size
        self._done += self._buffered
        self._buffered = 0
        events = [e for e in self._due(self.done_s) if isinstance(e, Final)]
        if self._open_partial is not None:
            p = self._open_partial
            events.append(Final(p.text, p.start, p.end))
            self.finals += 1
            self._open_partial = None
        self.finished = True
        self.engine.finished_sessions.append(self)
        return events

    def _due(self, t: float) -> list[Event]:
        out: list[Event] = []
        while self._pending and self._pending[0].at <= t + 1e-9:
            event = self._pending.pop(0).event
            out.append(event)
            if isinstance(event, Final):
                self.finals += 1
                self._open_partial = None
            else:
                self._open_partial = event
        return out


class ScriptedEngine(Engine):
    name = "scripted"
    model = "script-v1"

    def __init__(self, script: Sequence[Cue], *, step_s: float = 0.25, step_cost_s: float = 0.0,
                 fail_after_finals: int | None = None, languages: tuple[str, ...] = ("en",)) -> None:
        self.script = tuple(script)
        self.step_s = step_s
        self.step_cost_s = step_cost_s
        self.fail_after_finals = fail_after_finals
        self.languages = languages
        self.sessions: list[ScriptedSession] = []
        self.finished_sessions: list[ScriptedSession] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(native_streaming=True, delay_control=True, word_timestamps=False,
                            rewrite_experimental=False, languages=self.languages)

    def memory_estimate(self) -> MemoryEstimate:
        return MemoryEstimate(0, 0)

    def start_session(self, options: SessionOptions | None = None) -> ScriptedSession:
        options = options or SessionOptions()
        if options.language is not None and options.language not in self.languages:
            raise ASRError(f"language {options.language!r} is not supported by {self.name}")
        if options.delay_ms is not None and not 80 <= options.delay_ms <= 2400:
            raise ASRError(f"delay {options.delay_ms} ms is out of range")
        session = ScriptedSession(self, options)
        self.sessions.append(session)
        return session
