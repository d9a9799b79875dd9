"""The offline pass (diarize.offline) and the clustering it rests on (diarize.clusters)."""

from __future__ import annotations

import itertools

import numpy as np

from bench.diarize import score
from diarize.clusters import absorb_small, agglomerate, assign, hungarian
from diarize.offline import diarize_audio, merge_turns, recluster
from diarize.online import DiarizeOptions, OnlineDiarizer, WindowLog
from tests.diarize.doubles import ToneEmbedder, ToneSegmenter, alternating, meeting, run_online

# The tone stand-in's embeddings at noise 1.0 sit closer together than CAM++'s real ones: one
# tone's pairs ~0.5, two tones' ~0 (the product's thresholds are measured on real voices).
TONE_OPTIONS = DiarizeOptions(similar=0.5, offline_similar=0.35)


def _brute(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n > m:
        return _brute(cost.T)
    return min(sum(cost[r, c] for r, c in enumerate(cols)) for cols in itertools.permutations(range(m), n))


def test_hungarian_finds_the_least_total_cost():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        pairs = hungarian(cost)
        assert len(pairs) == min(n, m) == len({r for r, _ in pairs}) == len({c for _, c in pairs})
        assert abs(sum(cost[r, c] for r, c in pairs) - _brute(cost)) < 1e-9


def test_assign_leaves_rows_unpaired_below_the_floor():
    gain = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]])
    assert assign(gain, 0.5) == [(0, 1), (1, 0)]  # not greedy: 0.8 + 0.85 beats 0.9 alone
    assert assign(gain, 0.95) == []


def test_agglomerate_by_threshold_and_by_count():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.eye(8)[i] + rng.normal(0, 0.1, (20, 8)) for i in range(3)])
    assert agglomerate(x, 0.5).tolist() == [0] * 20 + [1] * 20 + [2] * 20
    two = agglomerate(x, 0.5, clusters=2)
    assert len(set(two.tolist())) == 2 and len(set(two[:20].tolist())) == 1


def test_a_cluster_of_too_few_embeddings_joins_the_nearest_large_one():
    rng = np.random.default_rng(2)
    a, b = np.eye(8)[0] + rng.normal(0, 0.05, (10, 8)), np.eye(8)[1] + rng.normal(0, 0.05, (10, 8))
    stray = (0.3 * np.eye(8)[0] + np.eye(8)[5])[None]  # nearer a than b
    x = np.concatenate([a, stray, b])
    found = np.array([0] * 10 + [1] + [2] * 10)
    assert absorb_small(x, found, 2).tolist() == [0] * 11 + [1] * 10
    weighted = np.ones(21)
    weighted[10] = 5  # a pooled point of five embeddings is large enough
    assert absorb_small(x, found, 2, weighted).tolist() == found.tolist()
    assert absorb_small(x[:1], np.array([0]), 2).tolist() == [0]  # no large cluster: unchanged


def test_offline_fixes_what_the_live_pass_got_wrong():
    # Noisy voices: the first embeddings of each speaker are unlike the young centroids, and the
    # live pass makes extra speakers; all embeddings together cluster into the three there are.
    ref = alternating("ABC", 120, seed=3)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=1.0, seed=1), options=TONE_OPTIONS)
    live = run_online(d, meeting(ref))
    assert len({w for *_, w in live}) > 3 and score(ref, live).der > 0.02
    fixed = recluster(d)
    assert len({w for *_, w in fixed}) == 3
    assert score(ref, fixed).der < 0.01
    assert {w for *_, w in fixed} <= set(f"S{n}" for n in d.numbers)  # live labels kept where they fit


def test_offline_keeps_correct_live_labels():
    ref = alternating("ABC", 90, seed=6)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.2))
    live = run_online(d, meeting(ref))
    assert recluster(d) == merge_turns(live)


def test_speakers_n_cuts_to_n():
    ref = alternating("ABC", 90, seed=3)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.2))
    run_online(d, meeting(ref))
    assert len({w for *_, w in recluster(d, speakers=2)}) == 2
    assert len({w for *_, w in recluster(d, max_speakers=2)}) == 2
    assert len({w for *_, w in recluster(d, max_speakers=5)}) == 3


def test_a_long_meeting_pools_its_embeddings_and_stays_right():
    ref = alternating("ABC", 300, seed=7)
    d = OnlineDiarizer(ToneSegmenter(), ToneEmbedder(noise=0.5))
    d.log = WindowLog(d.log.cells, capacity=40)
    run_online(d, meeting(ref))
    assert d.embedder.calls > 100 and d.log.count <= 40  # pooled several times
    assert d.log.weights[:d.log.count].sum() == d.embedder.calls  # nothing dropped, only pooled
    assert (d.log.column("point") < d.log.count).all()
    assert score(ref, recluster(d)).der < 0.01


def test_whole_file():
    ref = alternating("ABCDE", 150, seed=8)
    audio = meeting(ref)
    assert score(ref, diarize_audio(audio, ToneSegmenter(), ToneEmbedder(noise=0.3))).der < 0.02
    hinted = diarize_audio(audio, ToneSegmenter(), ToneEmbedder(noise=0.3), DiarizeOptions(), speakers=4)
    assert len({w for *_, w in hinted}) == 4
