"""Errors as people read them."""

from __future__ import annotations


def one_line(e: BaseException) -> str:
    """An exception as one line of words: its message with the whitespace folded, or its
    class name when it has none."""
    return " ".join(str(e).split()) or type(e).__name__
