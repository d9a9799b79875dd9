"""Finals split for reading (asr/sentences.py): at the sentence end nearest a pause a segment
runs across, and at sentence ends past MAX_FINAL_S; the words never change."""

import pytest

from asr.segmented import _finals
from asr.sentences import MAX_FINAL_S, readable, sentence_ends
from asr.vad import Utterance


def test_a_segment_across_a_pause_splits_at_the_sentence_end_nearest_it():
    text = "Thanks everyone. See you next week. Hi all. Welcome to the budget review."
    pieces = readable(0.0, 12.0, text, [(5.0, 6.2)])
    assert pieces == [(0.0, 5.0, "Thanks everyone. See you next week."),
                      (6.2, 12.0, "Hi all. Welcome to the budget review.")]


@pytest.mark.parametrize("text, ends", [
    ("And Mr. John Dashwood had leisure. He was not.", ["And Mr. John Dashwood had leisure."]),
    ("Meet e.g. Friday. Or Monday.", ["Meet e.g. Friday."]),
    ("Plan A. B is next.", []),  # a single letter is not a sentence
    ("It rose 3.5 percent. Then fell.", ["It rose 3.5 percent."]),
    ("Really? Yes! Good.", ["Really?", "Really? Yes!"]),
    ("lower case. after a stop", []),
])
def test_sentence_ends(text, ends):
    assert [text[:i] for i in sentence_ends(text)] == ends


def test_long_segments_are_cut_at_sentence_ends_and_words_kept():
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    pieces = readable(10.0, 50.0, text, [])
    assert " ".join(p[2] for p in pieces) == text
    assert all(p[1] - p[0] <= MAX_FINAL_S + 1e-9 for p in pieces) and len(pieces) >= 3
    assert pieces[0][0] == 10.0 and pieces[-1][1] == 50.0
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))


def test_what_cannot_or_need_not_be_split_stays_whole():
    assert readable(0.0, 20.0, "one long sentence without an end but longer than fifteen seconds", []) == [
        (0.0, 20.0, "one long sentence without an end but longer than fifteen seconds")]
    assert readable(0.0, 8.0, "Short. Two sentences.", []) == [(0.0, 8.0, "Short. Two sentences.")]
    assert readable(0.0, 8.0, "No pause inside. Here.", [(9.0, 10.0)]) == [(0.0, 8.0, "No pause inside. Here.")]


def test_finals_follow_the_pauses_between_utterances():
    from asr.segmented import Span

    spans = [Span(0.5, 9.0, "Thanks, see you next week. Hi all, welcome.", ())]
    utterances = [Utterance(0.5, 4.0), Utterance(5.0, 9.0)]
    finals = _finals(spans, (), utterances)
    assert [(f.start, f.end, f.text) for f in finals] == [(0.5, 4.0, "Thanks, see you next week."),
                                                          (5.0, 9.0, "Hi all, welcome.")]


def test_a_comma_right_at_a_pause_splits_but_one_far_from_it_does_not():
    text = "Thanks, great, that's it for today."
    assert readable(27.97, 30.97, text, [(28.63, 28.93)]) == [
        (27.97, 28.63, "Thanks,"), (28.93, 30.97, "great, that's it for today.")]
    assert readable(0.0, 10.0, "One, two three four five six seven eight nine.", [(8.0, 8.5)]) == [
        (0.0, 10.0, "One, two three four five six seven eight nine.")]
