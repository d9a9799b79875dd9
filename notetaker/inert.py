"""Showing stored text in a terminal without the terminal obeying it."""

from __future__ import annotations

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INERT = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_INERT.update({ord(c): f"\\u{ord(c):04x}" for c in _BIDI})


def inert(text: str) -> str:
    """Text from the database as a terminal shows it without obeying it: control
    characters (ESC sequences, carriage returns, bells) and bidi overrides become visible
    escapes. A title or transcript imported from JSON can hold anything."""
    return str(text).translate(_INERT)
