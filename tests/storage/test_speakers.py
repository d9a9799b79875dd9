"""Speaker labels and names: listing with talk time, relabelling in one transaction (by number
or by a diarizer's turns), renaming, merging, the mic/system prior, and how a segment reads."""

from __future__ import annotations

import pytest

from storage import SessionNotFound, SessionStore, StoreError
from storage.records import SegmentRecord
from storage.speakers import SpeakerNotFound, SpeakerRecord, check_name, labels_from_spans, voice


def _call(store: SessionStore) -> int:
    """A call: mic is S1 (twice), the other side S2 and S3; one segment has no speaker."""
    sid = store.create_session("Call", "whisper", "tiny.en")
    for text, start, end, channel, speaker in [
        ("hello", 0.0, 2.0, "mic", "S1"),
        ("hi there", 2.0, 5.0, "system", "S2"),
        ("and me", 5.0, 6.5, "system", "S3"),
        ("good", 6.5, 7.0, "mic", "S1"),
        ("[noise]", 7.0, 7.5, None, None),
    ]:
        store.add_segment(sid, text, start, end, channel=channel, speaker=speaker)
    return sid


def test_speakers_list_labels_in_order_with_segments_talk_time_and_channels(store: SessionStore) -> None:
    sid = _call(store)
    assert store.speakers(sid) == [
        SpeakerRecord("S1", None, 2, pytest.approx(2.5), ("mic",)),
        SpeakerRecord("S2", None, 1, pytest.approx(3.0), ("system",)),
        SpeakerRecord("S3", None, 1, pytest.approx(1.5), ("system",)),
    ]
    assert store.speaker_names(sid) == {}
    with pytest.raises(SessionNotFound):
        store.speakers(sid + 1)


def test_rename_names_a_label_and_an_empty_name_clears_it(store: SessionStore) -> None:
    sid = _call(store)
    assert store.rename_speaker(sid, "S2", "  Anya   Petrova ") == "Anya Petrova"
    assert store.speaker_names(sid) == {"S2": "Anya Petrova"}
    assert [s.shown for s in store.speakers(sid)] == ["S1", "Anya Petrova", "S3"]
    assert store.rename_speaker(sid, "S2", "") is None
    assert store.speaker_names(sid) == {}


def test_one_name_names_one_label_per_meeting(store: SessionStore) -> None:
    sid = _call(store)
    store.rename_speaker(sid, "S2", "Anya")
    with pytest.raises(StoreError, match=r"Anya already names S2.*merge them \(S3=S2\)"):
        store.rename_speaker(sid, "S3", "anya")
    with pytest.raises(StoreError, match="another speaker's label"):
        store.rename_speaker(sid, "S3", "S1")
    assert store.rename_speaker(sid, "S2", "Anya") == "Anya"  # its own name again is fine
    other = _call(store)  # another meeting may have its own Anya
    assert store.rename_speaker(other, "S3", "Anya") == "Anya"


def test_bad_labels_and_names_are_refused_and_nothing_changes(store: SessionStore) -> None:
    sid = _call(store)
    with pytest.raises(SpeakerNotFound, match="no speaker 'S9' in meeting"):
        store.rename_speaker(sid, "S9", "Bo")
    with pytest.raises(StoreError, match="at most 60"):
        store.rename_speaker(sid, "S1", "x" * 61)
    with pytest.raises(StoreError, match="characters a name cannot have"):
        store.rename_speaker(sid, "S1", "Bo\x1b[31m")
    assert check_name("Bo\nBoss") == "Bo Boss"  # whitespace, newlines included, is one space
    assert store.speaker_names(sid) == {}


def test_merge_moves_segments_and_keeps_or_takes_a_name(store: SessionStore) -> None:
    sid = _call(store)
    store.rename_speaker(sid, "S3", "Bo")
    assert store.merge_speakers(sid, "S3", "S2") == 1  # S2 had no name: takes Bo
    assert [(s.label, s.name, s.segments) for s in store.speakers(sid)] == [("S1", None, 2), ("S2", "Bo", 2)]
    assert [seg.speaker for seg in store.segments(sid)] == ["S1", "S2", "S2", "S1", None]

    sid = _call(store)
    store.rename_speaker(sid, "S2", "Anya")
    store.rename_speaker(sid, "S3", "Bo")
    store.merge_speakers(sid, "S3", "S2")  # S2 keeps its own name
    assert store.speaker_names(sid) == {"S2": "Anya"}


def test_merge_refuses_unknown_labels_itself_and_the_other_side_of_a_call(store: SessionStore) -> None:
    sid = _call(store)
    with pytest.raises(SpeakerNotFound):
        store.merge_speakers(sid, "S9", "S1")
    with pytest.raises(StoreError, match="into itself"):
        store.merge_speakers(sid, "S1", "S1")
    with pytest.raises(StoreError, match="both mic and system"):
        store.merge_speakers(sid, "S2", "S1")
    assert [seg.speaker for seg in store.segments(sid)][:3] == ["S1", "S2", "S3"]
    # A person who says so may merge them.
    assert store.merge_speakers(sid, "S2", "S1", across_channels=True) == 1
    assert store.speakers(sid)[0].channels == ("mic", "system")


def test_relabel_is_one_transaction_and_keeps_names(store: SessionStore) -> None:
    sid = _call(store)
    store.rename_speaker(sid, "S2", "Anya")
    assert store.relabel(sid, {2: "S3", 3: "S4", 5: None}) == 3
    assert [seg.speaker for seg in store.segments(sid)] == ["S1", "S3", "S4", "S1", None]
    # S2 has no segment left but keeps its name (a later relabel may bring it back).
    assert [(s.label, s.segments) for s in store.speakers(sid)] == [("S1", 2), ("S3", 1), ("S4", 1), ("S2", 0)]
    with pytest.raises(StoreError, match="no segment #9"):
        store.relabel(sid, {1: "S7", 9: "S7"})
    with pytest.raises(StoreError, match="both mic and system"):
        store.relabel(sid, {1: "S3"})
    with pytest.raises(StoreError, match="not a speaker label"):
        store.relabel(sid, {1: "two words"})
    assert [seg.speaker for seg in store.segments(sid)] == ["S1", "S3", "S4", "S1", None]  # all refused whole
    assert "S7" not in [s.label for s in store.speakers(sid)]


def test_relabel_spans_gives_each_segment_the_turn_it_overlaps_most(store: SessionStore) -> None:
    sid = _call(store)
    # A diarizer's turns on the system channel: S2 speaks to 4.6 s, then S5 (overlapping S3's segment most).
    assert store.relabel_spans(sid, [(2.0, 4.6, "S2"), (4.6, 7.0, "S5")], channel="system") == 2
    assert [seg.speaker for seg in store.segments(sid)] == ["S1", "S2", "S5", "S1", None]


def test_labels_from_spans_leaves_segments_no_turn_touches() -> None:
    segs = [SegmentRecord(i, 1, i, s, e, "x") for i, (s, e) in enumerate([(0, 1), (1, 3), (5, 6)], 1)]
    assert labels_from_spans(segs, [(0.0, 1.5, "A"), (1.5, 3.0, "B")]) == {1: "A", 2: "B"}


def test_voice_shows_the_name_else_the_label_with_the_channel() -> None:
    seg = SegmentRecord(1, 1, 1, 0.0, 1.0, "x", channel="system", speaker="S2")
    assert voice(seg) == "S2 (system)"
    assert voice(seg, {"S2": "Anya"}) == "Anya (system)"
    assert voice(SegmentRecord(1, 1, 1, 0.0, 1.0, "x", speaker="S2"), {"S2": "Anya"}) == "Anya"
    assert voice(SegmentRecord(1, 1, 1, 0.0, 1.0, "x", channel="mic")) == "mic"
    assert voice(SegmentRecord(1, 1, 1, 0.0, 1.0, "x")) == ""


def test_deleting_a_meeting_deletes_its_speakers(store: SessionStore) -> None:
    sid = _call(store)
    store.rename_speaker(sid, "S1", "Me")
    store.delete_session(sid)
    assert store.db.execute("SELECT COUNT(*) FROM speakers").fetchone()[0] == 0


def test_json_export_carries_names_and_an_import_restores_them(store: SessionStore) -> None:
    sid = _call(store)
    store.rename_speaker(sid, "S2", "Anya")
    store.rename_speaker(sid, "S3", "Bo")
    data = store.export_json(sid)
    assert data["speakers"] == {"S2": "Anya", "S3": "Bo"}
    assert [s["speaker"] for s in data["segments"]] == ["S1", "S2", "S3", "S1", None]
    new = store.import_json(data)
    assert store.speaker_names(new) == {"S2": "Anya", "S3": "Bo"}
    assert [s.shown for s in store.speakers(new)] == ["S1", "Anya", "Bo"]
    assert "speakers" not in store.export_json(_call(store))  # nobody named: as before names


@pytest.mark.parametrize("speakers, says", [
    ({"S2": 5}, "its name must be text"),
    ({"two words": "Anya"}, "not a speaker label"),
    ({"S2": "Anya", "S3": "anya"}, "two speakers share a name"),
    (["S2"], "speakers must be an object"),
])
def test_an_import_with_a_bad_speakers_map_is_refused_whole(store: SessionStore, speakers, says) -> None:
    data = store.export_json(_call(store))
    before = len(store.list_sessions())
    with pytest.raises(StoreError, match=says):
        store.import_json({**data, "speakers": speakers})
    assert len(store.list_sessions()) == before

