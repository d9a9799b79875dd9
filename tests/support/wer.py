"""Word error rate with an English normaliser (case, punctuation, hyphens, numbers,
common abbreviations), so "Mr. Dashwood's 10 cards" and "mister dashwood's ten cards" agree."""

from __future__ import annotations

import re

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
        "sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "%": "percent", "&": "and",
           "ok": "okay", "vs": "versus"}


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return _number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + _number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    text = re.sub(r"(\d+)\s*%", r"\1 percent", text)
    text = re.sub(r"\d+", lambda m: " " + _number_words(int(m.group())) + " ", text)
    text = re.sub(r"[-_/]", " ", text)
    text = re.sub(r"[^\w' ]+", " ", text)
    words = []
    for w in text.split():
        w = w.strip("'")
        if w:
            words.extend(_ABBREV.get(w, w).split())
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: total edits over total reference words."""
    edits = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = normalize(ref), normalize(hyp)
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(1, words)
