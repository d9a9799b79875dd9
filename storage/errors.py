"""Errors a person can cause or fix; each message is one line with no SQL in it."""

from __future__ import annotations


class StoreError(Exception):
    """A storage problem shown to the user as one line (bad file, busy database, bad data)."""


class SessionNotFound(StoreError):
    def __init__(self, session_id: int) -> None:
        super().__init__(f"no session {session_id}; `notetaker sessions` lists them")
        self.session_id = session_id


class SegmentNotFound(StoreError):
    def __init__(self, segment_id: int) -> None:
        super().__init__(f"no segment {segment_id}; `notetaker show SESSION` lists them")
        self.segment_id = segment_id


class BadQuery(StoreError):
    """A search query that cannot be searched; the message says why in plain words."""
