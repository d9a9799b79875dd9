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
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

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
    phrases: tuple[tuple[str, bool], ...] = ()  # the wanted words and phrases, each (text, prefix)

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
    terms, excluded, phrases = _words(rest, prefix_last, max_prefixes)
    if not (terms or excluded or speakers or channels):
        raise BadQuery(f"nothing to search for in {shorten(text)!r}; type some words")
    return Query(tuple(terms), tuple(excluded), tuple(speakers), tuple(channels), phrases=tuple(phrases))


def _words(text: str, prefix_last: bool, max_prefixes: int) -> tuple[list[str], list[str], list[tuple[str, bool]]]:
    terms: list[str] = []
    excluded: list[str] = []
    phrases: list[tuple[str, bool]] = []
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
        if not negated:
            phrases.append((word, prefix))
        negate = either = False
    return terms, excluded, phrases


# FTS5's unicode61 tokens, folded as `remove_diacritics 2` folds them.
_TOKEN_CHARS = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1 << 16)
def _fold(token: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", token.casefold()) if not unicodedata.combining(c))


def mark(text: str, phrases: tuple[tuple[str, bool], ...], marks: tuple[str, str], width: int,
         ellipsis: str = "…") -> str:
    """FTS5 snippet() for plain queries, done here: one snippet() call per hit costs ~0.6 ms
    when a prefix term must be expanded again each time. Up to `width` words of `text`
    around the most matches, each matched word or phrase between `marks`."""
    text = unicodedata.normalize("NFC", text)
    tokens = list(_TOKEN_CHARS.finditer(text))
    folded = [_fold(t.group()) for t in tokens]
    spans: list[tuple[int, int]] = []
    for words, prefix in phrases:
        want = [_fold(w) for w in _TOKEN_CHARS.findall(unicodedata.normalize("NFC", words))]
        n = len(want)
        for i in range(len(folded) - n + 1) if n else ():
            last = folded[i + n - 1]
            if folded[i:i + n - 1] == want[:-1] and (last.startswith(want[-1]) if prefix else last == want[-1]):
                spans.append((i, i + n - 1))
    first, end = 0, len(tokens)
    if len(tokens) > width:  # the window holding the most matches, with some words before them
        lead = min((a for a, _ in spans), default=0) - width // 4
        first = max(range(len(tokens) - width + 1),
                    key=lambda s: (sum(s <= a and b < s + width for a, b in spans), -abs(s - lead)))
        end = first + width
    cut_from = tokens[first].start() if first else 0
    cut_to = tokens[end - 1].end() if end < len(tokens) else len(text)
    out, at = [], cut_from
    for a, b in sorted(spans):
        if a < first or b >= end or tokens[a].start() < at:
            continue  # outside the window, or inside a phrase already marked
        out += [text[at:tokens[a].start()], marks[0], text[tokens[a].start():tokens[b].end()], marks[1]]
        at = tokens[b].end()
    out.append(text[at:cut_to])
    return (ellipsis if first else "") + "".join(out) + (ellipsis if end < len(tokens) else "")


def shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
