"""Speaker turns of one channel while the meeting runs: S1, S2, ... stable through the meeting.

Every hop (HOP_S of new audio) the segmentation model looks at the last WINDOW_S of audio and
says which of up to three local speakers talk in each frame. Each local speaker active long
enough is embedded from the frames where it speaks alone in the window's last few seconds
(embed_span_s: the model can take two alike voices for one local speaker, and the recent
stretch is what the new hop's label is about); the embeddings are matched to the
meeting's speakers (running centroids) by cosine similarity, one to one (two voices of one
window are never one speaker), and a voice like none of them becomes a new speaker. A local
speaker with too little solo speech to embed keeps the speaker it was in the previous window
(by the overlap of their activity). The new hop's turns are then final: `covered_s` says up to
when.

What the offline pass (diarize.offline) needs is kept compactly and never audio: per hop its
activity (ACTIVITY_STEP_S grid, one byte a cell) and each local speaker's live label, and at
most MAX_POINTS embeddings, pooled as the meeting grows (WindowLog): flat memory over hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from diarize.clusters import MAX_POINTS, assign, unit

SAMPLE_RATE = 16_000
LOCAL = 3  # local speakers per window (segmentation-3.0)
DIM = 192  # CAM++ embedding size
ACTIVITY_STEP_S = 0.05  # resolution of the turns and of the activity kept for the offline pass
MERGE_GAP_S = 0.5  # one speaker's turns closer than this are one turn
LOG_BLOCK = 256  # hops per block of the log: it grows a block at a time

Turn = tuple[float, float, str]  # (start_s, end_s, label)


class Segmenter(Protocol):
    frame_step: float
    frame_duration: float

    def __call__(self, window: np.ndarray) -> np.ndarray: ...


class Embedder(Protocol):
    def __call__(self, clip: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DiarizeOptions:
    hop_s: float = 2.5  # turns are this far behind the audio, at most, plus one step's work
    window_s: float = 10.0  # what the segmentation model sees (its training length)
    # Cosine similarity to a speaker's centroid at or above which a voice is theirs. Measured
    # with CAM++ on 3 s clips of 14 espeak-ng voices (bench/diarize.py's meetings): one voice's
    # clips p5 0.65 / p50 0.82, two voices' p50 0.39 / p95 0.60; 0.5 merged 5 voices into 2.
    similar: float = 0.65
    # ... and the offline pass's cut: the average similarity of two groups of single embeddings
    # (0.35 merged nearly everything; 0.6 merged two voices of the monologue meeting).
    offline_similar: float = 0.62
    min_active_s: float = 0.3  # a local speaker active less than this in a window is noise
    min_embed_s: float = 0.5  # solo speech needed for an embedding (CAM++ wants ~0.5-1 s)
    # A local speaker is embedded from its solo speech in the window's last embed_span_s only
    # (the new hop and a little before), not the whole window: the segmentation model often
    # runs two alike voices with a short pause between them into one local speaker, and one
    # embedding of the whole window then mixes them. bench/diarize.py, pooled offline DER of
    # its first nine meetings: whole window 7.8 %, last 4 s 4.0 %, 6 s 7.4 %.
    embed_span_s: float = 4.0
    # The offline pass: a cluster of fewer embeddings than this is too little speech to be a
    # speaker of its own; it joins the most similar larger one (one stray clip of a voice made
    # a speaker of its own: 4.0 % → 3.7 % with 2, 4.2 % with 3, on the same nine).
    offline_min_points: int = 2
    max_speakers: int | None = None  # --speakers N: no more labels than this on this channel
    max_behind_s: float | None = None  # live: further behind than this, the oldest audio is skipped, unlabelled
    keep_turns_s: float | None = None  # live: turns that ended this long ago are dropped (None: all kept)


def label_text(number: int) -> str:
    return f"S{number}"


class LabelBook:
    """Speaker numbers for a whole meeting, shared by its channels' diarizers: each new speaker
    takes the next number, so the mic's and the system's labels never collide (mic S1, S2,
    system S3, mic S4, ...) and `speakers(session_id, label, name)` holds them all."""

    def __init__(self) -> None:
        self.count = 0

    def new(self) -> int:
        self.count += 1
        return self.count


class WindowLog:
    """Per hop: where its region starts, its activity grid, and each local speaker's live label
    number (0: none) and embedding (-1: none, too little solo speech), in fixed-size numpy
    blocks (no per-hop Python objects). The embeddings are bounded: at most MAX_POINTS are
    kept (as sums of unit vectors with their counts); when full, consecutive ones that had
    one live label are pooled in pairs, so a long meeting keeps more, coarser points and its
    memory stays flat. The per-hop part grows ~60 bytes a hop (90 KB an hour)."""

    def __init__(self, cells: int, capacity: int = MAX_POINTS) -> None:
        self.cells = cells  # grid cells per hop region
        self.size = 0
        self._blocks: list[dict[str, np.ndarray]] = []
        self.capacity = capacity
        self.points = np.zeros((capacity, DIM), np.float32)  # sums of unit embeddings
        self.weights = np.zeros(capacity)  # how many embeddings each sum holds
        self.point_live = np.zeros(capacity, np.int32)  # the live label they had
        self.count = 0

    def _block(self) -> dict[str, np.ndarray]:
        return {"start": np.zeros(LOG_BLOCK), "cells": np.zeros(LOG_BLOCK, np.int16),
                "activity": np.zeros((LOG_BLOCK, self.cells, LOCAL), np.uint8),
                "live": np.zeros((LOG_BLOCK, LOCAL), np.int32),
                "point": np.full((LOG_BLOCK, LOCAL), -1, np.int32)}

    def append(self, start: float, activity: np.ndarray, live: np.ndarray, embeddings: np.ndarray,
               embedded: np.ndarray) -> None:
        if self.size % LOG_BLOCK == 0:
            self._blocks.append(self._block())
        b, i = self._blocks[-1], self.size % LOG_BLOCK
        n = len(activity)
        b["start"][i], b["cells"][i] = start, n
        b["activity"][i, :n], b["live"][i] = activity, live
        self.size += 1
        for k in np.flatnonzero(embedded):
            if self.count == self.capacity:
                self._pool()
            self.points[self.count], self.weights[self.count] = embeddings[k], 1.0
            self.point_live[self.count] = live[k]
            b["point"][i, k] = self.count
            self.count += 1

    def _pool(self) -> None:
        """Halve the kept points: consecutive pairs of one live label become one (any
        consecutive pair when labels are too scattered for that to free a quarter)."""
        n = self.count
        new = np.arange(n)
        for same_label in (True, False):
            new, j, last = np.zeros(n, np.int64), -1, {}
            for i in range(n):
                key = int(self.point_live[i]) if same_label else 0
                if key in last:  # the second of a pair: joins the first
                    new[i] = last.pop(key)
                else:
                    j += 1
                    new[i] = last[key] = j
            if j + 1 <= 0.75 * n:
                break
        points, weights, live = np.zeros_like(self.points), np.zeros_like(self.weights), np.zeros_like(self.point_live)
        np.add.at(points, new, self.points[:n])
        np.add.at(weights, new, self.weights[:n])
        live[new] = self.point_live[:n]
        self.points, self.weights, self.point_live, self.count = points, weights, live, j + 1
        for b in self._blocks:
            kept = b["point"] >= 0
            b["point"][kept] = new[b["point"][kept]]

    def column(self, name: str) -> np.ndarray:
        """All hops' values of one field, in order."""
        if not self._blocks:
            return self._block()[name][:0]
        return np.concatenate([b[name] for b in self._blocks])[: self.size]

    @property
    def nbytes(self) -> int:
        arrays = [a for b in self._blocks for a in b.values()] + [self.points, self.weights, self.point_live]
        return sum(a.nbytes for a in arrays)


class OnlineDiarizer:
    """One channel's live diarization: `feed` audio (cheap), `step` while `ready` (one hop of
    model work each), `finish` at the end; `turns` so far, final up to `covered_s`."""

    def __init__(self, segmenter: Segmenter, embedder: Embedder, book: LabelBook | None = None,
                 options: DiarizeOptions = DiarizeOptions()) -> None:
        self.segmenter, self.embedder = segmenter, embedder
        self.book = book or LabelBook()
        self.options = options
        self.turns: list[Turn] = []
        self.log = WindowLog(math.ceil(options.hop_s / ACTIVITY_STEP_S - 1e-9))
        self.numbers: list[int] = []  # the label numbers this channel made, in order
        self.skipped_s = 0.0  # audio never labelled: the diarizer fell further behind than max_behind_s
        self._sums: dict[int, np.ndarray] = {}  # label number → sum of its unit embeddings
        self._audio = np.zeros(0, np.float32)  # samples from _audio_at on
        self._audio_at = 0  # sample index of _audio[0]
        self._fed = 0
        self._covered = 0  # samples with final turns
        self._prev: tuple[float, np.ndarray, np.ndarray] | None = None  # last window: t0, activity, numbers

    # -- audio in ----------------------------------------------------------------------------
    def feed(self, pcm: np.ndarray) -> None:
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, pcm])
        self._fed += len(pcm)

    @property
    def fed_s(self) -> float:
        return self._fed / SAMPLE_RATE

    @property
    def covered_s(self) -> float:
        """Turns up to here are final (the live labels of later audio are not known yet)."""
        return self._covered / SAMPLE_RATE

    @property
    def ready(self) -> bool:
        return self._fed - self._covered >= self._hop

    @property
    def _hop(self) -> int:
        return int(round(self.options.hop_s * SAMPLE_RATE))

    # -- work --------------------------------------------------------------------------------
    def step(self) -> list[Turn]:
        """One hop: the turns it made final (nothing when no hop of audio is waiting)."""
        if not self.ready:
            return []
        most = self.options.max_behind_s
        behind = self._fed - self._covered - int(most * SAMPLE_RATE) if most is not None else 0
        if behind > 0:  # bounded lag and memory: skip the oldest audio rather than fall further behind
            self.skipped_s += behind / SAMPLE_RATE
            self._covered += behind
            self._prev = None
        return self._window(self._covered + self._hop)

    def finish(self) -> list[Turn]:
        """Every hop left, and the last part hop."""
        out = []
        while self.ready:
            out += self.step()
        if self._fed > self._covered:
            out += self._window(self._fed)
        return out

    def _window(self, end: int) -> list[Turn]:
        win = int(round(self.options.window_s * SAMPLE_RATE))
        start = end - win
        audio = self._audio[max(0, start - self._audio_at): end - self._audio_at]
        if len(audio) < win:  # the meeting's first seconds: silence before it
            audio = np.concatenate([np.zeros(win - len(audio), np.float32), audio])
        t0 = start / SAMPLE_RATE
        act = np.asarray(self.segmenter(audio), np.float32)[:, :LOCAL] > 0.5
        act = np.pad(act, ((0, 0), (0, LOCAL - act.shape[1])))
        numbers, embeddings, embedded = self._label(audio, act, t0)
        self._prev = (t0, act, numbers)
        region = self._covered / SAMPLE_RATE
        cells = max(1, int(math.ceil((end - self._covered) / SAMPLE_RATE / ACTIVITY_STEP_S - 1e-9)))
        grid = self._grid(t0, act, region, cells)
        grid[:, numbers == 0] = False
        self.log.append(region, grid.astype(np.uint8), numbers, embeddings, embedded)
        self._covered = end
        keep_from = end + self._hop - win  # what the next window still needs
        if keep_from > self._audio_at:
            self._audio = self._audio[keep_from - self._audio_at:]
            self._audio_at = keep_from
        new = grid_turns(region, grid, [label_text(n) if n else "" for n in numbers], end / SAMPLE_RATE)
        for turn in new:
            self._add_turn(turn)
        if self.options.keep_turns_s is not None:  # a live meeting needs only its recent turns
            old = self.covered_s - self.options.keep_turns_s
            del self.turns[:next((i for i, t in enumerate(self.turns) if t[1] >= old), len(self.turns))]
        return new

    def _frame_times(self, t0: float, frames: int) -> np.ndarray:
        seg = self.segmenter
        first = getattr(seg, "frame_start", 0.0) + seg.frame_duration / 2
        return t0 + first + seg.frame_step * np.arange(frames)

    def _grid(self, t0: float, act: np.ndarray, region: float, cells: int) -> np.ndarray:
        """The window's activity on the ACTIVITY_STEP_S grid of the new region (nearest frame)."""
        centres = region + ACTIVITY_STEP_S * (np.arange(cells) + 0.5)
        first = self._frame_times(t0, 1)[0]
        k = np.clip(np.round((centres - first) / self.segmenter.frame_step).astype(int), 0, len(act) - 1)
        return act[k].copy()

    # -- who is who ----------------------------------------------------------------------------
    def _label(self, audio: np.ndarray, act: np.ndarray, t0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each local speaker's label number (0: none), embedding and whether it has one."""
        step = self.segmenter.frame_step
        numbers = np.zeros(LOCAL, np.int32)
        embeddings = np.zeros((LOCAL, DIM), np.float32)
        embedded = np.zeros(LOCAL, bool)
        recent = self._frame_times(t0, len(act)) >= t0 + len(audio) / SAMPLE_RATE - self.options.embed_span_s
        solo = act & (act.sum(1, keepdims=True) == 1) & recent[:, None]
        active = [k for k in range(LOCAL) if act[:, k].sum() * step >= self.options.min_active_s]
        for k in active:
            if solo[:, k].sum() * step >= self.options.min_embed_s:
                embeddings[k] = unit(self.embedder(self._clip(audio, solo[:, k])))
                embedded[k] = True
        voiced = [k for k in active if embedded[k]]
        known = list(self._sums)
        if voiced and known:
            sims = embeddings[voiced] @ unit(np.stack([self._sums[n] for n in known])).T
            for r, c in assign(sims, self.options.similar):
                numbers[voiced[r]] = known[c]
            for k in voiced:  # no known voice is like it: someone new, if the count allows
                if not numbers[k]:
                    numbers[k] = self._new_or_nearest(embeddings[k], numbers)
        else:
            for k in voiced:
                numbers[k] = self._new_or_nearest(embeddings[k], numbers)
        for k in voiced:
            if numbers[k]:
                self._sums[numbers[k]] = self._sums[numbers[k]] + embeddings[k]
        for k in active:
            if not embedded[k]:
                numbers[k] = self._stitched(act[:, k], numbers, t0)
        return numbers, embeddings, embedded

    def _new_or_nearest(self, embedding: np.ndarray, taken: np.ndarray) -> int:
        cap = self.options.max_speakers
        if cap is None or len(self.numbers) < cap:
            n = self.book.new()
            self.numbers.append(n)
            self._sums[n] = np.zeros(DIM, np.float32)
            return n
        free = [n for n in self.numbers if n not in taken]  # all labels made: the nearest not in this window
        if not free:
            return 0
        sims = unit(np.stack([self._sums[n] for n in free])) @ embedding
        return free[int(np.argmax(sims))]

    def _stitched(self, column: np.ndarray, taken: np.ndarray, t0: float) -> int:
        """The label of the previous window's local speaker whose activity overlaps this one's
        most in the audio both windows saw (0: none, or taken in this window)."""
        if self._prev is None:
            return 0
        before, act, numbers = self._prev
        first = self._frame_times(before, 1)[0]
        mine = self._frame_times(t0, len(column))
        k = np.round((mine - first) / self.segmenter.frame_step).astype(int)
        inside = (k >= 0) & (k < len(act))
        overlap = [(int((column[inside] & act[k[inside], j]).sum()), int(numbers[j])) for j in range(LOCAL)]
        best, n = max(overlap)
        return n if best and n and n not in taken else 0

    def _clip(self, audio: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The window's samples in the given frames (each frame_step long around its centre)."""
        seg = self.segmenter
        t = np.arange(len(audio)) / SAMPLE_RATE
        first = getattr(seg, "frame_start", 0.0) + seg.frame_duration / 2
        k = np.clip(np.floor((t - first) / seg.frame_step + 0.5).astype(int), 0, len(frames) - 1)
        return audio[frames[k]]

    def _add_turn(self, turn: Turn) -> None:
        """Append a turn, or extend the same speaker's turn it follows closely (one of the
        last few: turns arrive in time order, at most LOCAL a hop)."""
        start, end, label = turn
        for i in range(len(self.turns) - 1, max(-1, len(self.turns) - 2 * LOCAL - 1), -1):
            s, e, who = self.turns[i]
            if who == label and start - e <= MERGE_GAP_S:
                self.turns[i] = (s, max(end, e), label)
                return
        self.turns.append(turn)


def grid_turns(start: float, grid: np.ndarray, labels: list[str], end: float | None = None) -> list[Turn]:
    """Turns from an activity grid (cells of ACTIVITY_STEP_S from `start`, one column per
    local speaker, `labels[k]` "" for none), clipped at `end`."""
    out = []
    for k, label in enumerate(labels):
        if not label:
            continue
        col = np.concatenate([[False], grid[:, k].astype(bool), [False]])
        edges = np.flatnonzero(col[1:] != col[:-1])
        for a, b in zip(edges[::2], edges[1::2]):
            s, e = start + a * ACTIVITY_STEP_S, start + b * ACTIVITY_STEP_S
            if end is not None:
                e = min(e, end)
            if e > s:
                out.append((round(float(s), 3), round(float(e), 3), label))
    return sorted(out)
