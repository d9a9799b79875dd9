"""The ASR sessions of one recording, one per channel of the source (`mic`, `system`),
stepped as one; and what continuing a meeting a crash cut short changes about them
(`Continuation`: each channel from its own start, events on the meeting's timeline)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from asr.base import SAMPLE_RATE, Engine, Final, Partial, SessionOptions


@dataclass(frozen=True)
class Continuation:
    """Continue meeting `session_id` rather than create one: recovery feeds the rest of its
    spooled audio through the recorder, which marks it complete at a clean end (a run that
    ends otherwise leaves the meeting as it was, interrupted).

    The source's first sample is at the earliest of `start_s` on the meeting's timeline.
    Channel i is fed only from `start_s[i]`; its finals are moved onto the meeting's timeline
    and stored as `keep[i]` returns them (None: already saved before the crash). The finals
    of each source block are stored in time order across channels, as they were live."""

    session_id: int
    start_s: tuple[float, ...]  # per source channel (taken to the nearest sample)
    keep: tuple[Callable[[Final], Final | None], ...] = ()  # per channel; empty: keep every final

    @property
    def origin(self) -> int:
        """The source's first sample, counted from the meeting's start."""
        return min(int(round(s * SAMPLE_RATE)) for s in self.start_s)


class Channels:
    """One ASR session per channel of the source (`mic`, `system`), stepped as one session.

    A mono source is one channel whose label is None (stored as no channel). Continuing a
    meeting, channel i skips the source's audio before its own start, and its events come
    out on the meeting's timeline, finals filtered by its `keep`."""

    def __init__(self, engine: Engine, options: SessionOptions, labels: Sequence[str | None],
                 continues: Continuation | None = None):
        self.labels = tuple(labels)
        self.sessions = [engine.start_session(options) for _ in self.labels]
        n = len(self.labels)
        starts = [int(round(s * SAMPLE_RATE)) for s in continues.start_s] if continues else [0] * n
        self._offset = [a / SAMPLE_RATE for a in starts]  # a channel's time 0 on the meeting's timeline
        self._lead_s = [(a - min(starts)) / SAMPLE_RATE for a in starts]  # ... and on the source's
        self._skip = [a - min(starts) for a in starts]  # source samples a channel has still to skip
        self._keep = (continues.keep if continues else ()) or (None,) * n

    def feed(self, block: np.ndarray) -> None:
        columns = [block] if block.ndim == 1 else [block[:, i] for i in range(len(self.sessions))]
        for i, (session, audio) in enumerate(zip(self.sessions, columns)):
            skip = min(self._skip[i], len(audio))
            self._skip[i] -= skip
            if len(audio) > skip:
                session.feed_audio(audio[skip:])

    @property
    def idle(self) -> bool:
        return all(s.idle for s in self.sessions)

    @property
    def fed_s(self) -> float:
        return max(lead + s.fed_s for lead, s in zip(self._lead_s, self.sessions))

    @property
    def done_s(self) -> float:
        return min(lead + s.done_s for lead, s in zip(self._lead_s, self.sessions))

    def step(self) -> list[tuple[str | None, object]]:
        """One bounded step of every channel that has work."""
        return [e for i, s in enumerate(self.sessions) if not s.idle for e in self._placed(i, s.step())]

    def finish(self) -> list[tuple[str | None, object]]:
        return [e for i, s in enumerate(self.sessions) for e in self._placed(i, s.finish())]

    def _placed(self, i: int, events: Iterable[object]) -> list[tuple[str | None, object]]:
        """Channel i's events labelled, on the meeting's timeline, finals its `keep` drops left out."""
        offset, keep, out = self._offset[i], self._keep[i], []
        for e in events:
            if offset:
                e = _shifted(e, offset)
            if keep is not None and isinstance(e, Final) and (e := keep(e)) is None:
                continue
            out.append((self.labels[i], e))
        return out


def _shifted(event: object, offset: float) -> object:
    """The event `offset` seconds later (a continued channel's session time 0 is its start)."""
    if isinstance(event, Final):
        words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in event.words)
        return replace(event, start=event.start + offset, end=event.end + offset, words=words)
    if isinstance(event, Partial):
        return replace(event, start=event.start + offset, end=event.end + offset)
    return event
