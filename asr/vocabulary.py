"""Custom vocabulary: names and terms (people, products, jargon) that every engine uses as
well as it can. Whisper reads them in its prompt, Qwen3-ASR in its context; for an engine
that takes no hints (Voxtral) a post-pass snaps near-miss spellings in its finals to the
listed terms ("Cuban eat ease" → "Kubernetes", "post gres" → "Postgres").

The snapper is conservative by design: a wrong replacement puts a name in someone's mouth,
which is worse than a misspelling a reader can see through. A lone common English word is
never replaced, a run of common words only by a long term it sounds almost exactly like.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from asr.base import Event, Final, Partial, Session

COMMON_WORDS = Path(__file__).resolve().parent / "data" / "common_words.txt.gz"
MAX_SPAN_EXTRA = 2  # a term of n words may be heard as up to n + 2 words
MIN_FUZZY_KEY = 5  # shorter sound keys must match exactly
MIN_COMMON_RUN_KEY = 7  # a run of common words is replaced only by a term this long (in sound)
SOUND_SIMILARITY = 0.8  # 1 - edit distance / length, on the sound keys
COMMON_RUN_SIMILARITY = 0.85
SPELLING_SIMILARITY = 0.45  # on the letters: the span must also look somewhat like the term

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
_JOINERS = re.compile(r"^[\s\-]*$")  # what may stand between the words of one span
_VOWELS = set("aeiouy")
# Spelling → sound, in order: a rough English phonetic key, enough to hear that
# "cuban eat ease" and "kubernetes" sound alike. Vowel runs collapse to one "a".
_SOUNDS = (("tch", "ch"), ("sch", "sk"), ("ph", "f"), ("ck", "k"), ("qu", "kw"), ("q", "k"), ("x", "ks"),
           ("dg", "j"), ("gh", "g"), ("wh", "w"), ("z", "s"), ("v", "f"))
# Function words that are never a name, for when the common-word list cannot be read.
_STOPWORDS = frozenset("""a an and any are as at be but by can do for from had has have he her his i if in
into is it its me my no not of on or our she so than that the their them then there they this to up us was we
were what when which who will with would yes you your""".split())


def unique_terms(terms) -> list[str]:
    """The terms in order, each once whatever its case."""
    seen, out = set(), []
    for t in terms:
        if t.casefold() not in seen:
            seen.add(t.casefold())
            out.append(t)
    return out


def prompt_text(terms: tuple[str, ...] | list[str]) -> str:
    """The terms as text a model reads before the audio: a plain comma list, as
    faster-whisper's hotwords are given (a sentence around it measured no better)."""
    return ", ".join(terms) + "." if terms else ""


def with_context(context: str, terms: tuple[str, ...] | list[str]) -> str:
    """A user's free biasing text and the vocabulary as one context (Qwen3-ASR's system turn)."""
    return " ".join(p for p in (context.strip(), prompt_text(terms)) if p)


# -- the snapper -------------------------------------------------------------------------


def sound_key(text: str) -> str:
    """Letters → a rough sound: 'Kubernetes' and 'Cuban eat ease' give 'kabarnatas' and
    'kabanatas'. Word by word, each without a silent final e."""
    s = "".join(_silent_e(w) for w in _WORD.findall(unicodedata.normalize("NFKD", text.casefold())))
    s = "".join(c for c in s if c.isalnum() and c.isascii())
    if s.startswith(("kn", "wr", "gn", "ps")):
        s = s[1:]
    for a, b in _SOUNDS:
        s = s.replace(a, b)
    s = re.sub(r"c(?=[eiy])", "s", s).replace("c", "k")
    s = re.sub(r"(?<![cst])h", "", s)  # h is heard only in ch, sh, th
    out: list[str] = []
    for ch in s:
        ch = "a" if ch in _VOWELS else ch
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def _silent_e(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("e") and word[-2] not in _VOWELS else word


def similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length (1.0: equal)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """About 20,000 lower-case English words, each frequent enough to be one token of GPT-2's
    vocabulary (tools/make_common_words.py), so that no ordinary word is taken for a name;
    the function words alone if the file cannot be read."""
    try:
        words = gzip.decompress(COMMON_WORDS.read_bytes()).decode("ascii").split()
    except (OSError, EOFError, UnicodeDecodeError):
        return _STOPWORDS
    return frozenset(words) | _STOPWORDS


def _is_common(word: str) -> bool:
    w = word.casefold().replace("’", "'")
    return w in common_words() or w.split("'")[0] in common_words()


@dataclass(frozen=True)
class _Term:
    text: str
    letters: str
    sound: str
    words: int
    common: bool  # the term is itself an ordinary word ("Slack"): only its case is fixed


class Snapper:
    """Replaces spans of a text that sound like a listed term, and look somewhat like it,
    with the term; the words around a span, their case and punctuation stay as they were."""

    def __init__(self, terms: tuple[str, ...] | list[str]):
        self.terms = [
            _Term(t, _letters(t), sound_key(t), len(_WORD.findall(t)), all(_is_common(w) for w in _WORD.findall(t)))
            for t in unique_terms(terms) if sound_key(t)]
        self._max_words = max((t.words for t in self.terms), default=0) + MAX_SPAN_EXTRA

    def __call__(self, text: str) -> str:
        if not self.terms or not text:
            return text
        words = list(_WORD.finditer(text))
        found = []  # (score, first word, last word + 1, term)
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + self._max_words) + 1):
                if j > i + 1 and not _JOINERS.match(text[words[j - 2].end() : words[j - 1].start()]):
                    break  # a span never runs across punctuation
                span = text[words[i].start() : words[j - 1].end()]
                match = self._best(span, [w.group() for w in words[i:j]])
                if match is not None:
                    found.append((match[0], i, j, match[1]))
        taken: set[int] = set()
        chosen = []
        for score, i, j, term in sorted(found, key=lambda f: (-f[0], f[1])):
            if not taken.intersection(range(i, j)):
                taken.update(range(i, j))
                chosen.append((i, j, term))
        for i, j, term in sorted(chosen, reverse=True):
            text = text[: words[i].start()] + term.text + text[words[j - 1].end() :]
        return text

    def _best(self, span: str, words: list[str]) -> tuple[float, _Term] | None:
        letters, sound = _letters(span), sound_key(span)
        common_run = all(_is_common(w) for w in words)
        best = None
        for term in self.terms:
            if letters == term.letters:
                # Already the term, perhaps in other case or spacing ("post gres").
                if span == term.text or (term.common and len(words) == 1):
                    continue
                if common_run and len(words) > 1 and len(term.sound) < MIN_COMMON_RUN_KEY:
                    continue  # "red is" stays; "data dog" is Datadog
                score = 2.0
            elif term.common or (common_run and len(words) == 1):
                continue
            else:
                score = self._score(term, letters, sound, common_run)
                if score is None:
                    continue
            if best is None or score > best[0]:
                best = (score, term)
        return best

    @staticmethod
    def _score(term: _Term, letters: str, sound: str, common_run: bool) -> float | None:
        if not sound or (sound[0] in "a") != (term.sound[0] in "a"):
            return None  # one starts with a vowel, the other not
        if sound[0] != "a" and sound[0] != term.sound[0]:
            return None
        if abs(len(sound) - len(term.sound)) > max(1, len(term.sound) // 3):
            return None
        if common_run and (len(term.sound) < MIN_COMMON_RUN_KEY or similarity(sound, term.sound) < COMMON_RUN_SIMILARITY):
            return None  # "in a" is not "Anya": ordinary words make a name only when it is long
        if len(term.sound) < MIN_FUZZY_KEY:
            # Short names are snapped only when they sound the same and differ in a letter or two.
            ok = sound == term.sound and len(letters) > 2 and similarity(letters, term.letters) >= 0.5
            return 1.0 + similarity(letters, term.letters) if ok else None
        s = similarity(sound, term.sound)
        if s < SOUND_SIMILARITY or similarity(letters, term.letters) < SPELLING_SIMILARITY:
            return None
        return s + similarity(letters, term.letters) / 10


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


# -- the session layer -------------------------------------------------------------------


class SnappingSession(Session):
    """An engine's session whose finals (and partials, so a name does not change spelling
    when its partial becomes final) pass through the snapper: live, files and recovery alike."""

    def __init__(self, inner: Session, snapper: Snapper):
        super().__init__()
        self.inner = inner
        self.snap = snapper

    def feed_audio(self, pcm: np.ndarray) -> None:
        self.inner.feed_audio(pcm)

    @property
    def fed_s(self) -> float:
        return self.inner.fed_s

    @property
    def done_s(self) -> float:
        return self.inner.done_s

    @property
    def idle(self) -> bool:
        return self.inner.idle

    def step(self) -> list[Event]:
        return self._snapped(self.inner.step())

    def finish(self) -> list[Event]:
        return self._snapped(self.inner.finish())

    def _snapped(self, events: list[Event]) -> list[Event]:
        return [replace(e, text=self.snap(e.text)) if isinstance(e, (Final, Partial)) and e.text else e
                for e in events]


def snapping(session: Session, terms: tuple[str, ...]) -> Session:
    """The session, with the snapper over its text when there are terms to snap to."""
    return SnappingSession(session, Snapper(terms)) if terms else session
