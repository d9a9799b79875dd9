"""Search: the index follows every change, bm25 order, snippets, and any typed string is safe."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from storage import BadQuery, SessionNotFound, SessionStore
from storage.search import MAX_QUERY_CHARS, clean_query, plain_words_query

SQL_WORDS = (
    "select",
    "fts5",
    "syntax error",
    'near "',
    "sqlite",
    "match",
    "operationalerror",
    "no such column",
)


def _index_is_consistent(store: SessionStore) -> None:
    """FTS5's own check that the index matches the segments table (after indexing the queue)."""
    store.index_now()
    store.db.conn.execute("INSERT INTO segments_fts (segments_fts, rank) VALUES ('integrity-check', 1)")


def _texts(store: SessionStore, query: str, **kw) -> list[str]:
    return [store.get_segment(h.segment_id).text for h in store.search(query, **kw)]


@pytest.fixture
def meeting(store: SessionStore) -> int:
    sid = store.create_session("Budget review", "e", "m")
    for i, text in enumerate(
        [
            "We need to cut the budget before the deadline",
            "The deadline moved to Friday",
            "Café résumé naïve",
            "Let's talk about hiring",
        ]
    ):
        store.add_segment(sid, text, i * 5.0, i * 5.0 + 4.0)
    return sid


def test_index_follows_inserts_updates_and_deletes(store: SessionStore, meeting: int) -> None:
    assert _texts(store, "budget") == ["We need to cut the budget before the deadline"]
    seg = store.add_segment(meeting, "Another budget line", 20, 24)
    assert len(store.search("budget")) == 2

    store.update_segment_text(seg.id, "Another hiring line")
    assert len(store.search("budget")) == 1
    assert {h.segment_id for h in store.search("hiring")} >= {seg.id}

    store.delete_segment(seg.id)
    assert seg.id not in {h.segment_id for h in store.search("hiring")}
    _index_is_consistent(store)

    store.delete_session(meeting)
    assert store.search("deadline") == [] and store.search("hiring") == []
    _index_is_consistent(store)


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_batched_indexing_stays_consistent(store: SessionStore, batch: int) -> None:
    """Rows wait above a watermark until a batch is indexed; edits on either side must stay right."""
    store.fts_batch = batch
    sid = store.create_session("t", "e", "m")
    segs = [store.add_segment(sid, f"word{i} common", i, i + 1) for i in range(10)]
    store.update_segment_text(segs[9].id, "changed while queued")  # likely above the watermark
    store.update_segment_text(segs[0].id, "changed after indexing")
    store.delete_segment(segs[8].id)
    store.delete_segment(segs[1].id)
    assert len(store.search("common")) == 6  # 10 - 2 edited away - 2 deleted
    assert len(store.search("changed")) == 2
    _index_is_consistent(store)
    # The newest row deleted, then its rowid reused by the next insert.
    store.delete_segment(segs[7].id)
    store.index_now()
    store.delete_segment(store.segments(sid)[-1].id)
    reused = store.add_segment(sid, "reused rowid text", 20, 21)
    assert [h.segment_id for h in store.search("reused")] == [reused.id]
    _index_is_consistent(store)


def test_other_process_sees_unindexed_finals(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    writer = SessionStore.open(path)
    sid = writer.create_session("t", "e", "m")
    writer.add_segment(sid, "fresh final", 0, 1)  # committed, not yet indexed
    reader = SessionStore.open(path)
    assert [h.segment_id for h in reader.search("fresh")] == [writer.segments(sid)[0].id]


def test_bm25_orders_best_first(store: SessionStore) -> None:
    sid = store.create_session("t", "e", "m")
    weak = store.add_segment(sid, "budget " + " ".join(f"filler{i}" for i in range(40)), 0, 1)
    strong = store.add_segment(sid, "budget budget budget", 1, 2)
    medium = store.add_segment(sid, "the budget is tight this quarter", 2, 3)
    hits = store.search("budget")
    assert [h.segment_id for h in hits] == [strong.id, medium.id, weak.id]
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert store.search("budget", limit=1)[0].segment_id == strong.id


def test_snippet_highlights_and_trims(store: SessionStore, meeting: int) -> None:
    long_text = " ".join(f"w{i}" for i in range(30)) + " target " + " ".join(f"v{i}" for i in range(30))
    seg = store.add_segment(meeting, long_text, 30, 40)
    hit = store.search("target")[0]
    assert hit.segment_id == seg.id and "[target]" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet.split()) <= 12
    custom = store.search("deadline", highlight=("<<", ">>"))
    assert all("<<deadline>>" in h.snippet.lower() for h in custom)
    assert {h.session_title for h in custom} == {"Budget review"}


def test_hit_fields(store: SessionStore, meeting: int) -> None:
    hit = store.search("Friday")[0]
    seg = store.get_segment(hit.segment_id)
    assert (hit.session_id, hit.seq, hit.start_s, hit.end_s) == (meeting, seg.seq, seg.start_s, seg.end_s)


def test_session_filter(store: SessionStore, meeting: int) -> None:
    other = store.create_session("Other", "e", "m")
    store.add_segment(other, "budget talk elsewhere", 0, 1)
    assert len(store.search("budget")) == 2
    assert {h.session_id for h in store.search("budget", session_id=other)} == {other}
    assert store.search("hiring", session_id=other) == []
    # Interleaved sessions: the other session's rows sit inside this one's id range.
    store.add_segment(meeting, "budget again", 50, 51)
    store.add_segment(other, "budget third", 2, 3)
    assert {h.session_id for h in store.search("budget", session_id=other)} == {other}
    assert len(store.search("budget", session_id=other)) == 2
    assert len(store.search("budget", session_id=meeting)) == 2
    empty = store.create_session("empty", "e", "m")
    assert store.search("budget", session_id=empty) == []
    with pytest.raises(SessionNotFound):
        store.search("budget", session_id=999)


def test_power_syntax(store: SessionStore, meeting: int) -> None:
    assert len(store.search("budget AND deadline")) == 1
    assert len(store.search("budget OR Friday")) == 2
    assert len(store.search("deadline NOT budget")) == 1
    assert len(store.search("NEAR(cut deadline, 5)")) == 1
    assert len(store.search("dead*")) == 2
    assert len(store.search('"moved to Friday"')) == 1
    assert len(store.search("text:hiring")) == 1
    assert len(store.search("cafe resume")) == 1  # diacritics folded
    assert len(store.search("Let's")) == 1  # not FTS5 syntax: searched as words


NASTY = [
    '"unbalanced',
    'balanced "phrase here"',
    '"',
    '""',
    "'single'",
    "(budget",
    "budget)",
    "((()))",
    "AND",
    "OR budget",
    "NOT",
    "budget NOT",
    "NEAR(",
    "NEAR(budget deadline",
    "NEAR(budget, -1)",
    "*",
    "***",
    "*budget",
    "budg*",
    "text:budget",
    "title:budget",
    "locked:budget",
    "busy) disk( readonly",
    "-budget",
    "follow-up",
    "3.5",
    "c++",
    "{text}: budget",
    "^budget",
    "budget:",
    ":",
    "🎉",
    "🎉 budget 🚀",
    "ﷺ ࿕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "x\x00y",
    "tab\tand\nnewline",
    "\ud800 lone surrogate",
    "DROP TABLE segments; --",
    "'; SELECT * FROM sessions; --",
    "budget" + " budget" * 80,
    "a" * 499,
    "word " * 99 + "word",
]


@pytest.mark.parametrize("query", NASTY)
def test_any_typed_string_searches_or_raises_badquery(store: SessionStore, meeting: int, query: str) -> None:
    try:
        hits = store.search(query)
    except BadQuery as exc:
        message = str(exc)
        assert "\n" not in message
        assert not any(word in message.lower() for word in SQL_WORDS), message
    else:
        assert isinstance(hits, list)
    assert len(store.segments(meeting)) == 4  # and nothing was harmed


@pytest.mark.parametrize("query", ["", "   ", "\t\n", "\x00"])
def test_empty_query(store: SessionStore, query: str) -> None:
    with pytest.raises(BadQuery, match="empty query"):
        store.search(query)


def test_huge_query_is_refused_quickly(store: SessionStore, meeting: int) -> None:
    for query in ("budget " * 1500, "a* " * 3400, '"' * 10_000, "🎉" * 10_000):
        assert len(query) > MAX_QUERY_CHARS
        t0 = time.perf_counter()
        with pytest.raises(BadQuery, match="too long"):
            store.search(query)
        assert time.perf_counter() - t0 < 0.5


def test_fallback_always_parses(store: SessionStore, meeting: int) -> None:
    conn: sqlite3.Connection = store.db.conn
    for query in NASTY + ['a"b', '"""', "x*y*", "**a**"]:
        try:
            fallback = plain_words_query(clean_query(query))
        except BadQuery:
            continue
        if fallback:
            conn.execute("SELECT rowid FROM segments_fts WHERE segments_fts MATCH ?", [fallback]).fetchall()


def test_limit(store: SessionStore) -> None:
    sid = store.create_session("t", "e", "m")
    for i in range(30):
        store.add_segment(sid, f"repeat {i}", i, i + 1)
    assert len(store.search("repeat")) == 20
    assert len(store.search("repeat", limit=5)) == 5
    assert store.search("repeat", limit=0) == []


def test_a_query_that_runs_too_long_is_stopped(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import storage.search

    sid = store.create_session("t", "e", "m")
    store.import_json(
        {
            "session": {"started_at": "2025-01-01T00:00:00Z"},
            "segments": [
                {"seq": i, "start_s": i, "end_s": i + 1, "text": f"common words {i}"} for i in range(3000)
            ],
        }
    )
    monkeypatch.setattr(storage.search, "DEADLINE_S", -1.0)  # every query is already late
    with pytest.raises(BadQuery, match="too much"):
        store.search("common")
    monkeypatch.undo()
    assert len(store.search("common")) == 20
    assert store.segments(sid) == []


def test_broad_queries_rank_their_newest_matches(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.search

    sid = store.create_session("t", "e", "m")
    best_but_old = store.add_segment(sid, "budget budget budget", 0, 1)
    newer = [store.add_segment(sid, f"budget and filler words number {i}", i, i + 1) for i in range(1, 6)]
    assert store.search("budget")[0].segment_id == best_but_old.id  # window larger than the matches
    monkeypatch.setattr(storage.search, "RANK_WINDOW", 3)
    hits = store.search("budget")
    assert {h.segment_id for h in hits} == {s.id for s in newer[-3:]}
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert len(store.search("budget", session_id=sid)) == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (" ".join(["word"] * 40), "too many words"),
        ("a* b* c* d* e*", "too many prefix"),
    ],
)
def test_query_size_limits(store: SessionStore, query: str, message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        store.search(query)


def test_reindex_rebuilds_from_segments(store: SessionStore, meeting: int) -> None:
    store.index_now()
    store.db.conn.execute("INSERT INTO segments_fts (segments_fts) VALUES ('delete-all')")
    store.db.conn.commit()
    assert store.search("deadline") == []  # the index was wiped behind the store's back
    store.reindex()
    assert len(store.search("deadline")) == 2
    _index_is_consistent(store)
