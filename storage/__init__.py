"""Meeting storage: SQLite via sqlite-utils. Imports nothing from notetaker, asr or rewrite."""

from storage.db import open_db, schema_version
from storage.errors import BadQuery, SegmentNotFound, SessionNotFound, StoreError
from storage.export import FORMATS, render
from storage.records import (
    Citation,
    MarkRecord,
    MeetingHits,
    NoteRecord,
    SearchHit,
    SegmentRecord,
    SessionRecord,
    SummaryRecord,
    TextChange,
)
from storage.speakers import SpeakerRecord
from storage.store import SessionStore

__all__ = [
    "FORMATS",
    "BadQuery",
    "Citation",
    "MarkRecord",
    "MeetingHits",
    "NoteRecord",
    "SearchHit",
    "SegmentNotFound",
    "SegmentRecord",
    "SessionNotFound",
    "SessionRecord",
    "SessionStore",
    "SpeakerRecord",
    "StoreError",
    "SummaryRecord",
    "TextChange",
    "open_db",
    "render",
    "schema_version",
]
