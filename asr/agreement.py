"""LocalAgreement-2 for segment-style engines (after Macháček et al., whisper_streaming):
the open utterance is re-decoded about every second; words on which the last two
hypotheses agree are committed (and forced as the decoder's prefix from then on), the
rest is the unstable tail shown as the partial."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w']+", re.UNICODE)


def plain_word(word: str) -> str:
    """A word as agreement compares it: case and punctuation do not matter ("Friday," and
    "Friday." are the same word)."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", word).casefold())


class LocalAgreement:
    def __init__(self) -> None:
        self.committed: list[str] = []
        self._previous: list[str] | None = None

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    def update(self, hypothesis: str) -> tuple[list[str], list[str]]:
        """Take the newest hypothesis of the whole utterance; returns (newly committed, tail)."""
        words = hypothesis.split()
        # The hypothesis starts with the committed prefix (it was forced); skip it.
        k = len(self.committed)
        if [plain_word(w) for w in words[:k]] == [plain_word(w) for w in self.committed]:
            new = words[k:]
        else:
            new = words[k:] if len(words) > k else []
        newly: list[str] = []
        if self._previous is not None:
            for a, b in zip(self._previous, new):
                if plain_word(a) != plain_word(b) or not plain_word(b):
                    break
                newly.append(b)
        self.committed.extend(newly)
        tail = new[len(newly):]
        self._previous = tail
        return newly, tail

    def reset(self) -> None:
        self.committed = []
        self._previous = None
