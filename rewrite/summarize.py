"""Summaries of meetings of any length, every decision and action item grounded in segments.

The transcript goes to the model as `[#n mm:ss] text` lines, `n` being each segment's id
as the caller gives it (the app gives the segment's number in its meeting, which every
transcript view shows, so citations can be followed). When it fits the model's
real context with the template and the reply budget, one pass writes the summary. When it
does not, it is cut on segment boundaries into chunks that fit (by the backend's own token
count), each chunk becomes notes with citations (map), notes that together still do not
fit are condensed in rounds (merge), and the notes become the summary (reduce). Only the
final pass is streamed, checked as it streams: what is streamed is what is kept. The
person's own notes, when given, go into the final pass (one pass or reduce) as their
emphasis; they have no ids and are never cited. Citations to segments that do not exist are removed and counted;
whatever had to be cut (a segment too long for any request, a reply that hit its limit)
is said in a note at the end of the summary.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rewrite.base import ChatModel, Message, Note, RewriteError, Segment
from rewrite.prompts import (
    FIELDS,
    Template,
    clock,
    default_template,
    field_text,
    map_messages,
    merge_messages,
    own_notes_block,
    own_notes_line,
    prompt_tokens,
    reduce_messages,
    summary_messages,
    transcript_line,
)

MIN_REPLY = 64  # tokens: below this a context is too small to summarize in
LINE_SLACK = 16  # tokens kept free in a chunk for the per-line estimate's error
NOTES_HEADER = 24  # tokens allowed for a notes block's "Parts 3-7 (12:00-58:30):" line
OWN_NOTES_SHARE = 8  # the person's own notes take at most 1/8 of the context; the rest is left out, and said


class Citation(NamedTuple):
    bullet: str
    segment_ids: tuple[int, ...]


@dataclass(frozen=True)
class SummaryResult:
    markdown: str  # citations checked, notes on anything cut at the end
    citations: list[Citation]  # every bullet (or paragraph) that cites, in order
    removed_citations: int  # citations to segments not in the transcript, removed
    chunks: int  # map chunks (1: the transcript fit in one pass)
    truncated_segments: int  # segments too long for one request: split, and noted
    merge_rounds: int = 0  # rounds of condensing notes before the reduce
    cut_replies: int = 0  # replies (notes or the summary) that hit their token limit
    own_notes_left_out: int = 0  # the person's notes that did not fit the model's context


# -- citations -------------------------------------------------------------------------

_RANGE = r"(?:\s*[-\u2013\u2014]\s*#?(\d+))?"  # "-#14", "–14"
_GROUP = re.compile(r"[ \t]*\[\s*#\d+" + _RANGE + r"(?:\s*[,;]\s*#?\d+" + _RANGE + r")*\s*\]")
_ITEM_RE = re.compile(r"#?(\d+)" + _RANGE)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")


class _Checker:
    """Removes citations to ids not in `valid` from text (a line, or a piece of one that no
    citation crosses), counting them in `removed` and collecting the ids kept."""

    def __init__(self, valid_ids: Iterable[int]) -> None:
        self.valid = sorted(set(valid_ids))
        self.valid_set = set(self.valid)
        self.removed = 0

    def __call__(self, text: str, ids: list[int] | None = None) -> str:
        return _GROUP.sub(functools.partial(self._fix, ids=[] if ids is None else ids), text)

    def _fix(self, m: re.Match[str], ids: list[int]) -> str:
        group = m.group(0)
        items = list(_ITEM_RE.finditer(group))
        kept: list[str] = []
        for item in items:
            a, b = int(item.group(1)), item.group(2)
            lo, hi = sorted((a, a if b is None else int(b)))
            if lo in self.valid_set and hi in self.valid_set:
                kept.append(f"#{lo}" if lo == hi else f"#{lo}-#{hi}")
                ids.extend(self.valid[bisect.bisect_left(self.valid, lo) : bisect.bisect_right(self.valid, hi)])
            else:
                self.removed += 1
        if len(kept) == len(items):
            return group
        lead = group[: len(group) - len(group.lstrip(" \t"))]
        return f"{lead}[{', '.join(kept)}]" if kept else ""


def check_citations(markdown: str, valid_ids: Iterable[int]) -> tuple[str, list[Citation], int]:
    """Remove citations to ids not in `valid_ids` and read the rest.

    Handles `[#12]`, `[#12, #15]`, `[#12-#14]` (the valid ids in the range; removed when an
    end is not valid). Returns the markdown with bad citations removed (a group left empty
    goes entirely), one Citation per bullet or paragraph that still cites (its text without
    the citations; ids in order of first mention), and how many citations were removed."""
    check = _Checker(valid_ids)
    out_lines: list[str] = []
    blocks: list[tuple[list[str], list[int]]] = []  # (text lines, cited ids) per bullet or paragraph
    block: tuple[list[str], list[int]] | None = None
    for line in markdown.splitlines():
        heading = bool(_HEADING.match(line))
        if not line.strip() or heading or _BULLET.match(line):
            block = None  # a bullet, a heading or a blank line ends what came before
        ids: list[int] = []
        fixed = check(line, ids)
        out_lines.append(fixed)
        if line.strip():
            if block is None:
                block = ([], [])
                blocks.append(block)
            block[0].append(_GROUP.sub("", fixed))
            block[1].extend(ids)
            if heading:
                block = None
    citations = []
    for text_lines, cited in blocks:
        if cited:
            text = _BULLET.sub("", " ".join(" ".join(text_lines).split()))
            citations.append(Citation(text.strip(), tuple(dict.fromkeys(cited))))
    return "\n".join(out_lines), citations, check.removed


class _CheckedStream:
    """A reply checked as it streams, so what is shown is what is kept: bad citations
    removed line by line (a piece of a line is let out once no citation can cross its end),
    blank lines at either end and a ``` fence around the whole reply left out. The text fed
    out, joined, is the checked reply."""

    def __init__(self, check: _Checker) -> None:
        self.check = check
        self.line = ""  # the line being written
        self.sent = 0  # how much of it has been let out (checked)
        self.open = False  # some of it has been let out
        self.held: list[str] = []  # blank lines (a fence's closing line) waiting for more text
        self.started = self.fenced = False
        self.text = ""  # all that was let out

    def feed(self, piece: str) -> str:
        out = []
        self.line += piece
        while "\n" in self.line:
            line, rest = self.line.split("\n", 1)
            self.line = line
            out.append(self._take(complete=True))
            self.line, self.sent, self.open = rest, 0, False
        out.append(self._take(complete=False))
        return self._out(out)

    def close(self) -> str:
        out = [self._take(complete=True)]
        self.line, self.sent, self.open, self.held = "", 0, False, []
        return self._out(out)

    def _out(self, parts: list[str]) -> str:
        text = "".join(parts)
        self.text += text
        return text

    def _take(self, complete: bool) -> str:
        line, out = self.line, ""
        if not self.open:
            s = line.strip()
            if not complete and (not s or s.startswith("`")):
                return ""  # could still be a blank line or a fence
            if complete and not s:
                if self.started:
                    self.held.append("")
                return ""
            if complete and not self.started and s.startswith("```") and " " not in s:
                self.fenced = True
                return ""
            if complete and self.fenced and s == "```":
                self.held.append(line)
                return ""
            out = ("\n" if self.started else "") + "".join(h + "\n" for h in self.held)
            if not self.started:  # the reply starts at its first word
                self.sent = len(line) - len(line.lstrip())
            self.held, self.started, self.open = [], True, True
        cut = len(line) if complete else _safe_end(line)
        if cut > self.sent:
            out += self.check(line[self.sent : cut])
            self.sent = cut
        return out


class _Repeats:
    """Small models loop: the same bullet (or two in turn) again and again until the token
    limit. A line equal to one of the two lines before it under the same heading (blank lines
    aside) is left out, and the third such copy in a row ends the reply. A line is held back
    only while it could still be such a copy, so the rest streams as it comes."""

    STOP_AFTER = 3  # copies in a row left out before the reply is ended
    PERIOD = 2  # lines a loop may span

    def __init__(self) -> None:
        self.line = ""  # the line being written
        self.fed = 0  # how much of it has been let out
        self.recent: list[str] = []  # the last non-blank lines let out under this heading, stripped
        self.copies = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        out = []
        self.line += piece
        while "\n" in self.line and not self.stopped:
            line, self.line = self.line.split("\n", 1)
            out.append(self._complete(line))
            self.fed = 0
        if not self.stopped:
            out.append(self._partial())
        return "".join(out)

    def close(self) -> str:
        if self.stopped or not self.line:
            return ""
        text = self._complete(self.line)[:-1]  # no newline the model did not write
        self.line, self.fed = "", 0
        return text

    def _complete(self, line: str) -> str:
        s = line.strip()
        if s and s in self.recent:
            self.copies += 1
            self.stopped = self.copies >= self.STOP_AFTER
            return ""
        if s:
            self.copies = 0
            self.recent = [] if s.startswith("#") else self.recent[-(self.PERIOD - 1):] + [s]
        return line[self.fed :] + "\n"

    def _partial(self) -> str:
        s = self.line.strip()
        if not s or any(r.startswith(s) for r in self.recent):
            return ""  # blank so far, or maybe a line before again
        text = self.line[self.fed :]
        self.fed = len(self.line)
        return text


def _without_loops(pieces: Iterator[str]) -> Iterator[str]:
    """The model's reply with repeated lines left out, ended (and the model stopped) once it
    loops: see _Repeats."""
    repeats = _Repeats()
    try:
        for piece in pieces:
            text = repeats.feed(piece)
            if text:
                yield text
            if repeats.stopped:
                return
        text = repeats.close()
        if text:
            yield text
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # a generator: the model stops generating


def _safe_end(line: str) -> int:
    """How much of an unfinished line no citation can cross the end of: up to an unclosed
    `[`, less the spaces before it (a removed citation takes them with it)."""
    i = line.rfind("[")
    cut = i if i >= 0 and "]" not in line[i:] else len(line)
    return len(line[:cut].rstrip(" \t"))


# -- the summarizer --------------------------------------------------------------------


@dataclass(frozen=True)
class _Notes:
    first: int  # part numbers, 1-based
    last: int
    start: float
    end: float
    text: str

    def block(self) -> str:
        parts = f"Part {self.first}" if self.first == self.last else f"Parts {self.first}-{self.last}"
        return f"{parts} ({clock(self.start)}-{clock(self.end)}):\n{self.text}"


class Summarizer:
    """`stream(segments)` yields the summary as it is written; `result` then holds the
    checked summary. `template`: a Template, its Markdown text, or None for the default;
    `meeting`: any of title, date, duration, language."""

    def __init__(self, backend: ChatModel, template: str | Template | None = None,
                 meeting: dict[str, object] | None = None, max_output_tokens: int = 1024,
                 on_progress: Callable[[int, int], None] | None = None):
        self.backend = backend
        if template is None:
            template = default_template()
        self.template = template if isinstance(template, Template) else Template.from_text(template)
        self.meeting = {k: v for k, v in (meeting or {}).items() if k in FIELDS}
        self.max_output_tokens = max_output_tokens
        self.on_progress = on_progress
        self._result: SummaryResult | None = None
        self._speakers = False  # set per transcript by _setup

    @property
    def result(self) -> SummaryResult:
        if self._result is None:
            raise RuntimeError("the summary is not finished: consume stream() first")
        return self._result

    # -- budgets ---------------------------------------------------------------------
    def _setup(self, segments: Sequence[Segment], notes: Sequence[Note] = ()) -> list[Segment]:
        segs = [s for s in segments if s.text.strip()]
        if not segs:
            raise RewriteError("the meeting has no transcript to summarize")
        self._speakers = any(s.speaker and s.speaker.strip() for s in segs)  # lines then say who spoke
        self._own_notes = self._fit_own_notes([n for n in notes if n.text.strip()])
        fields = {k: field_text(k, v) for k, v in self.meeting.items() if v is not None and v != ""}
        fields.setdefault("duration", clock(max(s.end for s in segs)))
        self._fields = fields
        self._template_text = self.template.render(**fields)
        c = self.context = self.backend.capabilities.context_tokens
        self.reply = min(self.max_output_tokens, c // 4)
        count = self._count
        notes_budget = c - self.reply - count(reduce_messages([], self._template_text, self._fields,
                                                              self._own_notes))
        merge_budget = c - count(merge_messages([])) - 2 * NOTES_HEADER
        # Notes from one request always fit a reduce on their own, and two of them fit one
        # merge request with its reply: every round of condensing makes progress.
        self.note_reply = min(self.reply, (notes_budget - NOTES_HEADER) // 2, merge_budget // 3)
        self.line_budget = c - self.note_reply - count(map_messages([], self._speakers)) - LINE_SLACK
        if min(self.reply, self.note_reply, self.line_budget) < MIN_REPLY:
            raise RewriteError(f"the model's context ({c} tokens) is too small to summarize with this template "
                               f"({c - self.reply - notes_budget} tokens of instructions and template, "
                               f"and {self.reply} for the summary)")
        return segs

    def _fit_own_notes(self, notes: list[Note]) -> list[Note]:
        """The person's notes, in order, as many as fit their share of the context."""
        budget = self.backend.capabilities.context_tokens // OWN_NOTES_SHARE
        used = self.backend.count_tokens(own_notes_block([Note(0.0, "")]))  # the heading and one stamp
        kept = 0
        for note in notes:
            used += self.backend.count_tokens(own_notes_line(note)) + 1
            if used > budget:
                break
            kept += 1
        self._own_notes_left_out = len(notes) - kept
        return notes[:kept]

    def _count(self, messages: Sequence[Message]) -> int:
        return prompt_tokens(self.backend, messages)

    def _fits(self, messages: Sequence[Message], reply: int) -> bool:
        return self._count(messages) + reply <= self.context

    # -- planning --------------------------------------------------------------------
    def _lines(self, segs: Sequence[Segment]) -> tuple[list[tuple[Segment, str]], int]:
        """Transcript lines, a segment too long for a chunk on its own split at word
        boundaries (each piece keeps its id); and how many segments were split."""
        lines: list[tuple[Segment, str]] = []
        split = 0
        for seg in segs:
            line = transcript_line(seg)
            if self.backend.count_tokens(line) + 1 <= self.line_budget:
                lines.append((seg, line))
                continue
            split += 1
            lines += [(seg, transcript_line(seg, piece)) for piece in self._pieces(seg)]
        return lines, split

    def _pieces(self, seg: Segment) -> list[str]:
        def fits(text: str) -> bool:
            return self.backend.count_tokens(transcript_line(seg, text)) + 1 <= self.line_budget

        pieces: list[str] = []
        cur: list[str] = []
        for word in seg.text.split():
            while not fits(word):  # a "word" longer than a chunk (no spaces): cut it by characters
                k = max(1, len(word) // 2)
                while k > 1 and not fits(word[:k]):
                    k //= 2
                if cur:
                    pieces.append(" ".join(cur))
                    cur = []
                pieces.append(word[:k])
                word = word[k:]
            if cur and not fits(" ".join(cur + [word])):
                pieces.append(" ".join(cur))
                cur = []
            cur.append(word)
        if cur:
            pieces.append(" ".join(cur))
        return pieces

    def _chunks(self, lines: list[tuple[Segment, str]]) -> list[list[tuple[Segment, str]]]:
        """Consecutive chunks, greedy by per-line counts, each checked on its whole prompt."""
        counts = [self.backend.count_tokens(text) + 1 for _, text in lines]
        chunks = []
        i = 0
        while i < len(lines):
            j, used = i + 1, counts[i]
            while j < len(lines) and used + counts[j] <= self.line_budget:
                used += counts[j]
                j += 1
            while j - i > 1 and not self._fits(map_messages((t for _, t in lines[i:j]), self._speakers),
                                               self.note_reply):
                j -= 1
            chunks.append(lines[i:j])
            i = j
        return chunks

    def plan(self, segments: Sequence[Segment], notes: Sequence[Note] = ()) -> list[list[str]]:
        """The transcript lines of each request's chunk (one chunk when it fits in one
        pass), without calling the model."""
        segs = self._setup(segments, notes)
        lines, _ = self._lines(segs)
        if self._fits(summary_messages((t for _, t in lines), self._template_text, self._fields, self._own_notes,
                                       self._speakers),
                      self.reply):
            return [[t for _, t in lines]]
        return [[t for _, t in chunk] for chunk in self._chunks(lines)]

    # -- running ---------------------------------------------------------------------
    def stream(self, segments: Sequence[Segment], notes: Sequence[Note] = ()) -> Iterator[str]:
        """Checks the transcript and budgets now (RewriteError); the text comes as iterated.
        `notes`: the person's own notes, their emphasis (never cited)."""
        segs = self._setup(segments, notes)
        self._result = None
        return self._run(segs)

    def _run(self, segs: list[Segment]) -> Iterator[str]:
        valid = {s.id for s in segs}
        lines, split = self._lines(segs)
        whole = summary_messages((t for _, t in lines), self._template_text, self._fields, self._own_notes,
                                 self._speakers)
        removed = cut = rounds = 0
        if self._fits(whole, self.reply):
            final, chunks = whole, 1
        else:
            parts = self._chunks(lines)
            chunks = len(parts)
            notes: list[_Notes] = []
            for k, part in enumerate(parts, 1):
                text, r, c = self._ask(map_messages((t for _, t in part), self._speakers), self.note_reply, valid)
                removed, cut = removed + r, cut + c
                notes.append(_Notes(k, k, part[0][0].start, part[-1][0].end, text))
                if self.on_progress is not None:
                    self.on_progress(k, chunks)
            while not self._fits(reduce_messages([n.block() for n in notes], self._template_text, self._fields,
                                                 self._own_notes), self.reply):
                notes, r, c = self._merge_round(notes, valid)
                removed, cut, rounds = removed + r, cut + c, rounds + 1
            final = reduce_messages([n.block() for n in notes], self._template_text, self._fields, self._own_notes)

        check = _Checker(valid)
        checked = _CheckedStream(check)
        pieces = []
        for piece in _without_loops(iter(self.backend.complete(final, self.reply))):
            pieces.append(piece)
            shown = checked.feed(piece)
            if shown:
                yield shown
        shown = checked.close()
        if shown:
            yield shown
        text = "".join(pieces)
        final_cut = self._is_cut(text, self.reply)
        markdown, r = checked.text, check.removed
        _, citations, _ = check_citations(markdown, valid)
        tail = self._notes_on_cuts(split, cut, final_cut)
        if tail:
            yield ("\n\n" if markdown else "") + tail
            markdown = f"{markdown}\n\n{tail}" if markdown else tail
        self._result = SummaryResult(markdown, citations, removed + r, chunks, split, rounds, cut + final_cut,
                                     self._own_notes_left_out)

    def _ask(self, messages: list[Message], limit: int, valid: set[int]) -> tuple[str, int, int]:
        """Notes from one request: text with bad citations removed, how many, and whether cut."""
        text = "".join(_without_loops(iter(self.backend.complete(messages, limit))))
        checked, _, removed = check_citations(_unfence(text).strip(), valid)
        return checked or "(nothing noted)", removed, int(self._is_cut(text, limit))

    def _merge_round(self, notes: list[_Notes], valid: set[int]) -> tuple[list[_Notes], int, int]:
        """Neighbouring notes condensed in groups that fit one merge request."""
        groups: list[list[_Notes]] = []
        i = 0
        while i < len(notes):
            j = i + 1
            while j < len(notes) and self._fits(merge_messages(n.block() for n in notes[i : j + 1]), self.note_reply):
                j += 1
            groups.append(notes[i:j])
            i = j
        if all(len(g) == 1 for g in groups):
            raise RewriteError(f"the notes on this meeting do not fit the model's context ({self.context} tokens) "
                               "even after condensing")
        out: list[_Notes] = []
        removed = cut = 0
        for g in groups:
            if len(g) == 1:
                out.append(g[0])
                continue
            text, r, c = self._ask(merge_messages(n.block() for n in g), self.note_reply, valid)
            removed, cut = removed + r, cut + c
            out.append(_Notes(g[0].first, g[-1].last, g[0].start, g[-1].end, text))
        return out, removed, cut

    def _is_cut(self, text: str, limit: int) -> bool:
        return self.backend.count_tokens(text) >= limit - max(2, limit // 50)

    def _notes_on_cuts(self, split: int, cut_notes: int, final_cut: bool) -> str:
        notes = []
        if split:
            notes.append(f"{split} transcript segment{'s were' if split > 1 else ' was'} too long for the model's "
                         f"context ({self.context} tokens) and {'were' if split > 1 else 'was'} read in pieces.")
        if cut_notes:
            notes.append(f"{cut_notes} of the model's notes on parts of this long meeting hit the "
                         f"{self.note_reply}-token limit and were cut short; points from those parts may be missing.")
        if final_cut:
            notes.append(f"the summary hit the {self.reply}-token limit and was cut short.")
        if self._own_notes_left_out:
            n = self._own_notes_left_out
            notes.append(f"{n} of your own notes did not fit the model's context ({self.context} tokens) "
                         f"and {'were' if n > 1 else 'was'} left out of this summary.")
        return "\n>\n".join(f"> Note: {n[0].upper()}{n[1:]}" for n in notes)


def _unfence(text: str) -> str:
    """The reply without a ``` fence wrapped around all of it."""
    s = text.strip()
    if s.startswith("```") and s.endswith("```") and s.count("\n") >= 1:
        return s[s.index("\n") + 1 : -3]
    return text
