"""Repetition loops in decoded tokens, shared by the autoregressive decoders (Whisper,
Qwen3-ASR): a loop is cut and the text flagged, never shown as speech."""

from __future__ import annotations


LONG_PERIOD = 8  # tokens (about six words): a sentence said twice in a row is a loop


def _min_repeats(period: int) -> int:
    # "no, no, no" is speech; eight of one token, four of a short phrase, three of a clause
    # or two of a whole sentence back-to-back is a decoding loop (a person repeats a few
    # words, not a sentence: tiny.en writes one hallucinated sentence for two segments).
    return 8 if period == 1 else 4 if period <= 4 else 3 if period < LONG_PERIOD else 2


def find_loop(text_tokens: list[int], max_period: int = 32) -> int | None:
    """Where a repetition loop at the end of `text_tokens` starts repeating, or None.

    The index returned keeps one copy of the repeated pattern.
    """
    n = len(text_tokens)
    for p in range(1, min(max_period, n // 2) + 1):
        tail = text_tokens[n - p :]
        reps = 1
        while n - (reps + 1) * p >= 0 and text_tokens[n - (reps + 1) * p : n - reps * p] == tail:
            reps += 1
        if reps >= _min_repeats(p):
            return n - reps * p + p
    return None
