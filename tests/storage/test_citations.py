"""Citations a reader can follow: segments are numbered per meeting (seq), summaries cite those
numbers, every export shows them, and they survive export → import and old databases."""

from __future__ import annotations

import json
import re
from pathlib import Path

from storage import Citation, SessionStore, render
from storage.citations import renumber
from storage.db import open_db


def _other_meetings(store: SessionStore, n: int = 3, each: int = 15) -> None:
    for k in range(n):
        sid = store.create_session(f"Earlier {k}", "whisper", "tiny")
        for i in range(each):
            store.add_segment(sid, f"earlier meeting {k} line {i}", i, i + 1)
        store.finish_session(sid)


def _meeting(store: SessionStore, n: int = 20) -> int:
    sid = store.create_session("Planning", "whisper", "tiny")
    for i in range(n):
        store.add_segment(sid, f"sentence number {i + 1} of the meeting", 3.0 * i, 3.0 * i + 2.5)
    store.finish_session(sid)
    return sid


def _text_of(store: SessionStore, sid: int) -> dict[int, str]:
    return {s.seq: s.text for s in store.segments(sid)}


def test_a_meeting_after_others_is_numbered_from_one(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "db.sqlite") as store:
        _other_meetings(store)
        sid = _meeting(store)
        segs = store.segments(sid)
        assert min(s.id for s in segs) > 40  # database-wide ids are large
        assert [s.seq for s in segs] == list(range(1, 21))
        session, marks = store.get_session(sid), store.marks(sid)
        md = render("md", session, segs, marks)
        assert "**[#1 00:00:00]** sentence number 1 of the meeting" in md
        assert "**[#20 00:00:57]** sentence number 20 of the meeting" in md
        srt = render("srt", session, segs, marks)
        assert [c.split("\n")[0] for c in srt.strip().split("\n\n")] == [str(n) for n in range(1, 21)]
        vtt = render("vtt", session, segs, marks)
        assert [c.split("\n")[0] for c in vtt.strip().split("\n\n")[1:]] == [str(n) for n in range(1, 21)]
        txt = render("txt", session, segs, marks)
        assert re.findall(r"^\[#(\d+) ", txt, re.M) == [str(n) for n in range(1, 21)]
        data = json.loads(render("json", session, segs, marks))
        assert [s["seq"] for s in data["segments"]] == list(range(1, 21))


def test_export_then_import_keeps_citations_on_the_same_sentences(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "a.sqlite") as a:
        _other_meetings(a, n=1)
        sid = _meeting(a)
        a.add_summary(sid, "echo", "m", "- Decision: go [#3, #7-#9]\n- Action: Ann writes it [#20]",
                      citations=[Citation("Decision: go", (3, 7, 8, 9)), Citation("Action: Ann writes it", (20,))])
        exported = json.loads(json.dumps(a.export_json(sid)))
        before = _text_of(a, sid)
    with SessionStore.open(tmp_path / "b.sqlite") as b:
        _other_meetings(b, n=4)  # ids in the new database differ from the exporter's
        new = b.import_json(exported)
        after = _text_of(b, new)
        summary = b.latest_summary(new)
        assert summary.markdown == "- Decision: go [#3, #7-#9]\n- Action: Ann writes it [#20]"
        for c in summary.citations:
            assert [after[n] for n in c.seqs] == [before[n] for n in c.seqs]
        assert after[20] == "sentence number 20 of the meeting"
        # and once more through a second export
        again = b.import_json(b.export_json(new))
        assert b.latest_summary(again).citations == summary.citations


def test_a_deleted_segment_leaves_a_gap_and_citations_stay_put(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "db.sqlite") as store:
        sid = _meeting(store, 5)
        store.delete_segment(store.segments(sid)[1].id)
        store.add_segment(sid, "added later", 20, 21)
        assert [s.seq for s in store.segments(sid)] == [1, 3, 4, 5, 6]
        assert _text_of(store, sid)[4] == "sentence number 4 of the meeting"


def test_version_1_export_citing_ids_is_read_as_numbers(tmp_path: Path) -> None:
    v1 = {
        "format": "notetaker.session", "version": 1,
        "session": {"id": 9, "title": "old", "started_at": "2025-01-01T10:00:00Z", "status": "complete"},
        "segments": [{"id": 500 + i, "seq": i, "start_s": i, "end_s": i + 1, "text": f"line {i}"}
                     for i in range(1, 6)],
        "summaries": [{"created_at": "2025-01-01T11:00:00Z",
                       "markdown": "- one [#501]\n- two [#502-#504]\n- gone [#999]",
                       "citations": [{"bullet": "one", "segment_ids": [501]},
                                     {"bullet": "two", "segment_ids": [502, 503, 504]}]}],
    }
    with SessionStore.open(tmp_path / "db.sqlite") as store:
        _other_meetings(store, n=1)
        sid = store.import_json(v1)
        summary = store.latest_summary(sid)
        assert summary.markdown == "- one [#1]\n- two [#2-#4]\n- gone"
        assert summary.citations == (Citation("one", (1,)), Citation("two", (2, 3, 4)))


def _downgrade(path: Path, summaries: list[tuple[int, str, list[dict]]]) -> None:
    """Make the file look written before schema 4: summaries citing database ids."""
    db = open_db(path)
    for session_id, markdown, cites in summaries:
        db.execute("INSERT INTO summaries (session_id, backend, model, created_at, markdown, citations)"
                   " VALUES (?, 'mlx', 'm', '2025-01-01T00:00:00Z', ?, ?)", [session_id, markdown, json.dumps(cites)])
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0004_citations_by_segment_number'")
    db.conn.commit()
    db.conn.close()


def test_old_summaries_citing_ids_are_migrated_to_numbers(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with SessionStore.open(path) as store:
        _other_meetings(store)
        sid = _meeting(store)
        ids = {s.seq: s.id for s in store.segments(sid)}
    md = f"### Decisions\n- Ship it [#{ids[2]}, #{ids[5]}-#{ids[7]}]\n- Later [#{ids[20]}]"
    cites = [{"bullet": "Ship it", "segment_ids": [ids[2], ids[5], ids[6], ids[7]]},
             {"bullet": "Later", "segment_ids": [ids[20]]}]
    # Imported before schema 4: the text kept the exporting database's ids, the citations were remapped.
    stale = "- First [#3]\n- Second [#4, #5]"
    stale_cites = [{"bullet": "First", "segment_ids": [ids[10]]}, {"bullet": "Second", "segment_ids": [ids[11]]}]
    _downgrade(path, [(sid, md, cites), (sid, stale, stale_cites)])
    with SessionStore.open(path) as store:
        native, imported = store.summaries(sid)
        assert native.markdown == "### Decisions\n- Ship it [#2, #5-#7]\n- Later [#20]"
        assert native.citations == (Citation("Ship it", (2, 5, 6, 7)), Citation("Later", (20,)))
        assert imported.markdown == "- First [#10]\n- Second [#11]"
        assert imported.citations == (Citation("First", (10,)), Citation("Second", (11,)))


def test_renumber_drops_what_has_no_number() -> None:
    assert renumber("- a [#10, #11] b [#12-#13]. c [#99]", {10: 1, 11: 2, 12: 3, 13: 4}) == (
        "- a [#1, #2] b [#3-#4]. c", 1)
    assert renumber("no citations [here]", {}) == ("no citations [here]", 0)
