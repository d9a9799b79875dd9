"""The search people use: meetings that contain every term (transcript, notes, title), prefix
as you type, exclusions, phrases, speaker/channel filters, edits, and databases migrated to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from storage import BadQuery, MeetingHits, SessionStore
from storage.db import migrations, prepare
from storage.query import parse_query

from .test_search import NASTY, SQL_WORDS, _index_is_consistent


def _ids(results: list[MeetingHits]) -> list[int]:
    return [m.session_id for m in results]


def _snippets(result: MeetingHits) -> list[str]:
    return [h.snippet for h in result.hits]


def _edit(store: SessionStore, segment_id: int, text: str | None) -> None:
    """What segment editing does: edited_text beside the heard text, which is never overwritten."""
    store.db.conn.execute("UPDATE segments SET edited_text = ? WHERE id = ?", (text, segment_id))
    store.db.conn.commit()


@pytest.fixture
def meetings(store: SessionStore) -> dict[str, int]:
    """Three meetings: the words of `budget deadline` together, apart, and only one of them."""
    ids = {}
    ids["review"] = store.create_session("Quarterly review", "e", "m")
    store.add_segment(ids["review"], "We need to cut the budget this quarter", 0, 4, channel="mic", speaker="S1")
    store.add_segment(ids["review"], "Fine by me", 4, 6, channel="system", speaker="S2")
    store.add_segment(ids["review"], "The deadline moved to Friday", 6, 9, channel="system", speaker="S2")
    store.add_segment(ids["review"], "The launch is next week", 9, 12, channel="mic", speaker="S1")
    ids["standup"] = store.create_session("Standup", "e", "m")
    store.add_segment(ids["standup"], "Some small talk first", 0, 2, speaker="S1")
    store.add_segment(ids["standup"], "The budget and the deadline both slipped", 2, 5, speaker="S2")
    store.add_segment(ids["standup"], "Only the budget is left", 5, 7, speaker="S1")
    ids["hiring"] = store.create_session("Hiring plan", "e", "m")
    store.add_segment(ids["hiring"], "The deadline for the offer is Monday", 0, 3, speaker="S1")
    store.add_segment(ids["hiring"], "The launchpad demo went well", 3, 6, speaker="S2")
    db = store.db.conn
    db.executemany("INSERT INTO speakers (session_id, label, name) VALUES (?, ?, ?)",
                   [(ids["review"], "S2", "Anya"), (ids["standup"], "S1", "Anya"), (ids["hiring"], "S2", "Ben")])
    db.commit()
    return ids


def test_the_last_word_typed_is_a_prefix(store: SessionStore, meetings: dict[str, int]) -> None:
    assert set(_ids(store.search_meetings("laun"))) == {meetings["review"], meetings["hiring"]}
    (review,) = store.search_meetings("laun", session_id=meetings["review"])
    assert _snippets(review) == ["The [launch] is next week"]
    # A space after the word ends it: whole words only, as in "launch " before more typing.
    assert _ids(store.search_meetings("launch ")) == [meetings["review"]]
    # Only the last word is a prefix; an earlier unfinished word is a word.
    assert store.search_meetings("laun budget") == []
    assert _ids(store.search_meetings("launch budg")) == [meetings["review"]]
    # One letter is not expanded (thousands of words); an explicit * still is.
    assert store.search_meetings("l") == []
    assert set(_ids(store.search_meetings("l*"))) == set(meetings.values())


def test_all_terms_anywhere_in_the_meeting_with_the_best_segments_first(store: SessionStore,
                                                                        meetings: dict[str, int]) -> None:
    for query in ("budget deadline", "budget AND deadline", "deadline budget"):
        results = store.search_meetings(query)
        assert set(_ids(results)) == {meetings["review"], meetings["standup"]}, query
        # The meeting that has both words in one segment comes first; that segment is its best hit.
        assert results[0].session_id == meetings["standup"]
        assert _snippets(results[0])[0] == "The [budget] and the [deadline] both slipped"
        review = results[1]
        assert set(_snippets(review)) == {"We need to cut the [budget] this quarter", "The [deadline] moved to Friday"}
        assert review.hits[0].seq is not None and review.hits[0].session_title == "Quarterly review"
    assert len(store.search_meetings("budget")[0].hits) == 2
    assert [len(m.hits) for m in store.search_meetings("the", limit=1)] == [3]  # HITS_PER_MEETING
    assert len(store.search_meetings("the", limit=2)) == 2


def test_titles_and_notes_count_as_part_of_the_meeting(store: SessionStore, meetings: dict[str, int]) -> None:
    (hiring,) = store.search_meetings("plan")
    assert (hiring.session_id, hiring.title, hiring.title_matched, hiring.hits) == (
        meetings["hiring"], "Hiring [plan]", True, ())
    # The title supplies one word, the transcript the other.
    (hiring,) = store.search_meetings("hiring offer")
    assert hiring.title == "[Hiring] plan" and _snippets(hiring) == ["The deadline for the [offer] is Monday"]
    assert store.search_meetings("hiring budget") == []
    store.add_note(meetings["hiring"], 2.0, "ask about the **budget** for contractors")
    (hiring,) = store.search_meetings("hiring budget")
    (note,) = hiring.hits
    assert note.is_note and note.note_id is not None and note.start_s == 2.0 and "[budget]" in note.snippet
    store.rename_session(meetings["hiring"], "Recruiting")
    assert store.search_meetings("hiring budget") == []
    assert _ids(store.search_meetings("recruiting")) == [meetings["hiring"]]
    assert store.search_meetings("plan") == []


def test_edits_are_what_is_searched_and_the_heard_text_stays_findable(store: SessionStore,
                                                                     meetings: dict[str, int]) -> None:
    store.index_now()
    friday = store.segments(meetings["review"])[2]
    _edit(store, friday.id, "The deadline moved to Thursday")
    (review,) = store.search_meetings("thursday")
    assert _snippets(review) == ["The deadline moved to [Thursday]"]
    assert [h.segment_id for h in review.hits] == [friday.id]
    # The heard word still finds the segment, which shows its edited text.
    (heard,) = store.search_meetings("friday")
    assert _snippets(heard) == ["The deadline moved to Thursday"]
    assert store.get_segment(friday.id).text == "The deadline moved to Friday"
    # A shown-text match ranks above a match only in an edit's heard text.
    other = store.add_segment(meetings["review"], "Friday works for the retro", 12, 14)
    assert [h.segment_id for h in store.search("friday")] == [other.id, friday.id]
    _edit(store, friday.id, None)  # undone
    assert store.search_meetings("thursday") == []
    # A segment edited while it still waits above the watermark is indexed as edited.
    queued = store.add_segment(meetings["standup"], "we shipped it", 7, 8)
    _edit(store, queued.id, "we shipped it on time")
    assert _ids(store.search_meetings("time")) == [meetings["standup"]]
    _index_is_consistent(store)


@pytest.mark.parametrize("query", ["deadline -budget", "deadline NOT budget", "NOT budget deadline"])
def test_a_leading_minus_or_not_leaves_out_meetings_that_contain_it(store: SessionStore,
                                                                    meetings: dict[str, int], query: str) -> None:
    (hiring,) = store.search_meetings(query)
    assert hiring.session_id == meetings["hiring"] and _snippets(hiring) == ["The [deadline] for the offer is Monday"]


def test_only_left_out_words_lists_every_other_meeting(store: SessionStore, meetings: dict[str, int]) -> None:
    assert _ids(store.search_meetings("-budget")) == [meetings["hiring"]]
    # Newest first; "launchpad" is another word (a left-out word is never a prefix).
    assert _ids(store.search_meetings("-launch")) == [meetings["hiring"], meetings["standup"]]
    assert _ids(store.search_meetings("-offer -quarter")) == [meetings["standup"]]
    assert store.search_meetings("-budget")[0].hits == ()
    # What is shown decides: a word edited away no longer leaves its meeting out.
    store.index_now()
    for seg in store.segments(meetings["standup"]):
        if "budget" in seg.text:
            _edit(store, seg.id, seg.text.replace("budget", "plan"))
    assert set(_ids(store.search_meetings("-budget"))) == {meetings["hiring"], meetings["standup"]}


def test_quoted_phrases_and_or(store: SessionStore, meetings: dict[str, int]) -> None:
    (review,) = store.search_meetings('"moved to Friday"')
    assert _snippets(review) == ["The deadline [moved to Friday]"]
    assert store.search_meetings('"Friday moved"') == []
    assert _ids(store.search_meetings('-"cut the budget" budget')) == [meetings["standup"]]
    assert set(_ids(store.search_meetings("offer OR quarter"))) == {meetings["review"], meetings["hiring"]}
    assert _ids(store.search_meetings("offer OR quarter deadline launchpad")) == [meetings["hiring"]]
    assert _ids(store.search_meetings('"unbalanced quote')) == []  # read as a phrase to the end


def test_speaker_filter_by_name_or_label(store: SessionStore, meetings: dict[str, int]) -> None:
    # Anya is S2 in the review and S1 in the standup.
    results = store.search_meetings("speaker:Anya budget")
    assert _ids(results) == [meetings["standup"]]
    assert _snippets(results[0]) == ["Only the [budget] is left"]
    (review,) = store.search_meetings("speaker:anya deadline")
    assert review.session_id == meetings["review"] and _snippets(review) == ["The [deadline] moved to Friday"]
    assert set(_ids(store.search_meetings("speaker:S2 deadline"))) == {meetings["review"], meetings["standup"]}
    assert _ids(store.search_meetings('speaker:"Ben" demo')) == [meetings["hiring"]]
    assert store.search_meetings("speaker:Ben budget") == []
    assert store.search_meetings("speaker:Nobody the") == []
    # A filter alone: the meetings where Anya speaks, with her first segments.
    results = store.search_meetings("speaker:Anya")
    assert set(_ids(results)) == {meetings["review"], meetings["standup"]}
    by_id = {m.session_id: m for m in results}
    assert _snippets(by_id[meetings["review"]]) == ["Fine by me", "The deadline moved to Friday"]
    # Notes and titles have no speaker: with a filter only segments count.
    assert store.search_meetings("speaker:Anya hiring") == []


def test_channel_filter(store: SessionStore, meetings: dict[str, int]) -> None:
    (review,) = store.search_meetings("channel:mic the")
    assert {h.seq for h in review.hits} == {1, 4}
    (review,) = store.search_meetings("channel:system deadline")
    assert _snippets(review) == ["The [deadline] moved to Friday"]
    assert store.search_meetings("channel:mic deadline") == []
    assert store.search_meetings("channel:MIC -budget") == []  # the only mic meeting has "budget"


@pytest.mark.parametrize(("query", "message"), [
    ("channel:phone budget", "channel:mic or channel:system"),
    ("speaker: budget", "speaker: needs a value"),
    ("-speaker:Anya budget", "not supported"),
    ("🎉 ***", "nothing to search for"),
    ("AND OR NOT", "nothing to search for"),
])
def test_filters_and_empty_queries_say_what_is_wrong(store: SessionStore, meetings: dict[str, int],
                                                    query: str, message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        store.search_meetings(query)


def test_power_syntax_still_works(store: SessionStore, meetings: dict[str, int]) -> None:
    assert _ids(store.search_meetings("NEAR(cut budget, 3)")) == [meetings["review"]]
    # (a OR b) AND c within one segment, as FTS5 reads it
    assert _ids(store.search_meetings("(small OR slipped) AND budget")) == [meetings["standup"]]
    assert _ids(store.search_meetings("text:launchpad")) == [meetings["hiring"]]
    assert parse_query("NEAR(a b)").power and not parse_query("a -b").power
    # Not FTS5 after all: read as words.
    assert set(_ids(store.search_meetings("(budget"))) == {meetings["review"], meetings["standup"]}
    assert _ids(store.search_meetings("deadline: offer")) == [meetings["hiring"]]


def test_one_meeting_only(store: SessionStore, meetings: dict[str, int]) -> None:
    assert _ids(store.search_meetings("budget", session_id=meetings["standup"])) == [meetings["standup"]]
    assert store.search_meetings("offer", session_id=meetings["standup"]) == []
    assert _ids(store.search_meetings("-offer", session_id=meetings["standup"])) == [meetings["standup"]]
    assert store.search_meetings("-budget", session_id=meetings["standup"]) == []
    empty = store.create_session("Budget kickoff", "e", "m")
    assert _ids(store.search_meetings("budget", session_id=empty)) == [empty]  # its title


def test_broad_terms_are_checked_meeting_by_meeting(store: SessionStore, meetings: dict[str, int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A term with more matches than the window: the meetings it did not reach are probed."""
    import storage.search

    sync = store.create_session("Sync", "e", "m")
    store.add_segment(sync, "Offer approved", 0, 1)  # no "the": a probe must say so
    queries = ("the offer", "the budget", "offer -the", "budget the -slipped")
    exact = {q: _ids(store.search_meetings(q)) for q in queries}
    assert exact["offer -the"] == [sync] and exact["the offer"] == [meetings["hiring"]]
    assert exact["the budget"] == [meetings["standup"], meetings["review"]]
    monkeypatch.setattr(storage.search, "MEETING_WINDOW", 4)  # "the" is broad, "budget" and "offer" are not
    for query, expected in exact.items():
        assert _ids(store.search_meetings(query)) == expected, query
    # Every term broad: only the meetings of their newest matches are considered.
    assert _ids(store.search_meetings("the")) == [meetings["hiring"], meetings["standup"]]


@pytest.mark.parametrize("query", NASTY)
def test_any_typed_string_searches_or_raises_badquery(store: SessionStore, meetings: dict[str, int],
                                                      query: str) -> None:
    try:
        results = store.search_meetings(query)
    except BadQuery as exc:
        assert "\n" not in str(exc) and not any(w in str(exc).lower() for w in SQL_WORDS), str(exc)
    else:
        assert all(isinstance(m, MeetingHits) for m in results)
    assert len(store.segments(meetings["review"])) == 4


def test_a_database_at_schema_0006_migrates_and_is_searchable(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="0007_search_shown_text_and_titles")
    conn = db.conn
    conn.execute("INSERT INTO sessions (id, title, started_at) VALUES (1, 'Budget offsite', '2025-01-01T09:00:00Z')")
    conn.executemany("INSERT INTO segments (id, session_id, seq, start_s, end_s, text) VALUES (?, 1, ?, ?, ?, ?)",
                     [(1, 1, 0, 1, "indexed before the upgrade"), (2, 2, 1, 2, "also the heard words")])
    conn.execute("INSERT INTO segments_fts (rowid, text) VALUES (1, 'indexed before the upgrade')")
    conn.execute("UPDATE fts_state SET indexed_upto = 1")  # segment 2 was still queued
    conn.execute("UPDATE segments SET edited_text = 'also the edited words' WHERE id = 2")
    conn.execute("INSERT INTO notes (session_id, t_s, text, created_at) VALUES (1, 0, 'a note', 'x')")
    conn.commit()
    conn.close()

    with SessionStore.open(path) as store:
        assert _ids(store.search_meetings("upgrade")) == [1]
        assert _snippets(store.search_meetings("edited")[0]) == ["also the [edited] words"]
        assert _ids(store.search_meetings("heard")) == [1]
        assert _ids(store.search_meetings("offsite note")) == [1]
        assert [h.text for h in [store.get_segment(2)]] == ["also the heard words"]
        _index_is_consistent(store)
        store.db.conn.execute("INSERT INTO sessions_fts (sessions_fts, rank) VALUES ('integrity-check', 1)")
    prepare(Database(sqlite3.connect(path)))  # reopening applies nothing twice


def test_snippets_mark_what_fts5_matched_and_trim_long_segments(store: SessionStore) -> None:
    sid = store.create_session("t", "e", "m")
    words = " ".join(f"w{i}" for i in range(30)) + " target " + " ".join(f"v{i}" for i in range(30))
    store.add_segment(sid, words, 0, 1)
    store.add_segment(sid, "Café résumé naïve", 1, 2)
    (hit,) = store.search_meetings("target")[0].hits
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and "[target]" in hit.snippet
    assert len(hit.snippet.split()) == 12
    (hit,) = store.search_meetings("cafe resu")[0].hits  # diacritics folded, the last word a prefix
    assert hit.snippet == "[Café] [résumé] naïve"
    (hit,) = store.search_meetings("target", highlight=("<<", ">>"))[0].hits
    assert "<<target>>" in hit.snippet


def test_speaker_names_given_through_the_store_are_searchable(store: SessionStore, meetings: dict[str, int]) -> None:
    store.rename_speaker(meetings["hiring"], "S1", "Carla Diaz")
    (hiring,) = store.search_meetings('speaker:"carla diaz" offer')
    assert _snippets(hiring) == ["The deadline for the [offer] is Monday"]
    store.merge_speakers(meetings["hiring"], "S2", "S1")  # Ben's label S2 now reads S1: Carla
    (hiring,) = store.search_meetings('speaker:"Carla Diaz" demo')
    assert _snippets(hiring) == ["The launchpad [demo] went well"]
    assert store.search_meetings("speaker:Ben demo") == []
