"""The DER scorer of bench/diarize.py on hand-made cases, the label mapping it rests on,
and the RTTM it writes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.diarize import best_mapping, one_speaker, read_rttm, score, write_rttm

REF = [(0.0, 4.0, "ann"), (4.5, 8.0, "bob"), (8.5, 12.0, "ann")]


def test_a_perfect_answer_scores_zero() -> None:
    s = score(REF, REF)
    assert s.der == 0.0
    # 11 s of speech less the collars' speech side: 0.25 s at each of 6 boundaries.
    assert s.speech_s == pytest.approx(11.0 - 6 * 0.25, abs=0.02)


def test_other_label_names_cost_nothing() -> None:
    swapped = [(s, e, {"ann": "S2", "bob": "S1"}[w]) for s, e, w in REF]
    assert score(REF, swapped).der == 0.0


def test_one_speaker_for_everyone_confuses_the_other_speakers_time() -> None:
    s = score(REF, [(0.0, 12.0, "X")])
    # ann's time maps to X; bob's is confusion; the gaps (inside the collars) are not scored.
    assert s.missed_s == 0.0 and s.false_alarm_s == 0.0
    assert s.confusion_s == pytest.approx(3.5 - 0.5, abs=0.02)
    assert s.der == pytest.approx(3.0 / s.speech_s, abs=1e-3)


def test_nothing_said_is_all_missed_and_talk_in_silence_is_false_alarm() -> None:
    assert score(REF, []).der == pytest.approx(1.0)
    s = score(REF, [*REF, (20.0, 22.0, "ann")])
    assert s.false_alarm_s == pytest.approx(2.0, abs=0.02) and s.missed_s == 0.0 and s.confusion_s == 0.0


def test_the_collar_forgives_boundaries_off_by_less_than_a_quarter_second() -> None:
    late = [(s + 0.2, e + 0.2, w) for s, e, w in REF]
    assert score(REF, late).der == 0.0
    assert score(REF, late, collar=0.0).der > 0.05


def test_overlapped_reference_speech_is_not_scored() -> None:
    ref = [(0.0, 6.0, "ann"), (4.0, 10.0, "bob")]  # both talk 4-6 s
    hyp = [(0.0, 10.0, "A")]
    s = score(ref, hyp)
    # Only ann's 0-4 s and bob's 6-10 s count (each less two collars); A is one of them, the other is confusion.
    assert s.speech_s == pytest.approx(3.5 + 3.5, abs=0.02)
    assert s.confusion_s == pytest.approx(3.5, abs=0.02)


def test_the_mapping_is_the_best_one_to_one_not_the_greedy_one() -> None:
    overlap = np.array([[10.0, 9.0], [8.0, 0.0]])  # greedy takes (0,0) and leaves row 1 with 0
    assert sorted(best_mapping(overlap)) == [(0, 1), (1, 0)]
    rng = np.random.default_rng(3)
    for rows, cols in [(3, 5), (5, 3), (4, 4)]:
        m = rng.random((rows, cols))
        brute = max(sum(m[r, c] for r, c in zip(perm_r, perm_c))
                    for perm_r in itertools.permutations(range(rows), min(rows, cols))
                    for perm_c in itertools.permutations(range(cols), min(rows, cols)))
        assert sum(m[r, c] for r, c in best_mapping(m)) == pytest.approx(brute)


def test_rttm_round_trip(tmp_path) -> None:
    path = tmp_path / "m.rttm"
    write_rttm(path, "m", REF)
    assert read_rttm(path) == REF
    assert path.read_text().splitlines()[0] == "SPEAKER m 1 0.000 4.000 <NA> <NA> ann <NA> <NA>"


def test_the_one_speaker_floor_finds_the_sound_and_calls_it_one_person() -> None:
    sr = 16_000
    audio = np.zeros(sr * 5, np.float32)
    audio[sr: 2 * sr] = 0.1
    audio[int(2.1 * sr): 3 * sr] = 0.1  # a 0.1 s pause is bridged
    assert one_speaker(audio) == [(pytest.approx(1.0), pytest.approx(3.0), "A")]
