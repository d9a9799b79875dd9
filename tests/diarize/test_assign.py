"""Speakers for finals, and finals split where the speaker changes (diarize.assign)."""

from __future__ import annotations

from asr.base import Final
from diarize.assign import changes, speaker_of, split_by_speaker

TURNS = [(0.0, 4.2, "S1"), (4.5, 9.0, "S2"), (9.3, 12.0, "S1")]


def test_a_final_takes_the_speaker_it_overlaps_most():
    assert speaker_of(3.0, 6.0, TURNS) == "S2"
    assert speaker_of(0.5, 3.0, TURNS) == "S1"
    assert speaker_of(20.0, 21.0, TURNS) is None


def test_a_final_across_a_change_is_split_at_the_sentence_end_nearest_it():
    f = Final("We should ship the release on Friday as planned. I disagree, the tests are red.", 0.5, 8.0,
              flags=("x",))
    parts = split_by_speaker(f, TURNS)
    assert [(p.text, who) for p, who in parts] == [("We should ship the release on Friday as planned.", "S1"),
                                                   ("I disagree, the tests are red.", "S2")]
    assert parts[0][0].end <= 4.36 <= parts[1][0].start
    assert " ".join(p.text for p, _ in parts) == f.text  # the words are the same
    assert all(p.flags == ("x",) for p, _ in parts)


def test_no_split_without_a_sentence_end_near_the_change_or_a_long_enough_side():
    run_on = Final("we ship on friday and i disagree because the tests are red", 0.5, 8.0)
    assert [(p.text, who) for p, who in split_by_speaker(run_on, TURNS)] == [(run_on.text, "S1")]  # 3.7 s of 7.5
    brief = Final("Yes. Okay then we go.", 3.6, 6.0)  # S1 for 0.6 s only
    assert split_by_speaker(brief, TURNS) == [(brief, "S2")]


def test_a_short_interjection_is_no_change():
    turns = [(0.0, 3.0, "S1"), (3.1, 3.5, "S2"), (3.6, 7.0, "S1")]
    assert changes(0.0, 7.0, turns) == []
    assert changes(0.5, 11.5, TURNS) == [4.35, 9.15]
