"""Fixtures for storage tests: an in-memory store and a fixed session for golden exports."""

from __future__ import annotations

from dataclasses import replace

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from storage import SessionStore, open_db
from storage.records import Citation, MarkRecord, SegmentRecord, SessionRecord, SummaryRecord

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def store() -> Iterator[SessionStore]:
    s = SessionStore(open_db(None))
    yield s
    s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "notetaker.db"


def fixed_session() -> tuple[SessionRecord, list[SegmentRecord], list[MarkRecord], SummaryRecord]:
    """A session with awkward text on purpose: unicode, Markdown/Obsidian syntax, a VTT arrow."""
    session = SessionRecord(
        id=7,
        title='Q3 "budget" review: café & naïve résumé',
        started_at=datetime(2025, 3, 4, 9, 30, 0, tzinfo=timezone.utc),
        ended_at=datetime(2025, 3, 4, 10, 31, 5, tzinfo=timezone.utc),
        status="complete",
        engine="voxtral",
        model="mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit",
        language="en",
        delay_ms=480,
        audio_path="/home/ana/.local/share/notetaker/audio/7.flac",
        duration_s=3665.25,
    )
    texts = [
        (0.0, 4.2, "Okay, let's start with the budget for Q3.", "mic", None, ()),
        (4.2, 9.87, "Priya says we're at $5k over — about 12% — on *cloud* costs.", "system", "Priya", ()),
        (83.5, 90.0, "Ünïcödé chéck: 東京オフィス, Zürich, São Paulo 🎉", None, None, ()),
        (
            3599.999,
            3605.5,
            "Decision --> move the #launch to [[April]] <b>not</b> March.",
            "mic",
            None,
            ("repetition",),
        ),
        (3605.5, 3610.0, "  Thank\tyou\nall.  ", None, None, ()),
    ]
    segments = [
        SegmentRecord(100 + i, 7, i + 1, start, end, text, ch, sp, flags)
        for i, (start, end, text, ch, sp, flags) in enumerate(texts)
    ]
    # One segment cleaned by a rewrite backend: Markdown shows the cleaned text, JSON keeps both.
    segments[0] = replace(segments[0], clean_text="OK, let's start with the Q3 budget.")
    # One corrected by the person: every format shows the correction, JSON keeps the heard text too.
    segments[1] = replace(segments[1], edited_text="Priya says we're $5k over (about 12%) on *cloud* costs.")
    marks = [
        MarkRecord(1, 7, 5.0, "action", "Priya to send the cloud cost breakdown"),
        MarkRecord(2, 7, 3600.4, "decision", "Launch moves to April"),
        MarkRecord(3, 7, 3606.0, "note", ""),
    ]
    summary = SummaryRecord(
        id=3,
        session_id=7,
        backend="mlx",
        model="mlx-community/Qwen3-4B-Instruct-4bit",
        created_at=datetime(2025, 3, 4, 10, 40, 0, tzinfo=timezone.utc),
        # Citations name segments by their number in the meeting (seq), not their id.
        markdown="- Q3 cloud costs are about 12% over budget. [#2]\n- **Decision:** the launch moves to April. [#4]",
        citations=(
            Citation("Q3 cloud costs are about 12% over budget.", (2,)),
            Citation("**Decision:** the launch moves to April.", (4,)),
        ),
    )
    return session, segments, marks, summary


def update_golden() -> bool:
    return os.environ.get("UPDATE_GOLDEN") == "1"


def speakers_session() -> tuple[SessionRecord, list[SegmentRecord], list[MarkRecord], dict[str, str]]:
    """A call with speaker labels: S2 is named (Anya) and talks in two consecutive segments
    (one turn), S1's turn is cut by a mark, S3 has no name, the last segment has no label."""
    session = SessionRecord(id=9, title="Design sync", started_at=datetime(2025, 5, 6, 14, 0, 0, tzinfo=timezone.utc),
                            duration_s=42.0, engine="whisper", model="tiny.en", language="en")
    texts = [
        (0.0, 3.0, "Shall we start?", "mic", "S1"),
        (3.2, 6.0, "Yes. The <mock-ups> are done.", "system", "S2"),
        (6.1, 9.5, "I'll send them *today*.", "system", "S2"),
        (10.0, 12.0, "Great.", "mic", "S1"),
        (12.5, 15.0, "Who reviews them?", "mic", "S1"),
        (15.5, 18.0, "I can.", "system", "S3"),
        (18.5, 20.0, "[laughter]", None, None),
    ]
    segments = [SegmentRecord(200 + i, 9, i + 1, start, end, text, ch, sp)
                for i, (start, end, text, ch, sp) in enumerate(texts)]
    marks = [MarkRecord(5, 9, 11.0, "action", "Anya sends the mock-ups")]
    return session, segments, marks, {"S2": "Anya"}
