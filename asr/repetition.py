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


def _subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(t in it for t in short)


def find_segment_copy(tokens: list[int], is_timestamp) -> int | None:
    """Where a segment that restates the one before it starts, or None.

    Checked when `tokens` ends with a closing timestamp. Two segments in a row of at least
    LONG_PERIOD text tokens, where the shorter is the longer with a few tokens left out (at
    most a quarter), are the model looping with a small change ("I'm going to try and find
    the way" / "I'm going to find the way"), which find_loop's exact copies miss. A changed
    word is not a copy: "fix the login page" / "fix the signup page" is a list, not a loop.
    The index returned is where the second segment's first text token is.
    """
    if not tokens or not is_timestamp(tokens[-1]) or len(tokens) < 2 or is_timestamp(tokens[-2]):
        return None
    segments: list[tuple[int, list[int]]] = []  # (first text index, text tokens)
    for i, t in enumerate(tokens):
        if is_timestamp(t):
            continue
        if i == 0 or is_timestamp(tokens[i - 1]) or not segments:
            segments.append((i, []))
        segments[-1][1].append(t)
    if len(segments) < 2:
        return None
    (_, a), (start, b) = segments[-2], segments[-1]
    short, long = sorted((a, b), key=len)
    if len(short) < LONG_PERIOD or 4 * len(short) < 3 * len(long):
        return None
    return start if _subsequence(short, long) else None
