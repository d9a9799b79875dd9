"""How stored meetings read on screen, for every screen that shows them: start time, length,
status, engine, marks, corrections, and a summary's citations as links to segments."""

from __future__ import annotations

import difflib
import re

from rich.text import Text

from notetaker.inert import inert
from notetaker.summary import StoredSummary
from storage import MarkRecord, SessionRecord, SummaryRecord, TextChange
from storage.export import clock


def local_time(session: SessionRecord) -> str:
    return session.started_at.astimezone().strftime("%Y-%m-%d %H:%M")


def session_length(session: SessionRecord) -> float | None:
    if session.duration_s is not None:
        return session.duration_s
    if session.ended_at is not None:
        return max(0.0, (session.ended_at - session.started_at).total_seconds())
    return None


def status_text(status: str) -> Text:
    """Interrupted meetings stand out; a meeting still recording is marked as such."""
    if status == "interrupted":
        return Text(" INTERRUPTED ", style="bold white on red")
    if status == "recording":
        return Text("● recording", style="bold yellow")
    return Text(status)


def engine_text(session: SessionRecord) -> str:
    return f"{session.engine or '-'}/{session.model or '-'}"


def mark_line(mark: MarkRecord) -> Text:
    """`▸ [hh:mm:ss] Decision: text`: a mark, in a list of them or between the finals."""
    line = Text("▸ ", style="bold")
    line.append(f"[{clock(mark.t_s)}] ", style="bold")
    line.append(mark.kind.capitalize(), style="bold magenta")
    if mark.text.strip():
        line.append(f": {inert(mark.text)}")
    return line


EDITED_MARK = " ✎"  # after a line the person corrected


def change_text(change: TextChange, meeting: bool = False) -> Text:
    """`[#3 00:00:04] before → after`: the words taken out struck through in red, the words
    put in green (`meeting`: led by the meeting's id, for a change in one of many)."""
    line = Text(f"{change.session_id}  " if meeting else "", style="dim")
    line.append(f"[#{change.seq} {clock(change.start_s)}] ", style="bold")
    old, new = change.before.split(), change.after.split()
    after = Text()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            line.append(inert(" ".join(old[i1:i2])) + " ")
            after.append(inert(" ".join(new[j1:j2])) + " ")
            continue
        if i2 > i1:
            line.append(inert(" ".join(old[i1:i2])), style="strike red")
            line.append(" ")
        if j2 > j1:
            after.append(inert(" ".join(new[j1:j2])), style="bold green")
            after.append(" ")
    line.append("→ ", style="bold")
    line.append_text(after)
    line.rstrip()
    return line


# -- citations as links ------------------------------------------------------------------

_ITEM = r"#?\d+(?:\s*[-\u2013\u2014]\s*#?\d+)?"
_GROUP = re.compile(r"\[\s*#\d+(?:\s*[-\u2013\u2014]\s*#?\d+)?(?:\s*[,;]\s*" + _ITEM + r")*\s*\](?!\()")
_ID = re.compile(r"#?(\d+)")
LINK_SCHEME = "segment:"


def linkify_citations(markdown: str) -> str:
    """`[#12, #15]` → `\\[[#12](segment:12), [#15](segment:15)\\]` (ranges link both ends);
    the numbers are segment numbers in the meeting (seq)."""

    def group(m: re.Match[str]) -> str:
        inner = _ID.sub(lambda i: f"[#{i.group(1)}]({LINK_SCHEME}{i.group(1)})", m.group(0)[1:-1])
        return "\\[" + inner + "\\]"

    return _GROUP.sub(group, markdown)


def segment_from_href(href: str) -> int | None:
    """The segment number (seq) a citation link names."""
    if href.startswith(LINK_SCHEME) and href[len(LINK_SCHEME):].isdigit():
        return int(href[len(LINK_SCHEME):])
    return None


def cited_numbers(summary: SummaryRecord | StoredSummary | None) -> list[int]:
    """The segment numbers (seq) a summary cites, in order of first mention."""
    if summary is None:
        return []
    cites = summary.citations if isinstance(summary, SummaryRecord) else summary.record.citations
    return list(dict.fromkeys(n for c in cites for n in c.seqs))
