"""The live pass (diarize.online) on synthetic meetings, with model doubles (tests/diarize/doubles.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.diarize import score
from diarize.assign import speaker_of
from diarize.online import ACTIVITY_STEP_S, DiarizeOptions, LabelBook, OnlineDiarizer, WindowLog
from tests.diarize.doubles import RATE, MergingSegmenter, ToneEmbedder, ToneSegmenter, alternating, meeting, run_online


def _mapping(ref, hyp) -> dict[str, str]:
    """Each true speaker → the label most of its speech got."""
    out = {}
    for who in sorted({w for *_, w in ref}):
        talk: dict[str, float] = {}
        for s, e, _ in [t for t in ref if t[2] == who]:
            for hs, he, label in hyp:
                o = min(e, he) - max(s, hs)
                if o > 0:
                    talk[label] = talk.get(label, 0) + o
        out[who] = max(talk, key=talk.get)
    return out


def test_three_speakers_keep_their_labels_through_the_meeting():
    ref = alternating("ABC", 120, seed=4)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.3))
    hyp = run_online(d, meeting(ref))
    assert score(ref, hyp).der < 0.02
    names = _mapping(ref, hyp)
    assert sorted(names.values()) == ["S1", "S2", "S3"]  # one label each, none shared
    assert names[ref[0][2]] == "S1"  # the first voice heard is S1
    late = [(s, e, who) for s, e, who in ref if s > 60]
    assert late and all(speaker_of(s, e, hyp) == names[who] for s, e, who in late)  # stable to the end


def test_a_new_voice_becomes_a_new_speaker_only_below_the_threshold():
    ref = [(0.5, 6.0, "A"), (6.3, 12.0, "B"), (12.3, 18.0, "A")]
    strict = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.3), options=DiarizeOptions(similar=0.999))
    assert len({w for *_, w in run_online(strict, meeting(ref))}) > 2  # no voice is ever like enough
    usual = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.3))
    assert [w for *_, w in run_online(usual, meeting(ref))] == ["S1", "S2", "S1"]


def test_two_voices_in_one_window_never_share_a_label():
    # B and C alternate quickly: every window holds both, and the similarity floor lets any voice
    # match any centroid; the assignment still gives them distinct labels.
    ref = [(0.5, 4.0, "A")] + [(4.3 + 2.6 * i, 6.6 + 2.6 * i, "BC"[i % 2]) for i in range(10)]
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), options=DiarizeOptions(similar=-1.0, max_speakers=3))
    hyp = run_online(d, meeting(ref))
    names = _mapping(ref, hyp)
    assert len(set(names.values())) == 3
    assert score(ref, hyp).der < 0.05


def test_speakers_hint_caps_the_labels_made():
    ref = alternating("ABCD", 80, seed=2)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), options=DiarizeOptions(max_speakers=2))
    assert {w for *_, w in run_online(d, meeting(ref))} == {"S1", "S2"}


def test_channels_sharing_a_book_never_share_a_label():
    book = LabelBook()
    mic = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), book)
    system = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), book)
    a = run_online(mic, meeting([(0.5, 5, "A"), (5.3, 9, "B")], 12))
    b = run_online(system, meeting([(0.5, 5, "C"), (5.3, 9, "A")], 12))
    assert {w for *_, w in a} == {"S1", "S2"}
    assert {w for *_, w in b} == {"S3", "S4"}


def test_turns_are_final_up_to_covered_and_at_most_a_hop_behind():
    ref = alternating("AB", 30, seed=1)
    audio = meeting(ref, 30.0)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder())
    hop = d.options.hop_s
    for i in range(0, len(audio), RATE // 4):
        d.feed(audio[i:i + RATE // 4])
        while d.ready:
            before = list(d.turns)
            d.step()
            assert all(t in d.turns or any(u[0] == t[0] for u in d.turns) for t in before)  # only extended
        assert d.fed_s - d.covered_s < hop
        assert all(e <= d.covered_s + 1e-6 for _, e, _ in d.turns)
    d.finish()
    assert d.covered_s == pytest.approx(30.0)


def test_a_change_of_voice_the_segmentation_misses_is_still_a_change_of_speaker():
    # A and B are one local speaker to the segmentation model in every window that holds both.
    # Embedded from the whole window, B's first seconds are A's voice and B's first labels A's;
    # from the window's last seconds only, B is someone else within a hop or so.
    ref = [(0.5, 9.0, "A"), (9.3, 18.0, "B"), (18.3, 27.0, "A"), (27.3, 36.0, "B")]
    audio = meeting(ref)

    def der(span: float) -> float:
        d = OnlineDiarizer(MergingSegmenter((0, 1)), ToneEmbedder(), options=DiarizeOptions(embed_span_s=span))
        return score(ref, run_online(d, audio)).der

    whole, recent = der(DiarizeOptions().window_s), der(DiarizeOptions().embed_span_s)
    assert recent < 0.1 and whole > recent + 0.1


def test_too_little_solo_speech_is_not_embedded_but_keeps_its_speaker():
    # B's one-second interjections are too short to embed alone after the silence around them is
    # cut: they still take the label B had in the window before.
    ref = [(0.5, 5.0, "B"), (5.2, 9.0, "A"), (9.1, 9.45, "B"), (9.6, 14.0, "A")]
    emb = ToneEmbedder()
    d = OnlineDiarizer(ToneSegmenter(), emb, options=DiarizeOptions(min_embed_s=0.5, min_active_s=0.2))
    hyp = run_online(d, meeting(ref))
    assert min(emb.clip_s) >= 0.5
    assert any(s <= 9.2 and e >= 9.4 and w == "S1" for s, e, w in hyp)


def test_what_is_kept_for_the_offline_pass_is_bounded_and_holds_no_audio():
    sizes = []
    for seconds in (600, 1200):
        d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder())
        d.log = WindowLog(d.log.cells, capacity=100)
        run_online(d, meeting(alternating("AB", seconds, seed=5), float(seconds)), block_s=2.5)
        assert d.log.size == seconds / d.options.hop_s and d.log.count <= 100
        assert len(d._audio) <= (d.options.window_s + d.options.hop_s) * RATE
        sizes.append(d.log.nbytes)
    per_hop = (sizes[1] - sizes[0]) / 240
    assert per_hop < 250  # the activity cells and live labels of a hop; the embeddings do not grow
    assert d.log.column("activity").shape[1] == round(d.options.hop_s / ACTIVITY_STEP_S)


def test_falling_too_far_behind_skips_the_oldest_audio():
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), options=DiarizeOptions(max_behind_s=10.0))
    d.feed(meeting(alternating("AB", 40), 40.0))
    d.step()
    assert d.skipped_s == pytest.approx(40 - 10.0, abs=0.01)
    assert d.fed_s - d.covered_s <= 10.0
    assert np.isfinite(d.covered_s)


def test_live_turns_can_be_bounded_to_the_recent_past():
    ref = alternating("AB", 200, seed=9)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(), options=DiarizeOptions(keep_turns_s=30.0))
    turns = run_online(d, meeting(ref, 200.0))
    assert turns and min(e for _, e, _ in turns) >= 200 - 30 - d.options.hop_s
    full = run_online(OnlineDiarizer(ToneSegmenter(), ToneEmbedder()), meeting(ref, 200.0))
    assert turns == [t for t in full if t[1] >= turns[0][1] - 1e-9]  # the same turns, the old ones dropped
