"""The capability probe that gates Voxtral's experimental text mode.

A fixed set of noisy transcript sentences (fillers, stutters, false starts), each with the
content words a cleanup must keep and the fillers it must drop. `run_probe` has the backend
clean each one through `backend.cleanup` (the path real cleanup takes); a sentence passes
when every content word is kept and every filler dropped; the score is the fraction that
pass, and the mode is used only at `PASS_SCORE` or better. Scores are kept per model in a
small JSON file (`ProbeStore`), so a model is probed once, not at every start.

Words are compared as cleanup compares them (`rewrite.cleanup.words`: case- and
punctuation-blind); a filler is a word sequence ("um", "the the") that must not occur in
the cleaned words.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewrite.backend import RewriteBackend
from rewrite.base import RewriteError, Segment
from rewrite.cleanup import words

if TYPE_CHECKING:
    from asr.voxtral.engine import VoxtralEngine

PASS_SCORE = 0.75
# Bump when the sentences or the scoring change: stored scores of another version are ignored.
PROBE_VERSION = 1
STORE_VERSION = 1


@dataclass(frozen=True)
class ProbeSentence:
    raw: str  # as a transcriber writes it
    content: tuple[str, ...]  # words a cleanup must keep
    fillers: tuple[str, ...]  # word sequences it must drop
    clean: str  # one faithful cleanup (documentation, and the perfect test double)


SENTENCES: tuple[ProbeSentence, ...] = (
    ProbeSentence("um so we we need to uh ship the the release on friday",
                  ("need", "ship", "release", "friday"), ("um", "uh", "we we", "the the"),
                  "So we need to ship the release on Friday."),
    ProbeSentence("uh I think the the budget is is fine for march",
                  ("think", "budget", "fine", "march"), ("uh", "the the", "is is"),
                  "I think the budget is fine for March."),
    ProbeSentence("so um Anna will will send the the slides to the board uh tomorrow",
                  ("anna", "send", "slides", "board", "tomorrow"), ("um", "uh", "will will", "the the"),
                  "So Anna will send the slides to the board tomorrow."),
    ProbeSentence("er the the database migration it it failed twice last night",
                  ("database", "migration", "failed", "twice", "last", "night"), ("er", "the the", "it it"),
                  "The database migration failed twice last night."),
    ProbeSentence("we should um you know move the standup to the the afternoon",
                  ("should", "move", "standup", "afternoon"), ("um", "you know", "the the"),
                  "We should move the standup to the afternoon."),
    ProbeSentence("hmm the customer asked for a a refund and uh a new invoice",
                  ("customer", "asked", "refund", "new", "invoice"), ("hmm", "uh", "a a"),
                  "The customer asked for a refund and a new invoice."),
    ProbeSentence("uh let's let's postpone the design review until Maria is back",
                  ("postpone", "design", "review", "until", "maria", "back"), ("uh", "let's let's"),
                  "Let's postpone the design review until Maria is back."),
    ProbeSentence("um the the tests pass on linux but uh not on windows",
                  ("tests", "pass", "linux", "not", "windows"), ("um", "uh", "the the"),
                  "The tests pass on Linux but not on Windows."),
)

def _contains(haystack: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class SentenceResult:
    raw: str
    cleaned: str
    missing: tuple[str, ...]  # content words the cleanup lost
    kept_fillers: tuple[str, ...]  # fillers it left in
    error: str | None = None  # the backend's one-line error, if it failed

    @property
    def passed(self) -> bool:
        return self.error is None and not self.missing and not self.kept_fillers


def score_sentence(sentence: ProbeSentence, cleaned: str) -> SentenceResult:
    got = words(cleaned)
    missing = tuple(w for w in sentence.content if w not in got)
    kept = tuple(f for f in sentence.fillers if _contains(got, words(f)))
    return SentenceResult(sentence.raw, cleaned, missing, kept)


@dataclass(frozen=True)
class ProbeResult:
    score: float  # fraction of sentences passed, in [0, 1]
    passed: bool  # score >= PASS_SCORE
    details: list[SentenceResult] = field(default_factory=list)  # empty when read from the store
    date: str = ""  # when the probe ran (UTC, ISO 8601)
    cached: bool = False  # read from the store rather than run now

    def line(self) -> str:
        return f"score {self.score:.2f} {'>=' if self.passed else '<'} {PASS_SCORE:.2f}"


def first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_probe(backend: RewriteBackend, sentences: Sequence[ProbeSentence] = SENTENCES) -> ProbeResult:
    """Clean each sentence on its own through `backend.cleanup` and score the results; a
    backend error fails that sentence (recorded) and never escapes."""
    details: list[SentenceResult] = []
    for i, sentence in enumerate(sentences):
        segment = Segment(id=i + 1, start=float(i), end=float(i + 1), text=sentence.raw)
        try:
            cleaned = backend.cleanup([segment])
            text = cleaned[0] if cleaned else ""
        except RewriteError as e:
            details.append(SentenceResult(sentence.raw, "", (), (), error=first_line(e)))
            continue
        details.append(score_sentence(sentence, text))
    score = sum(d.passed for d in details) / len(details) if details else 0.0
    return ProbeResult(score, score >= PASS_SCORE, details, _now())


# -- persistence ------------------------------------------------------------------------------


class ProbeStore:
    """Probe scores by model identity in one small JSON file:

        {"version": 1, "probes": {"<key>": {"score": 0.12, "passed": false,
                                            "date": "2025-...", "probe": 1}}}

    A missing, unreadable or corrupt file (or entry) reads as absent; the next `put`
    rewrites the file whole (atomically). Write failures are kept in `error`, not raised:
    a score that cannot be stored only means probing again next time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.error: str | None = None

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            return {}
        probes = data.get("probes")
        return probes if isinstance(probes, dict) else {}

    def get(self, key: str) -> ProbeResult | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or entry.get("probe") != PROBE_VERSION:
            return None
        score, passed, date = entry.get("score"), entry.get("passed"), entry.get("date", "")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            return None
        if not isinstance(passed, bool) or not isinstance(date, str):
            return None
        return ProbeResult(float(score), passed, [], date, cached=True)

    def passed_for(self, folder: Path) -> bool:
        """Whether a stored result for the Voxtral model in `folder` (any layout or precision
        loaded from it) passed."""
        prefix = key_prefix(str(Path(folder).expanduser().resolve()))
        return any(k.startswith(prefix) and (r := self.get(k)) is not None and r.passed for k in self._read())

    def put(self, key: str, result: ProbeResult) -> None:
        probes = self._read()
        probes[key] = {"score": round(result.score, 4), "passed": result.passed,
                       "date": result.date or _now(), "probe": PROBE_VERSION}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"version": STORE_VERSION, "probes": probes}, indent=2) + "\n",
                           encoding="utf-8")
            os.replace(tmp, self.path)
            self.error = None
        except OSError as e:
            self.error = f"cannot save the probe score to {self.path}: {e.strerror or e}"


def model_key(engine: VoxtralEngine) -> str:
    """A Voxtral model's identity: its folder (or name), layout and the bytes of the weights
    as loaded (so a 4-bit, an 8-bit and a float copy are probed separately)."""
    from mlx.utils import tree_flatten

    folder = getattr(engine, "folder", None)
    path = Path(str(folder or engine.model)).expanduser()
    where = str(path.resolve()) if path.exists() else str(engine.model)
    weight_bytes = sum(v.nbytes for _, v in tree_flatten(engine.net.parameters()))
    return f"{key_prefix(where)}{engine.layout}|{weight_bytes}"


def key_prefix(where: str) -> str:
    """The start of every key of the model at `where` (its resolved folder, or its name)."""
    return f"voxtral:{where}|"


def probe_or_cached(backend: RewriteBackend, store: ProbeStore, key: str) -> ProbeResult:
    """The stored result for `key`, or a fresh probe of `backend` (then stored)."""
    cached = store.get(key)
    if cached is not None:
        return cached
    result = run_probe(backend)
    store.put(key, result)
    return result
