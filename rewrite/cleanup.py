"""Cleanup of finals: punctuation, casing, fillers and false starts, and nothing else.

Segments go to the model in batches that fit its context (prompt and reply both budgeted
with the backend's own token count); the reply is read back by segment id. A cleaned line
is kept only if it is faithful to the raw one: every content word it has was said, and
most of what was said is still there. Where it is not, where its id is missing, or where
the reply cannot be read, the segment keeps its raw text (which is stored either way).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewrite.base import ChatModel, Segment
from rewrite.prompts import cleanup_line, cleanup_messages, prompt_tokens

MAX_BATCH = 24  # segments per request: long batches make models drop or merge lines
REPLY_FACTOR = 1.25  # reply budget per prompt token of the lines (punctuation, casing)
REPLY_SLACK = 16
MIN_KEPT = 0.5  # a cleaned line keeps at least this share of the raw line's content words

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "eh", "hmm", "hm", "mm", "mhm", "like"})
FILLER_PHRASES = (("you", "know"), ("i", "mean"))

# Scripts written without spaces between words: compared character by character.
_NO_SPACE = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f])")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_REPLY_LINE = re.compile(r"^\s*(?:[-*]\s*)?\[#(\d+)\]\s?(.*)$")


def words(text: str) -> list[str]:
    """Lowercased words, punctuation stripped (`don't` stays one word, `follow-up` is two)."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").casefold()
    return _WORD.findall(_NO_SPACE.sub(r" \1 ", text))


def content_words(text: str) -> list[str]:
    """`words(text)` without fillers (um, uh, er, ah, hmm, "you know", "I mean", "like")."""
    ws = words(text)
    out: list[str] = []
    i = 0
    while i < len(ws):
        if tuple(ws[i : i + 2]) in FILLER_PHRASES:
            i += 2
            continue
        if ws[i] not in FILLERS:
            out.append(ws[i])
        i += 1
    return out


def is_faithful(raw: str, cleaned: str) -> bool:
    """True when `cleaned` adds no word that `raw` does not have (case, punctuation,
    fillers, repeats and false starts may change) and keeps most of what was said."""
    said = set(words(raw))
    new = content_words(cleaned)
    if any(w not in said for w in new):
        return False
    kept = set(content_words(raw))
    return not kept or len(kept & set(new)) >= MIN_KEPT * len(kept)


def parse_reply(reply: str) -> dict[int, str]:
    """Cleaned text by segment id from `[#id] text` lines; a line that does not start with
    an id continues the previous one; the first reply for an id wins."""
    out: dict[int, str] = {}
    current: int | None = None
    for line in reply.splitlines():
        m = _REPLY_LINE.match(line)
        if m:
            current = int(m.group(1))
            if current in out:
                current = None  # a repeated id: keep the first, ignore this one's lines
            else:
                out[current] = m.group(2).strip()
        elif current is not None and line.strip():
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def clean_segments(backend: ChatModel, segments: Sequence[Segment], max_batch: int = MAX_BATCH,
                   on_progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Cleaned text for each segment, in order; the raw text where cleanup was unfaithful,
    missing or impossible (a blank segment, or one too long for the context on its own).
    `on_progress(done, total)` follows the non-blank segments through the batches."""
    out = [s.text for s in segments]
    todo = [i for i, s in enumerate(segments) if s.text.strip()]
    done = 0
    for batch in _batches(backend, [segments[i] for i in todo], max_batch):
        if batch.fits:
            reply = "".join(backend.complete(cleanup_messages(batch.segments), _reply_budget(backend, batch.segments)))
            cleaned = parse_reply(reply)
            for k, seg in enumerate(batch.segments):
                text = cleaned.get(seg.id, "")
                if text and is_faithful(seg.text, text):
                    out[todo[done + k]] = text
        done += len(batch.segments)
        if on_progress is not None:
            on_progress(done, len(todo))
    return out


@dataclass(frozen=True)
class _Batch:
    segments: list[Segment]
    fits: bool = True  # False: one segment too long for the context on its own


def _reply_budget(backend: ChatModel, batch: Sequence[Segment]) -> int:
    lines = sum(backend.count_tokens(cleanup_line(s.id, s.text)) for s in batch)
    return math.ceil(REPLY_FACTOR * lines) + REPLY_SLACK


def _fits(backend: ChatModel, batch: Sequence[Segment]) -> bool:
    return prompt_tokens(backend, cleanup_messages(batch)) + _reply_budget(backend, batch) \
        <= backend.capabilities.context_tokens


def _batches(backend: ChatModel, segments: Sequence[Segment], max_batch: int) -> list[_Batch]:
    """Consecutive batches whose prompt and reply budget fit the context, greedily by
    per-line counts, each then checked on the whole prompt."""
    context = backend.capabilities.context_tokens
    fixed = prompt_tokens(backend, cleanup_messages([]))
    batches: list[_Batch] = []
    batch: list[Segment] = []
    used = 0
    for seg in segments:
        n = backend.count_tokens(cleanup_line(seg.id, seg.text)) + 1  # + the newline
        total = fixed + used + n + math.ceil(REPLY_FACTOR * (used + n)) + REPLY_SLACK
        if batch and (len(batch) >= max_batch or total > context):
            batches += _verified(backend, batch)
            batch, used = [], 0
        batch.append(seg)
        used += n
    if batch:
        batches += _verified(backend, batch)
    return batches


def _verified(backend: ChatModel, batch: list[Segment]) -> list[_Batch]:
    """The batch, halved where the summed per-line estimate fell short of the real count."""
    if _fits(backend, batch):
        return [_Batch(batch)]
    if len(batch) == 1:
        return [_Batch(batch, fits=False)]
    half = len(batch) // 2
    return _verified(backend, batch[:half]) + _verified(backend, batch[half:])
