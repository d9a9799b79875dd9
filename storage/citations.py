"""Citations in a summary's Markdown: `[#3]`, `[#3, #7]`, `[#3-#5]` name segments by their
number in the meeting (`segments.seq`), the number every transcript view shows.

Summaries written before schema 4 (and version-1 exports) named segments by database id;
`renumber` rewrites such Markdown. The pattern matches what rewrite/summarize.py checks
(storage imports none of our packages, so it is written out here too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from storage.records import Citation

_RANGE = r"(?:\s*[-\u2013\u2014]\s*#?(\d+))?"  # "-#14", "–14"
GROUP = re.compile(r"[ \t]*\[\s*#\d+" + _RANGE + r"(?:\s*[,;]\s*#?\d+" + _RANGE + r")*\s*\]")
_ITEM = re.compile(r"#?(\d+)" + _RANGE)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")


def _group_text(lead: str, items: Sequence[tuple[int, int]]) -> str:
    if not items:
        return ""
    return lead + "[" + ", ".join(f"#{a}" if a == b else f"#{a}-#{b}" for a, b in items) + "]"


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted numbers as items: three or more in a row become a range."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    out: list[tuple[int, int]] = []
    for run in runs:
        out += [(run[0], run[-1])] if len(run) > 2 else [(n, n) for n in run]
    return out


def cited(markdown: str) -> list[tuple[int, int]]:
    """Every item cited as (low, high) (equal for a single number), in order of mention."""
    out = []
    for line in markdown.split("\n"):
        for group in GROUP.finditer(line):
            for item in _ITEM.finditer(group.group(0)):
                a, b = int(item.group(1)), item.group(2)
                lo, hi = sorted((a, a if b is None else int(b)))
                out.append((lo, hi))
    return out


def renumber(markdown: str, number: Mapping[int, int]) -> tuple[str, int]:
    """Each cited id through `number` (a range through both ends); an item with an end not
    in `number` is dropped, and a group left empty goes entirely. The Markdown and how
    many items were dropped."""
    dropped = 0

    def fix(m: re.Match[str]) -> str:
        nonlocal dropped
        group = m.group(0)
        lead = group[: len(group) - len(group.lstrip(" \t"))]
        items = []
        for item in _ITEM.finditer(group):
            a, b = int(item.group(1)), item.group(2)
            lo, hi = sorted((a, a if b is None else int(b)))
            if lo in number and hi in number:
                items.append(tuple(sorted((number[lo], number[hi]))))
            else:
                dropped += 1
        return _group_text(lead, items)

    text = "\n".join(GROUP.sub(fix, line) for line in markdown.split("\n"))
    return text, dropped


def recite(markdown: str, per_block: Sequence[Sequence[int]]) -> str:
    """The Markdown with the citations of its k-th citing bullet or paragraph replaced by
    `per_block[k]` (at the end of the block's last citing line). For Markdown whose own
    citation numbers cannot be trusted while the stored per-bullet citations can (a summary
    imported before schema 4 kept the exporting database's ids in its text). A block that
    `per_block` has nothing for loses its citations."""
    lines = markdown.split("\n")
    blocks: list[list[int]] = []  # line indexes with citations, per citing block
    current: list[int] | None = None
    for i, line in enumerate(lines):
        heading = bool(_HEADING.match(line))
        if not line.strip() or heading or _BULLET.match(line):
            current = None
        if line.strip() and current is None:
            current = []
            blocks.append(current)
        if GROUP.search(line) and current is not None:
            current.append(i)
        if heading:
            current = None
    citing = [b for b in blocks if b]
    for k, idxs in enumerate(citing):
        for i in idxs:
            lines[i] = GROUP.sub("", lines[i])
        nums = sorted(set(per_block[k])) if k < len(per_block) else []
        if nums:
            lines[idxs[-1]] += _group_text(" ", _runs(nums))
    return "\n".join(lines)


def ids_to_numbers(
    markdown: str, citations: Sequence[Citation], number: Mapping[int, int]
) -> tuple[str, tuple[Citation, ...]]:
    """A summary that cites database ids (schema < 4, export version 1) made to cite segment
    numbers: `number` maps each id of the meeting's segments to its seq. Ids with no number
    (segments deleted since) are dropped. The Markdown's own ids are used when they agree
    with the per-bullet citations; when they do not (a summary imported before schema 4
    kept the exporting database's ids in its text), the per-bullet citations are written
    into it instead."""
    cites = tuple(Citation(c.bullet, tuple(number[i] for i in c.seqs if i in number)) for c in citations)
    items = cited(markdown)
    # The text's ids are the stored ones (some may name segments deleted since, and go).
    trusted = all(any(lo <= i <= hi for lo, hi in items) for c in citations for i in c.seqs)
    if trusted:
        return renumber(markdown, number)[0], cites
    return recite(markdown, [c.seqs for c in cites]), cites


def citations_json(cites: Sequence[Citation]) -> str:
    """How the summaries table keeps them."""
    return json.dumps([{"bullet": c.bullet, "seqs": list(c.seqs)} for c in cites], ensure_ascii=False)


def migrate_summary(markdown: str, stored: str | None, number: Mapping[int, int]) -> tuple[str, str]:
    """One summaries row as written before schema 4 ({"bullet", "segment_ids"} citations,
    ids in the Markdown) as (markdown, citations JSON) citing segment numbers."""
    try:
        raw = json.loads(stored) if stored else []
        old = [Citation(str(c["bullet"]), tuple(int(i) for i in c.get("segment_ids") or ())) for c in raw]
    except (ValueError, TypeError, KeyError, AttributeError):
        old = []  # never written by notetaker; the Markdown's own ids are all there is
    markdown, cites = ids_to_numbers(markdown, old, number)
    return markdown, citations_json(cites)


__all__ = ["GROUP", "cited", "citations_json", "ids_to_numbers", "migrate_summary", "recite", "renumber"]
