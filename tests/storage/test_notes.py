"""The person's own notes: one committed line at a time, in time order, searchable, exported
(Markdown and JSON), kept by an import and deleted with their meeting."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage import SessionNotFound, SessionStore, StoreError, render


def _meeting(store: SessionStore) -> int:
    sid = store.create_session("Planning", "whisper", "tiny.en", started_at="2025-03-04T09:30:00Z")
    store.add_segment(sid, "We should ship on Friday", 0.0, 2.0)
    store.add_segment(sid, "Dana owns the release notes", 2.0, 5.0)
    return sid


def test_a_note_is_committed_when_added(db_path: Path) -> None:
    store = SessionStore.open(db_path)
    sid = store.create_session("Planning", "whisper", "tiny.en")
    note = store.add_note(sid, 12.5, "ask **Dana** about the _budget_")
    # A second connection (another process, or the file after a crash) sees it at once.
    other = sqlite3.connect(db_path)
    assert other.execute("SELECT session_id, t_s, text FROM notes").fetchall() == [
        (sid, 12.5, "ask **Dana** about the _budget_")]
    other.close()
    assert note.t_s == 12.5 and note.session_id == sid and note.created_at.tzinfo is not None
    store.close()


def test_notes_list_in_time_order_and_edit_and_delete(store: SessionStore) -> None:
    sid = _meeting(store)
    b = store.add_note(sid, 30.0, "second")
    a = store.add_note(sid, 10.0, "first")
    c = store.add_note(sid, 30.0, "third, same second")
    assert [n.text for n in store.notes(sid)] == ["first", "second", "third, same second"]
    assert store.edit_note(a.id, "first, edited").t_s == 10.0
    store.delete_note(c.id)
    assert [(n.id, n.text) for n in store.notes(sid)] == [(a.id, "first, edited"), (b.id, "second")]
    with pytest.raises(StoreError):
        store.edit_note(c.id, "gone")
    with pytest.raises(StoreError):
        store.delete_note(c.id)
    with pytest.raises(SessionNotFound):
        store.add_note(9999, 1.0, "nowhere")
    with pytest.raises(SessionNotFound):
        store.notes(9999)


def test_search_finds_notes_and_says_so(store: SessionStore) -> None:
    sid = _meeting(store)
    note = store.add_note(sid, 4.0, "check the zebrafish grant")
    store.add_note(sid, 5.0, "release notes are Dana's")
    (hit,) = store.search("zebrafish")
    assert hit.is_note and hit.kind == "note" and hit.note_id == note.id
    assert hit.segment_id is None and hit.seq is None and hit.start_s == 4.0 and "[zebrafish]" in hit.snippet
    kinds = sorted(h.kind for h in store.search("Dana"))
    assert kinds == ["note", "segment"]
    assert [h.kind for h in store.search("zebrafish", session_id=sid)] == ["note"]
    # Plain-words fallback and edits reach the notes' index too.
    assert store.search('zebra"fish') == []
    store.edit_note(note.id, "check the salamander grant")
    assert store.search("zebrafish") == [] and store.search("salamander")[0].note_id == note.id
    store.reindex()
    assert store.search("salamander")[0].note_id == note.id
    # A meeting with notes but no transcript is searched too.
    empty = store.create_session("Quiet", "whisper", "tiny.en")
    store.add_note(empty, 1.0, "nobody spoke about the yak")
    assert [h.session_id for h in store.search("yak", session_id=empty)] == [empty]


def test_notes_are_deleted_with_their_meeting(store: SessionStore) -> None:
    sid = _meeting(store)
    store.add_note(sid, 1.0, "about the walrus")
    store.delete_session(sid)
    assert store.db.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0
    assert store.search("walrus") == []


def test_markdown_and_json_exports_carry_the_notes(store: SessionStore) -> None:
    sid = _meeting(store)
    store.add_note(sid, 3725.0, "**ship** it, see [the plan](https://example.org)")
    store.add_note(sid, 2.0, "ask about\nthe budget")
    s = store.get_session(sid)
    md = render("md", s, store.segments(sid), store.marks(sid), store.summaries(sid), store.notes(sid))
    notes = md.split("## Notes\n\n", 1)[1].split("\n\n", 1)[0]
    assert notes.splitlines() == ["- **[00:00:02]** ask about the budget",
                                  "- **[01:02:05]** **ship** it, see [the plan](https://example.org)"]
    assert md.index("## Notes") < md.index("## Transcript")
    data = json.loads(render("json", s, store.segments(sid), notes=store.notes(sid)))
    assert [(n["t_s"], n["text"]) for n in data["notes"]] == [
        (2.0, "ask about\nthe budget"), (3725.0, "**ship** it, see [the plan](https://example.org)")]
    assert store.export_json(sid)["notes"] == data["notes"]
    # Other formats are the transcript alone.
    assert "budget" not in render("srt", s, store.segments(sid), notes=store.notes(sid))
    # No notes, no section.
    other = _meeting(store)
    assert "## Notes" not in render("md", store.get_session(other), store.segments(other))


def test_import_keeps_the_notes(store: SessionStore) -> None:
    sid = _meeting(store)
    store.add_note(sid, 2.0, "first", created_at="2025-03-04T09:30:02Z")
    store.add_note(sid, 9.0, "second about the narwhal", created_at="2025-03-04T09:30:09Z")
    data = json.loads(json.dumps(store.export_json(sid)))
    new = store.import_json(data)
    assert [(n.t_s, n.text, n.created_at) for n in store.notes(new)] == [
        (n.t_s, n.text, n.created_at) for n in store.notes(sid)]
    assert {h.session_id for h in store.search("narwhal")} == {sid, new}
    # An export from before notes (no "notes" key), or a note without its created time.
    del data["notes"]
    assert store.notes(store.import_json(data)) == []
    data["notes"] = [{"t_s": 1.0, "text": "hand-written"}]
    (note,) = store.notes(store.import_json(data))
    assert note.created_at == store.get_session(sid).started_at
    data["notes"] = [{"t_s": 1.0}]
    with pytest.raises(StoreError, match="note 1 has no text"):
        store.import_json(data)
