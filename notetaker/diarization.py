"""Who speaks, during a recording: one live diarizer per channel of the source (diarize.online),
the speakers of finals (split where the speaker changes, diarize.assign), and the offline pass
that relabels the whole meeting at its end (diarize.offline) in one transaction.

The mic and system channels are a prior: they have separate diarizers whose labels come from
one LabelBook, so they never share a label (mic S1, S2; system S3; ...) unless a person merges
them. All model work runs on the recorder's compute thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.base import Final
from storage import SessionStore
from storage.speakers import labels_from_spans

if TYPE_CHECKING:  # the diarize package loads with the first LiveSpeakers: the CLI starts without it
    from diarize.online import DiarizeOptions, Turn

MAX_SPEAKERS = 20  # --speakers N: more than this is a typo, not a meeting
LIVE_BEHIND_S = 30.0  # live, the diarizer skips audio rather than fall further behind than this
RECENT_S = 120.0  # a final is matched against the turns of this much audio before it
KEEP_TURNS_S = 600.0  # live turns kept (for finals held or long): older ones are in the offline pass's log


@dataclass(frozen=True)
class Diarization:
    """Whether speakers are found, and how: the plan's answer for one meeting."""

    on: bool
    folder: Path | None = None  # the pulled models
    speakers: int | None = None  # --speakers N
    off_reason: str | None = None  # one line: why not (said once when it matters)


class LiveSpeakers:
    """The diarizers of one recording, stepped as one: `feed` blocks as the ASR gets them,
    `step` a hop of the channel furthest behind, `assign` speakers to a final, `relabel`
    the meeting at its end."""

    def __init__(self, segmenter, embedder, labels: Sequence[str | None], speakers: int | None = None,
                 realtime: bool = False, options: DiarizeOptions | None = None) -> None:
        from diarize.online import DiarizeOptions, LabelBook, OnlineDiarizer

        options = options or DiarizeOptions()
        self.labels = tuple(labels)
        self.speakers = speakers
        self.book = LabelBook()
        # --speakers N is the meeting's count: exact on one channel, a cap on each of two
        options = replace(options, max_speakers=speakers, max_behind_s=LIVE_BEHIND_S if realtime else None,
                          keep_turns_s=KEEP_TURNS_S)
        self.diarizers = {label: OnlineDiarizer(segmenter, embedder, self.book, options) for label in self.labels}

    def feed(self, block: np.ndarray) -> None:
        columns = [block] if block.ndim == 1 else [block[:, i] for i in range(len(self.labels))]
        for label, audio in zip(self.labels, columns):
            self.diarizers[label].feed(audio)

    @property
    def has_work(self) -> bool:
        return any(d.ready for d in self.diarizers.values())

    def step(self) -> list[Turn]:
        ready = [d for d in self.diarizers.values() if d.ready]
        return min(ready, key=lambda d: d.covered_s).step() if ready else []

    def finish(self) -> None:
        for d in self.diarizers.values():
            d.finish()

    def covered_s(self, channel: str | None) -> float:
        return self.diarizers[channel].covered_s

    def assign(self, channel: str | None, final: Final) -> list[tuple[Final, str | None]]:
        """The final with its speaker, or its parts with theirs where the speaker changes."""
        from diarize.assign import split_by_speaker

        turns = self.diarizers[channel].turns
        i = len(turns)
        while i and turns[i - 1][1] > final.start - RECENT_S:  # turns come in time order
            i -= 1
        return split_by_speaker(final, turns[i:])

    def relabel(self, store: SessionStore, session_id: int) -> int:
        """The offline pass: every channel re-clustered, the segments' labels updated in one
        transaction (seq and text untouched); how many segments it labelled."""
        from diarize.offline import recluster

        segments = store.segments(session_id)
        mono = len(self.labels) == 1
        labels: dict[int, str] = {}
        for channel, d in self.diarizers.items():
            turns = recluster(d, self.speakers if mono else None, None if mono else self.speakers)
            labels.update(labels_from_spans(segments, turns, None if mono else channel))
        return store.relabel(session_id, labels) if labels else 0


def load_live(diarization: Diarization, labels: Sequence[str | None], realtime: bool) -> LiveSpeakers:
    """The models from the pulled folder, loaded on the calling thread (the compute thread)."""
    from diarize.embedding import Embedder
    from diarize.segmentation import Segmenter

    folder = diarization.folder
    return LiveSpeakers(Segmenter.load(folder), Embedder.load(folder), labels, diarization.speakers, realtime)


def speakers_factory(diarization: Diarization | None, realtime: bool
                     ) -> Callable[[Sequence[str | None]], LiveSpeakers] | None:
    """What a recorder's `speakers=` is made from once its source's channels are known (None:
    no speakers for this meeting)."""
    if diarization is None or not diarization.on:
        return None
    return lambda labels: load_live(diarization, labels, realtime)
