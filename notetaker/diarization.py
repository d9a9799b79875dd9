"""Who speaks, during a recording: one live diarizer per channel of the source (diarize.online),
the speakers of finals (split where the speaker changes, diarize.assign), and the offline pass
that relabels the whole meeting at its end (diarize.offline) in one transaction; and the same
two passes over a stored meeting's kept audio (find_speakers: `notetaker speakers ID --find`,
and recovery after a crash).

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

    from notetaker.config import Settings

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

    def relabel(self, store: SessionStore, session_id: int, fresh: bool = False) -> int:
        """The offline pass: every channel re-clustered, the segments' labels updated in one
        transaction (seq and text untouched); how many segments it labelled. `fresh` (no one
        saw live labels): the segments no turn overlaps lose the labels they had (else they
        keep them), and labels are numbered S1, S2, ... in the order people first speak."""
        from diarize.offline import recluster

        segments = store.segments(session_id)
        mono = len(self.labels) == 1
        labels: dict[int, str | None] = {}
        if fresh:
            labels = {s.seq: None for s in segments if mono or s.channel in self.diarizers}
        for channel, d in self.diarizers.items():
            turns = recluster(d, self.speakers if mono else None, None if mono else self.speakers)
            labels.update(labels_from_spans(segments, turns, None if mono else channel))
        if fresh:
            from diarize.online import label_text

            order = {}
            for seg in sorted(segments, key=lambda s: (s.start_s, s.seq)):
                if labels.get(seg.seq) and labels[seg.seq] not in order:
                    order[labels[seg.seq]] = label_text(len(order) + 1)
            labels = {seq: order.get(label) if label else None for seq, label in labels.items()}
        if labels:
            store.relabel(session_id, labels)
        return sum(1 for label in labels.values() if label)


class FindError(Exception):
    """Speakers cannot be found for this meeting: one line."""


def find_speakers_allowed(store: SessionStore, session_id: int) -> None:
    """FindError (one line) when the meeting's speakers have names: labels found afresh are
    not the old ones, and a name would move to another voice."""
    named = store.speaker_names(session_id)
    if named:
        which = ", ".join(f"{label}={name}" for label, name in sorted(named.items()))
        raise FindError(f"meeting {session_id} has named speakers ({which}); finding speakers again would give "
                        f"those names to other voices: clear them first (`notetaker speakers {session_id} "
                        f"--rename {min(named)}=`)")


def find_speakers(store: SessionStore, reader, session_id: int, folder: Path | None, speakers: int | None = None,
                  on_progress: Callable[[float, float], None] | None = None, models: tuple | None = None
                  ) -> tuple[int, int]:
    """Label a stored meeting's segments from its kept audio (a SpoolReader): the live pass
    and then the offline pass over the whole meeting, as if it had been heard with labels on;
    every segment of the channels heard gets the label of the turns it overlaps most, or
    none, in one transaction. For a meeting recorded with labels off, or recovered after a
    crash. FindError (one line) when names were given (find_speakers_allowed). (labelled
    segments, speakers found); `on_progress(done_s, total_s)` after each block of audio;
    `models`: (segmenter, embedder) already loaded, instead of `folder`'s."""
    find_speakers_allowed(store, session_id)
    from notetaker.spool import store_label

    labels = [store_label(c) for c in reader.channels]
    if models is not None:
        live = LiveSpeakers(*models, labels, speakers)
    else:
        live = load_live(Diarization(True, folder, speakers), labels, realtime=False)
    total = reader.seconds
    done = 0.0
    for block in reader.blocks(0.0, None, 30.0):
        live.feed(block)
        while live.has_work:
            live.step()
        done += len(block) / reader.sample_rate
        if on_progress is not None:
            on_progress(min(done, total), total)
    live.finish()
    labelled = live.relabel(store, session_id, fresh=True)
    return labelled, len(store.speakers(session_id))


def find_in_meeting(settings: Settings, store: SessionStore, session_id: int, count: int | None = None,
                    on_progress: Callable[[float, float], None] | None = None) -> str:
    """find_speakers for a stored meeting from its kept audio, with the models the settings
    point to; what it did in one line. FindError or AudioError (one line) when it cannot:
    the meeting is recording, the models are not pulled, no audio was kept, or its speakers
    have names. `count`: the caller checks it (at most MAX_SPEAKERS)."""
    from notetaker.audio.playback import meeting_audio
    from notetaker.models import diarization_folder

    if store.get_session(session_id).status == "recording":
        raise FindError(f"meeting {session_id} is still recording; its labels come at its end")
    folder = diarization_folder(settings)
    if folder is None:
        raise FindError("finding speakers needs the diarization models: `notetaker models pull diarization`")
    reader = meeting_audio(settings.sessions_dir, session_id)
    return _found_line(*find_speakers(store, reader, session_id, folder, count, on_progress=on_progress))


def _found_line(labelled: int, found: int) -> str:
    return f"{found} speaker{'' if found == 1 else 's'} found; {labelled} segment{'' if labelled == 1 else 's'} labelled"


def recovery_labeller(settings: Settings, store: SessionStore, session_id: int) -> Callable[[object], str] | None:
    """What recovery calls to label a recovered meeting's speakers from its spool
    (recover_session's `label_speakers`): None where labels are off in the config or the
    models are not pulled. A meeting whose speakers have names keeps its labels."""
    if settings.diarize == "off":
        return None
    from notetaker.models import diarization_folder

    folder = diarization_folder(settings)
    if folder is None:
        return None

    def label(reader) -> str:
        try:
            return _found_line(*find_speakers(store, reader, session_id, folder))
        except FindError:  # the only one find_speakers raises: names were given
            return "speaker labels left as they were: the speakers have names"

    return label


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
