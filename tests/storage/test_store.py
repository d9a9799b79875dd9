"""SessionStore: sessions, segments, marks, summaries, recovery of crashed sessions, JSON exchange."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from storage import (
    Citation,
    SegmentNotFound,
    SessionNotFound,
    SessionStore,
    StoreError,
)
from storage.store import pid_alive


def _dead_pid() -> int:
    """The pid of a process we started and reaped: it is certainly gone."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _meeting(store: SessionStore, title: str = "Standup", **kw) -> int:
    sid = store.create_session(title, "whisper", "tiny.en", **kw)
    store.add_segment(sid, "Good morning everyone", 0.0, 2.5, channel="mic")
    store.add_segment(sid, "The budget review is on Thursday", 2.5, 6.0, speaker="Ana", flags=["repetition"])
    store.add_segment(sid, "Café crème for everyone 🎉", 6.0, 8.0)
    return sid


def test_create_and_get_session(store: SessionStore) -> None:
    started = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sid = store.create_session(
        "Planning",
        "voxtral",
        "m",
        language="en",
        delay_ms=480,
        audio_path=Path("/tmp/a.flac"),
        started_at=started,
    )
    s = store.get_session(sid)
    assert (s.title, s.status, s.engine, s.model, s.language, s.delay_ms, s.audio_path) == (
        "Planning",
        "recording",
        "voxtral",
        "m",
        "en",
        480,
        "/tmp/a.flac",
    )
    assert s.started_at == started and s.ended_at is None and s.duration_s is None


def test_segments_get_consecutive_seq_per_session(store: SessionStore) -> None:
    a = store.create_session("a", "e", "m")
    b = store.create_session("b", "e", "m")
    seqs = [store.add_segment(sid, f"t{i}", i, i + 1).seq for i, sid in enumerate([a, b, a, a, b])]
    assert seqs == [1, 1, 2, 3, 2]
    segs = store.segments(a)
    assert [s.seq for s in segs] == [1, 2, 3] and [s.text for s in segs] == ["t0", "t2", "t3"]


def test_segment_fields_round_trip(store: SessionStore) -> None:
    sid = _meeting(store)
    first, second, third = store.segments(sid)
    assert first.channel == "mic" and first.speaker is None and first.flags == ()
    assert second.speaker == "Ana" and second.flags == ("repetition",)
    assert third.text == "Café crème for everyone 🎉"
    assert store.get_segment(second.id) == second
    assert store.last_segment_end(sid) == 8.0


def test_add_segment_is_committed_immediately(db_path: Path) -> None:
    writer = SessionStore.open(db_path)
    sid = writer.create_session("live", "e", "m")
    writer.add_segment(sid, "first final", 0, 1)
    reader = SessionStore.open(db_path)  # another connection sees it without any flush
    assert [s.text for s in reader.segments(sid)] == ["first final"]
    assert reader.get_session(sid).status == "recording"  # owned by this live process


def test_finish_rename_delete(store: SessionStore) -> None:
    sid = _meeting(store)
    store.finish_session(sid, duration_s=8.0)
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s == 8.0 and s.ended_at is not None
    store.rename_session(sid, "Daily standup")
    assert store.get_session(sid).title == "Daily standup"
    store.add_mark(sid, 1.0, "action", "send notes")
    store.add_summary(sid, "mlx", "q", "- ok")
    store.delete_session(sid)
    with pytest.raises(SessionNotFound):
        store.get_session(sid)
    for table in ("segments", "marks", "summaries"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_missing_things_raise_clear_errors(store: SessionStore) -> None:
    for call in (
        lambda: store.get_session(42),
        lambda: store.segments(42),
        lambda: store.add_segment(42, "x", 0, 1),
        lambda: store.finish_session(42),
        lambda: store.rename_session(42, "x"),
        lambda: store.delete_session(42),
        lambda: store.add_mark(42, 0, "note"),
        lambda: store.marks(42),
        lambda: store.add_summary(42, "b", "m", "x"),
        lambda: store.latest_summary(42),
        lambda: store.last_segment_end(42),
        lambda: store.export_json(42),
    ):
        with pytest.raises(SessionNotFound, match="no session 42; `notetaker sessions` lists them"):
            call()
    with pytest.raises(SegmentNotFound):
        store.update_segment_text(9, "x")
    with pytest.raises(SegmentNotFound):
        store.delete_segment(9)
    sid = store.create_session("t", "e", "m")
    with pytest.raises(StoreError, match="a mark is one of"):
        store.add_mark(sid, 0, "todo")
    with pytest.raises(StoreError, match="not an ISO-8601 time"):
        store.create_session("t", "e", "m", started_at="last Tuesday")
    with pytest.raises(StoreError, match="complete or interrupted"):
        store.finish_session(sid, status="recording")
    with pytest.raises(StoreError) as err:
        store.add_segment(sid, None, 0, 1)  # type: ignore[arg-type]
    assert not isinstance(err.value, SessionNotFound)
    assert store.segments(sid) == [] and store.marks(sid) == [] and store.latest_summary(sid) is None
    assert store.last_segment_end(sid) == 0.0


def test_list_sessions_newest_first_with_paging(store: SessionStore) -> None:
    ids = [
        store.create_session(f"s{d}", "e", "m", started_at=datetime(2025, 1, d, tzinfo=timezone.utc))
        for d in (3, 1, 2)
    ]
    assert [s.title for s in store.list_sessions()] == ["s3", "s2", "s1"]
    assert [s.id for s in store.list_sessions(limit=1, offset=1)] == [ids[2]]
    assert len(store.list_sessions(limit=2)) == 2


def test_marks_and_summaries(store: SessionStore) -> None:
    sid = _meeting(store)
    store.add_mark(sid, 5.0, "decision", "ship it")
    store.add_mark(sid, 1.0, "question", "who owns QA?")
    assert [(m.t_s, m.kind) for m in store.marks(sid)] == [(1.0, "question"), (5.0, "decision")]
    seqs = [s.seq for s in store.segments(sid)]
    first = store.add_summary(sid, "mlx", "q", "- old", created_at="2025-01-01T10:00:00Z")
    second = store.add_summary(
        sid,
        "mlx",
        "q",
        "- budget review Thursday",
        citations=[
            Citation("budget review Thursday", (seqs[1],)),
            {"bullet": "b", "seqs": [seqs[0]]},
        ],
        created_at=datetime(2025, 1, 1, 11, tzinfo=timezone.utc),
    )
    latest = store.latest_summary(sid)
    assert latest == second and latest != first
    assert latest.citations == (
        Citation("budget review Thursday", (seqs[1],)),
        Citation("b", (seqs[0],)),
    )
    assert [s.id for s in store.summaries(sid)] == [first.id, second.id]
    with pytest.raises(StoreError, match="citation"):
        store.add_summary(sid, "mlx", "q", "x", citations=[{"seqs": [1]}])


def test_update_and_delete_segment(store: SessionStore) -> None:
    sid = _meeting(store)
    seg = store.segments(sid)[0]
    updated = store.update_segment_text(seg.id, "Good morning, everyone.")
    assert updated.text == "Good morning, everyone." and updated.seq == seg.seq
    store.delete_segment(seg.id)
    assert [s.seq for s in store.segments(sid)] == [2, 3]


def test_cleaned_text_is_stored_beside_the_raw_text(store: SessionStore) -> None:
    sid = _meeting(store)
    first, second, third = store.segments(sid)
    assert [s.id for s in store.uncleaned_segments(sid)] == [first.id, second.id, third.id]
    store.set_clean_text({first.id: "Good morning, everyone.", third.id: "Café crème for everyone! 🎉"})
    got = store.segments(sid)
    assert [s.text for s in got] == [first.text, second.text, third.text]  # raw text untouched
    assert [s.clean_text for s in got] == ["Good morning, everyone.", None, "Café crème for everyone! 🎉"]
    assert [s.display_text for s in got] == ["Good morning, everyone.", second.text, "Café crème for everyone! 🎉"]
    assert [s.id for s in store.uncleaned_segments(sid)] == [second.id]
    assert [s.id for s in store.uncleaned_segments(sid, limit=1)] == [second.id]
    # An unknown id writes nothing at all.
    with pytest.raises(SegmentNotFound):
        store.set_clean_text({second.id: "The budget review is on Thursday.", 99999: "x"})
    assert store.get_segment(second.id).clean_text is None
    # Search still finds the raw words.
    assert store.search("morning")[0].segment_id == first.id
    with pytest.raises(SessionNotFound):
        store.uncleaned_segments(424242)


# ------------------------------------------------------------ recovery


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
    assert not pid_alive(0) and not pid_alive(-5)


def test_dead_owner_becomes_interrupted_live_owner_does_not(db_path: Path) -> None:
    store = SessionStore.open(db_path)
    crashed = store.create_session("crashed", "e", "m")
    store.add_segment(crashed, "last words", 0.0, 42.5)
    orphan = store.create_session("no owner recorded", "e", "m")
    live = store.create_session("still recording here", "e", "m")
    store.db.execute("UPDATE sessions SET owner_pid = ? WHERE id = ?", [_dead_pid(), crashed])
    store.db.execute("UPDATE sessions SET owner_pid = NULL WHERE id = ?", [orphan])
    store.close()

    reopened = SessionStore.open(db_path)
    assert set(reopened.recovered) == {crashed, orphan}
    assert reopened.get_session(crashed).status == "interrupted"
    assert reopened.get_session(crashed).duration_s == 42.5
    assert reopened.get_session(orphan).status == "interrupted"
    assert reopened.get_session(live).status == "recording"
    assert {s.id for s in reopened.interrupted_sessions()} == {crashed, orphan}
    assert reopened.last_segment_end(crashed) == 42.5  # where re-transcription picks up
    assert SessionStore.open(db_path).recovered == ()  # nothing left to do


def test_session_recorded_by_another_live_process_is_not_flipped(db_path: Path) -> None:
    code = (
        "import sys, time; from storage import SessionStore;"
        f"s = SessionStore.open({str(db_path)!r}); print(s.create_session('other', 'e', 'm'), flush=True);"
        "sys.stdin.readline()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        sid = int(proc.stdout.readline())
        assert SessionStore.open(db_path).get_session(sid).status == "recording"
    finally:
        proc.stdin.close()
        proc.wait()
    assert SessionStore.open(db_path).get_session(sid).status == "interrupted"


# ------------------------------------------------------------ JSON exchange


def _strip_ids(data: dict) -> dict:
    """Ids change on import; segment numbers (seq), which citations name, do not."""
    data = json.loads(json.dumps(data))
    data["session"].pop("id")
    for s in data["segments"]:
        s.pop("id")
    for m in data["marks"]:
        m.pop("id")
    for summ in data["summaries"]:
        summ.pop("id")
    return data


def test_json_round_trip(store: SessionStore) -> None:
    sid = _meeting(store, language="en", delay_ms=480, audio_path="/a.flac")
    store.delete_segment(store.segments(sid)[1].id)  # a seq gap must survive
    store.add_segment(sid, "after the gap", 10, 11)
    store.add_mark(sid, 2.0, "action", "book room")
    segs = store.segments(sid)
    store.set_clean_text({segs[0].id: "Good morning, everyone."})
    store.add_summary(sid, "mlx", "q", "- one [#1, #4]", citations=[Citation("one", (segs[0].seq, segs[2].seq))])
    store.add_summary(sid, "openai", "gpt", "- two")
    store.finish_session(sid, duration_s=11.0)

    exported = store.export_json(sid)
    new_id = store.import_json(json.loads(json.dumps(exported)))
    assert new_id != sid
    again = store.export_json(new_id)
    assert again["session"]["id"] == new_id
    assert {s["id"] for s in again["segments"]}.isdisjoint({s["id"] for s in exported["segments"]})
    assert _strip_ids(again) == _strip_ids(exported)
    assert [s["seq"] for s in again["segments"]] == [1, 3, 4]
    assert again["segments"][0]["clean_text"] == "Good morning, everyone."
    # The copy is searchable like the original.
    assert {h.session_id for h in store.search("gap")} == {sid, new_id}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"session": "nope"},
        {"session": {"title": "x"}},  # no started_at
        {"session": {"started_at": "yesterday"}},
        {"session": {"started_at": "2025-01-01T00:00:00Z", "status": "paused"}},
        {"session": {"started_at": "2025-01-01T00:00:00Z"}, "segments": [{"text": "x"}]},
        {
            "session": {"started_at": "2025-01-01T00:00:00Z"},
            "segments": [{"text": 5, "start_s": 0, "end_s": 1}],
        },
        {
            "session": {"started_at": "2025-01-01T00:00:00Z"},
            "segments": [
                {"seq": 1, "text": "a", "start_s": 0, "end_s": 1},
                {"seq": 1, "text": "b", "start_s": 1, "end_s": 2},
            ],
        },
        {"session": {"started_at": "2025-01-01T00:00:00Z"}, "marks": [{"t_s": 1, "kind": "todo"}]},
        {"session": {"started_at": "2025-01-01T00:00:00Z"}, "summaries": [{"markdown": "x"}]},
        {"format": "something.else", "session": {"started_at": "2025-01-01T00:00:00Z"}},
        {"version": 99, "session": {"started_at": "2025-01-01T00:00:00Z"}},
    ],
)
def test_import_rejects_bad_data_atomically(store: SessionStore, data: object) -> None:
    before = len(store.list_sessions())
    with pytest.raises(StoreError) as err:
        store.import_json(data)
    assert "\n" not in str(err.value)
    assert len(store.list_sessions()) == before


def test_import_of_a_recording_session_marks_it_interrupted(store: SessionStore) -> None:
    sid = store.create_session("live", "e", "m")
    new_id = store.import_json(store.export_json(sid))
    assert store.get_session(new_id).status == "interrupted"


# ------------------------------------------------------------ threads and the write path


def test_one_store_shared_by_threads(db_path: Path) -> None:
    store = SessionStore.open(db_path)
    store.fts_batch = 7
    sid = store.create_session("threads", "e", "m")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.add_segment(sid, f"thread {n} line {i}", i, i + 1)
                store.search(f"thread {n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s.seq for s in store.segments(sid)] == list(range(1, 201))


def test_a_caller_transaction_is_respected(store: SessionStore) -> None:
    sid = store.create_session("t", "e", "m")
    with pytest.raises(RuntimeError):
        with store.db.atomic():
            store.add_segment(sid, "rolled back with the caller", 0, 1)
            raise RuntimeError
    assert store.segments(sid) == []


def test_to_json_is_export_json(store: SessionStore) -> None:
    from storage.export import render, to_json

    sid = _meeting(store)
    store.add_mark(sid, 1.0, "note", "hello")
    store.add_summary(sid, "mlx", "q", "- a", created_at="2025-01-01T10:00:00Z")
    store.add_summary(sid, "mlx", "q", "- b", created_at="2025-01-01T11:00:00Z")
    args = (store.get_session(sid), store.segments(sid), store.marks(sid))
    every = store.summaries(sid)
    assert json.loads(to_json(*args, summaries=every)) == store.export_json(sid)
    assert json.loads(render("json", *args, every)) == store.export_json(sid)
    assert "- b" in render("md", *args, every) and "- a" not in render("md", *args, every)
