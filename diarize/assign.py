"""Speakers for finals: a final takes the speaker whose turns overlap it most, and a final that
runs across a change of speaker (each side MIN_SIDE_S or more) is split there, at the sentence
or clause end nearest the change (asr.sentences.readable: the words stay the same)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from asr.base import Final
from asr.sentences import readable

from diarize.online import Turn

MIN_SIDE_S = 1.0  # a speaker this long on each side of a change makes the final split there
CHANGE_S = 0.01  # the change as readable()'s "pause": a split puts the two parts this far apart


def speaker_of(start: float, end: float, turns: Sequence[Turn]) -> str | None:
    """The label whose turns overlap start..end most (None: no turn does)."""
    overlap: dict[str, float] = {}
    for s, e, label in turns:
        o = min(end, e) - max(start, s)
        if o > 0:
            overlap[label] = overlap.get(label, 0.0) + o
    return max(sorted(overlap), key=overlap.__getitem__) if overlap else None


def changes(start: float, end: float, turns: Sequence[Turn], min_side: float = MIN_SIDE_S) -> list[float]:
    """Times inside start..end where the speaker changes, each side held MIN_SIDE_S or more:
    the turns clipped to the span, runs of one speaker joined, runs shorter than that left
    out (a "yes" inside someone's sentence is no change), and each change put midway across
    the gap between the two speakers' runs."""
    runs: list[list] = []  # [start, end, label, talk_s]
    for s, e, label in sorted(t for t in turns if t[1] > start and t[0] < end):
        s, e = max(s, start), min(e, end)
        if runs and runs[-1][2] == label:
            runs[-1][1], runs[-1][3] = max(e, runs[-1][1]), runs[-1][3] + e - s
        else:
            runs.append([s, e, label, e - s])
    sides: list[list] = []
    for run in runs:
        if run[3] < min_side:
            continue
        if sides and sides[-1][2] == run[2]:
            sides[-1][1] = max(run[1], sides[-1][1])
        else:
            sides.append(run)
    return [round((a[1] + b[0]) / 2, 3) for a, b in zip(sides, sides[1:])]


def split_by_speaker(final: Final, turns: Sequence[Turn], min_side: float = MIN_SIDE_S) -> list[tuple[Final, str | None]]:
    """The final as one or more finals, each with its speaker: split at the sentence (or
    clause) end nearest each change of speaker, where the text has one near enough; the
    parts keep the final's flags, not its word timings (they no longer line up)."""
    at = changes(final.start, final.end, turns, min_side)
    pieces = readable(final.start, final.end, final.text, [(t, t + CHANGE_S) for t in at]) if at else []
    if len(pieces) <= 1:
        return [(final, speaker_of(final.start, final.end, turns))]
    parts = [replace(final, text=text, start=round(s, 3), end=round(max(s, e), 3), words=())
             for s, e, text in pieces]
    return [(p, speaker_of(p.start, p.end, turns)) for p in parts]
