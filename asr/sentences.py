"""Finals a person can read at a glance: a decoded segment that runs across a pause between
two utterances, or on for longer than MAX_FINAL_S, is split at its sentence ends.

Whisper writes segments, not turns: across a short pause it may join the end of one speaker's
turn to the start of the next ("… See you next week. Hi all. Welcome to …"). The VAD knows
where the pauses are; the text knows where sentences end. A split goes at the sentence end
whose place in the text (by characters, over the segment's speech) is nearest the pause, and
the pause itself is left out of both parts. Only the presentation of finals changes: the text
is the same, word for word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from asr.base import SAMPLE_RATE, Final
from asr.vad import as_frames, frame_db

MAX_FINAL_S = 15.0  # longer than this, a segment holding several sentences is split
NEAR_S = 1.5  # a sentence end this close (by its place in the text) to a pause is split there
NEAR_CLAUSE_S = 0.6  # ... a comma only this close
PAUSE_S = 0.25  # quiet this long inside an utterance is a pause (the VAD ends one only after 0.6 s)
PAUSE_DB = 8.0  # above the span's own quietest frames and still quiet
FRAME_S = 0.03
_END = re.compile(r"(?<=[.?!…])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_CLAUSE = re.compile(r"(?<=[,;])\s+(?=\S)")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof st jr sr vs etc e.g i.e no approx dept".split())

Piece = tuple[float, float, str]  # start, end, text


def sentence_ends(text: str) -> list[int]:
    """Where each sentence but the last ends in `text` (indices of the whitespace after it);
    "Mr. Dashwood" and "e.g. Friday" are not sentence ends."""
    out = []
    for m in _END.finditer(text):
        word = text[: m.start()].rsplit(None, 1)[-1].rstrip("\"')]").rstrip(".?!…").lower()
        if word in _ABBREVIATIONS or len(word) == 1 and word.isalpha():
            continue
        out.append(m.start())
    return out


def clause_ends(text: str) -> list[int]:
    """Where a clause ends at a comma or semicolon (Whisper often writes "Thanks, great, that's
    it" for what were two turns): the index of the whitespace after it."""
    return [m.start() for m in _CLAUSE.finditer(text)]


def readable(start: float, end: float, text: str, pauses: Sequence[tuple[float, float]]) -> list[Piece]:
    """`text` spoken from `start` to `end`, split into sentences (or groups of them) at the
    pauses it spans (stream times (from, to) where nobody spoke) — at a comma only where one
    falls right at the pause — and then wherever a part is longer than MAX_FINAL_S. One
    piece when there is nothing to split at."""
    sentences, clauses = sentence_ends(text), clause_ends(text)
    inside = [(a, b) for a, b in pauses if start < a and b < end and a < b]
    if not (sentences or clauses) or (not inside and end - start <= MAX_FINAL_S):
        return [(start, end, text)]
    speech = _speech(start, end, inside)
    total = sum(b - a for a, b in speech) or 1e-9

    def heard(i: int) -> float:  # where text position i is heard, by characters over the speech
        return _time_at(speech, total * (i / len(text)))

    cuts: dict[int, tuple[float, float]] = {}  # text position → (part ends, next starts)
    for a, b in inside:
        for ends, near in ((sentences, NEAR_S), (clauses, NEAR_CLAUSE_S)):
            if not ends:
                continue
            i = min(ends, key=lambda j: min(abs(heard(j) - a), abs(heard(j) - b)))
            if min(abs(heard(i) - a), abs(heard(i) - b)) <= near:
                cuts.setdefault(i, (a, b))
                break
    pieces = _cut(start, end, text, sorted(cuts), cuts)
    out: list[Piece] = []
    for p in pieces:
        out += _shorten(p)
    return out


def _cut(start: float, end: float, text: str, at: list[int], cuts: dict[int, tuple[float, float]]) -> list[Piece]:
    pieces, s, i = [], start, 0
    for k in at:
        a, b = cuts[k]
        pieces.append((s, a, text[i:k].strip()))
        s, i = b, k
    pieces.append((s, end, text[i:].strip()))
    return [p for p in pieces if p[2]]


def _shorten(piece: Piece) -> list[Piece]:
    """A part over MAX_FINAL_S halved at its sentence end nearest the middle, and so on."""
    start, end, text = piece
    ends = sentence_ends(text)
    if end - start <= MAX_FINAL_S or not ends:
        return [piece]
    k = min(ends, key=lambda i: abs(i - len(text) / 2))
    t = start + (end - start) * k / len(text)
    return _shorten((start, t, text[:k].strip())) + _shorten((t, end, text[k:].strip()))


def _speech(start: float, end: float, pauses: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, s = [], start
    for a, b in sorted(pauses):
        out.append((s, a))
        s = b
    out.append((s, end))
    return [(a, b) for a, b in out if b > a]


def _time_at(speech: list[tuple[float, float]], offset: float) -> float:
    """The stream time `offset` seconds of speech into `speech` (pauses skipped)."""
    for a, b in speech:
        if offset <= b - a:
            return a + offset
        offset -= b - a
    return speech[-1][1]


def gaps_between(utterances: Sequence) -> list[tuple[float, float]]:
    """The pauses between consecutive utterances (anything with .start and .end, in order)."""
    return [(a.end, b.start) for a, b in zip(utterances, utterances[1:]) if b.start > a.end]


def reading_finals(start: float, end: float, text: str, flags: tuple[str, ...],
                   gaps: Sequence[tuple[float, float]], audio: Callable[[float, float], np.ndarray]) -> list[Final]:
    """The finals for text decoded from `start` to `end`, split for reading (`readable`) at the
    `gaps` between utterances and, where the text has a sentence or clause end to split at, at
    the quiet stretches inside it (`audio(start, end)`: the stream's samples then)."""
    pauses = list(gaps)
    if sentence_ends(text) or clause_ends(text):
        pauses += quiet_stretches(audio(start, end), SAMPLE_RATE, start)
    return [Final(t, round(a, 3), round(max(a, b), 3), flags=flags) for a, b, t in readable(start, end, text, pauses)]


def quiet_stretches(audio: np.ndarray, rate: int, start: float) -> list[tuple[float, float]]:
    """Pauses inside `audio` (which begins at stream time `start`): runs of PAUSE_S or more of
    frames within PAUSE_DB of its quietest tenth. Word gaps are shorter; sentence ends and
    turn changes are not."""
    energy = frame_db(as_frames(audio, int(FRAME_S * rate)))
    n = len(energy)
    if n < 3:
        return []
    quiet = energy < np.percentile(energy, 10) + PAUSE_DB
    out, i = [], 0
    while i < n:
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < n and quiet[j]:
            j += 1
        if (j - i) * FRAME_S >= PAUSE_S and i > 0 and j < n:  # inside, not at either edge
            out.append((start + i * FRAME_S, start + j * FRAME_S))
        i = j
    return out
