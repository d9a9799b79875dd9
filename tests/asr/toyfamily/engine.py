"""The toy family's engine: every utterance is the word "toy"."""

from __future__ import annotations

from pathlib import Path

from asr.base import Engine, Final, MemoryEstimate, Session, SessionOptions
from tests.asr.toyfamily.spec import DEFAULT_MODEL, SPEC, working


class ToySession(Session):
    def __init__(self) -> None:
        super().__init__()
        self._done = 0.0

    @property
    def done_s(self) -> float:
        return self._done

    @property
    def idle(self) -> bool:
        return not self._has_pending_audio()

    def step(self) -> list:
        self._take_audio()
        self._done = self.fed_s
        return []

    def finish(self) -> list:
        self.step()
        return [Final("toy", 0.0, self._done)] if self._done else []


class ToyEngine(Engine):
    name = "toy"

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, allow_download: bool = True):
        self.model = model or DEFAULT_MODEL

    @property
    def capabilities(self):
        return SPEC.capabilities

    def memory_estimate(self) -> MemoryEstimate:
        kv, acts = working({"context": 100, "width": 10}, 4)
        return MemoryEstimate(4000, kv + acts)

    def start_session(self, options: SessionOptions | None = None) -> ToySession:
        return ToySession()
