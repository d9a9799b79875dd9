"""The search box's language: what people type, read as the terms a meeting must contain.

    budget deadline   every word must occur in the meeting (transcript, notes or title)
    "moved to Friday" those words together, in that order
    deadl*            any word that starts so; the last word typed (2+ letters) is a prefix too,
                      so results come as you type (`laun` finds launch); a space after it ends it
    -budget, NOT x    meetings whose shown text contains it are left out
    invoice OR refund either one (AND is allowed and changes nothing)
    speaker:Anya      only segments by that speaker: a name given in the meeting, or a label (S2)
    channel:mic       only segments from your microphone (mic) or the other side of a call (system)

A query using FTS5's own operators (NEAR(), parentheses, column:, ^) is handed to FTS5 whole
and matched within one segment, as it always was; if FTS5 cannot parse it, it is read as words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storage.errors import BadQuery

# A one-letter prefix expands to thousands of words; two letters cost up to ~175 ms ("th"
# over 1,000 one-hour meetings, bench/storage.py), still fine once per pause in typing.
MIN_PREFIX_CHARS = 2
CHANNELS = ("mic", "system")

_FILTER = re.compile(r'(?P<neg>-?)\b(?P<key>speaker|channel):(?P<value>"[^"]*"?|\S*)', re.IGNORECASE)
_TOKEN = re.compile(r'(?P<neg>-?)(?:"(?P<phrase>[^"]*)"?|(?P<word>\S+))')
_QUOTED = re.compile(r'"[^"]*"?')
# Outside quotes: FTS5 syntax that plain typing never needs.
_POWER = re.compile(r"NEAR\(|[()^{}]|\b\w+\s*:")


@dataclass(frozen=True)
class Query:
    """`terms` and `excluded` are FTS5 expressions: a meeting must contain every term and none
    of the excluded; `speakers` and `channels` narrow which segments count (any of each)."""

    terms: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    power: bool = False  # one term: the whole query as FTS5 syntax

    @property
    def filtered(self) -> bool:
        return bool(self.speakers or self.channels)


def phrase(word: str, prefix: bool = False) -> str:
    """`word` as an FTS5 phrase that always parses (its quotes doubled)."""
    return '"' + word.replace('"', '""') + '"' + ("*" if prefix else "")


def parse_query(text: str, prefix_last: bool = True, power: bool = True, max_prefixes: int = 4) -> Query:
    """Read a cleaned query; BadQuery when it has nothing to search for or a bad filter.

    `prefix_last`: the last bare word is a prefix (as you type). `power`: allow FTS5 syntax.
    """
    speakers: list[str] = []
    channels: list[str] = []
    for m in _FILTER.finditer(text):
        key = m["key"].lower()
        value = m["value"].strip('"').strip()
        if m["neg"]:
            raise BadQuery(f"-{key}: is not supported; name the {key}s to keep instead")
        if not value:
            raise BadQuery(f"{key}: needs a value, e.g. {key}:{'Anya' if key == 'speaker' else 'mic'}")
        if key == "channel":
            if value.lower() not in CHANNELS:
                raise BadQuery(f"channel:{value} is not a channel; use channel:mic or channel:system")
            channels.append(value.lower())
        else:
            speakers.append(value)
    rest = _FILTER.sub(" ", text).strip()
    if power and rest and _POWER.search(_QUOTED.sub(" ", rest)):
        return Query((rest,), speakers=tuple(speakers), channels=tuple(channels), power=True)
    terms, excluded = _words(rest, prefix_last, max_prefixes)
    if not (terms or excluded or speakers or channels):
        raise BadQuery(f"nothing to search for in {shorten(text)!r}; type some words")
    return Query(tuple(terms), tuple(excluded), tuple(speakers), tuple(channels))


def _words(text: str, prefix_last: bool, max_prefixes: int) -> tuple[list[str], list[str]]:
    terms: list[str] = []
    excluded: list[str] = []
    negate = either = False
    tokens = list(_TOKEN.finditer(text))
    prefixes = sum(1 for m in tokens if (m["word"] or "").endswith("*"))
    for i, m in enumerate(tokens):
        bare = m["word"]
        if bare in ("AND", "NOT", "OR") and not m["neg"]:
            negate, either = bare == "NOT", bare == "OR" and bool(terms)
            continue
        word = m["phrase"] if bare is None else bare.strip("*")
        if not any(ch.isalnum() for ch in word):
            continue  # nothing FTS5 would index (punctuation, emoji): searching it finds nothing
        negated = negate or bool(m["neg"])
        prefix = bare is not None and bare.endswith("*")
        if (prefix_last and bare is not None and not negated and not prefix and i == len(tokens) - 1
                and sum(ch.isalnum() for ch in word) >= MIN_PREFIX_CHARS and prefixes < max_prefixes):
            prefix = True
        term = phrase(word, prefix)
        if negated:
            excluded.append(term)
        elif either:
            terms[-1] = f"{terms[-1]} OR {term}"
        else:
            terms.append(term)
        negate = either = False
    return terms, excluded


def shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
