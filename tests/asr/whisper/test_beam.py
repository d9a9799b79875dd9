"""Beam search (asr/whisper/beam.py) and the decoder steps' row reordering it needs."""

import math

import mlx.core as mx
import numpy as np
import pytest

from asr.repetition import find_loop
from asr.whisper.beam import BeamResult, MlxSteps, beam_search, filter_for_rows, loop_cutter
from asr.whisper.decoding import DecodingOptions, WhisperDecoder, _MlxSteps, _Row
from asr.whisper.engine import bundled_model_dir
from asr.whisper.npdecoder import NumpyDecoder
from tests.support.wer import wer

from ..audio_util import SR, espeak_clips, librivox_clips


@pytest.fixture(scope="module")
def tiny_en():
    from asr.whisper.engine import WhisperEngine

    return WhisperEngine()


def beam_decode(d: WhisperDecoder, features, opts: DecodingOptions, beam_size: int,
                patience: float = 1.0, steps=None) -> BeamResult:
    """One window through beam search the way decoding.py's `_run` is to call it."""
    prompt, _ = d._prompt(opts, opts.language, [], [])
    max_new = min(opts.max_new_tokens or d.n_text_ctx // 2, d.n_text_ctx - len(prompt))
    steps = steps if steps is not None else d._steps(features)
    logits = steps(np.array([prompt]))
    logit_filter = filter_for_rows(lambda lg, rows: d._filter(lg, rows, opts), _Row)
    return beam_search(steps, logits[:, -1], beam_size, patience, max_new, d.tok.eot, logit_filter,
                       cut_loop=loop_cutter(d.tok.eot))[0]


# -- reordering the decoder's caches ---------------------------------------------------

_NUMPY_DECODERS: dict[int, NumpyDecoder] = {}


def _numpy_steps(model, kv):
    dec = _NUMPY_DECODERS.setdefault(id(model), NumpyDecoder(model.decoder))  # weights converted once
    return dec.start(kv)


def _mlx_steps(model, kv):
    return MlxSteps(model, kv)


@pytest.mark.parametrize("make_steps", [_numpy_steps, _mlx_steps], ids=["numpy", "mlx"])
def test_reordered_rows_decode_as_their_sequences_from_scratch(tiny_en, make_steps):
    d, model = tiny_en.decoder, tiny_en.decoder.model
    kv = model.decoder.cross_kv(d.encode([c[1] for c in espeak_clips()[:2]]))
    prompt = [*d.tok.sot_sequence(None, "transcribe"), d.tok.no_timestamps]
    words = d.tok.encode(" the meeting starts at nine and ends at ten")

    def fresh(windows: list[int], seqs: list[list[int]]) -> np.ndarray:
        """Last-position logits of each sequence on its window, in one teacher-forced pass."""
        rows = mx.array(windows)
        steps = make_steps(model, [(k[rows], v[rows]) for k, v in kv])
        return steps(np.array([prompt + s for s in seqs]))[:, -1]

    def check(steps, windows, seqs, new):
        got = steps(np.array(new)[:, None])[:, -1]
        for s, t in zip(seqs, new):
            s.append(t)
        np.testing.assert_allclose(got, fresh(windows, seqs), atol=1e-3, rtol=0)

    # Two windows, two rows; grow a batch of three from them, then permute it in place.
    steps = make_steps(model, kv)
    steps(np.array([prompt, prompt]))
    seqs, windows = [[], []], [0, 1]
    check(steps, windows, seqs, words[:2])
    check(steps, windows, seqs, words[2:4])
    for index, new in [([1, 0, 1], words[4:7]), ([2, 2, 0], words[1:4]), ([0, 2, 1], words[5:8]), ([1], [words[0]])]:
        steps.reorder(np.array(index))
        seqs, windows = [list(seqs[i]) for i in index], [windows[i] for i in index]
        check(steps, windows, seqs, new)

    # One window expanded to a beam: every row reads the same cross-attention.
    steps = make_steps(model, [(k[:1], v[:1]) for k, v in kv])
    steps(np.array([prompt]))
    seqs = [[]]
    for index, new in [([0, 0, 0, 0], words[:4]), ([3, 1, 1, 0], words[4:8]), ([0, 1, 2, 3], words[1:5]),
                       ([2, 0], words[:2])]:
        steps.reorder(np.array(index))
        seqs = [list(seqs[i]) for i in index]
        check(steps, [0] * len(seqs), seqs, new)


def test_identity_reorder_copies_nothing(tiny_en):
    d, model = tiny_en.decoder, tiny_en.decoder.model
    steps = _numpy_steps(model, model.decoder.cross_kv(d.encode([espeak_clips()[0][1]])))
    steps(np.array([[d.tok.sot, d.tok.no_timestamps]]))
    steps.reorder(np.array([0, 0, 0]))
    keys = [k for k in steps.keys]
    steps.reorder(np.array([0, 1, 2]))
    assert all(a is b for a, b in zip(keys, steps.keys))
    assert steps.cross[0][0].shape[0] == 1  # the beam shares its window's keys, uncopied


# -- scripted scoring problems ----------------------------------------------------------

A, B, C, D, F, G, EOT = range(7)


class ScriptedSteps:
    """Decoder steps whose next-token probabilities are a table keyed by the tokens so far.

    It keeps each row's history, so a wrong reorder reads a prefix the table lacks."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]):
        self.table, self.rows = table, [()]
        self.calls = 0

    def logits(self, prefix: tuple[int, ...]) -> np.ndarray:
        out = np.full(EOT + 1, -np.inf, np.float32)
        for tok, p in self.table[prefix].items():
            out[tok] = math.log(p)
        return out

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows = [row + tuple(int(t) for t in new) for row, new in zip(self.rows, tokens)]
        return np.stack([self.logits(r) for r in self.rows])[:, None]

    def reorder(self, index: np.ndarray) -> None:
        self.rows = [self.rows[i] for i in index]


def run_scripted(table, beam_size, patience=1.0, length_penalty=1.0, max_new=10, cut_loop=None):
    steps = ScriptedSteps(table)
    seen = []

    def logit_filter(logits, seqs):
        assert [tuple(s) for s in seqs] == steps.rows  # each row's own tokens, in row order
        assert logits.shape == (len(seqs), EOT + 1)
        seen.append(len(seqs))

    results = beam_search(steps, steps.logits(()), beam_size, patience, max_new, EOT, logit_filter,
                          length_penalty=length_penalty, cut_loop=cut_loop)
    return results, seen


def test_beam_finds_the_sequence_greedy_misses():
    table = {
        (): {A: 0.6, B: 0.4},
        (A,): {C: 0.3, A: 0.25, B: 0.25, EOT: 0.2},
        (A, C): {EOT: 0.9, A: 0.1},
        (B,): {C: 0.9, EOT: 0.1},
        (B, C): {EOT: 0.95, A: 0.05},
        (A, A): {EOT: 1.0}, (A, B): {EOT: 1.0},
    }
    greedy, _ = run_scripted(table, beam_size=1)
    assert greedy[0].tokens == (A, C)
    best = run_scripted(table, beam_size=2)[0][0]
    assert best.tokens == (B, C) and best.finished
    assert best.sum_logprob == pytest.approx(math.log(0.4 * 0.9 * 0.95), abs=1e-6)  # EOT counted
    assert best.score == pytest.approx(best.sum_logprob / 2, abs=1e-6)  # ...but not in the length


# After A or B, EOT is likely; the long A-D-F-G is the best per token but finishes last.
PATIENCE_TABLE = {
    (): {A: 0.5, B: 0.3, C: 0.2},
    (A,): {EOT: 0.9, D: 0.1},
    (B,): {EOT: 0.9, D: 0.1},
    (C,): {D: 1.0},
    (A, D): {F: 1.0},
    (B, D): {EOT: 1.0},
    (A, D, F): {G: 1.0},
    (A, D, F, G): {EOT: 1.0},
}


def test_patience_one_stops_at_beam_size_finished_hypotheses():
    results, seen = run_scripted(PATIENCE_TABLE, beam_size=2, patience=1.0)
    # Step 1's two best continuations both end: that is beam_size finished, so it stops.
    assert [r.tokens for r in results] == [(A,), (B,)]
    assert [r.sum_logprob for r in results] == pytest.approx([math.log(0.45), math.log(0.27)], abs=1e-6)
    assert seen == [1, 2]  # the prompt row, then the expanded beam


def test_more_patience_collects_more_and_length_normalisation_ranks_them():
    results, seen = run_scripted(PATIENCE_TABLE, beam_size=2, patience=2.0)
    # The finished A and B gave their places to A-D and B-D, which carried on.
    assert [r.tokens for r in results] == [(A, D, F, G), (A,), (B,), (B, D)]
    assert results[0].score == pytest.approx(math.log(0.05) / 4, abs=1e-6)
    assert results[1].score == pytest.approx(math.log(0.45), abs=1e-6)
    assert seen == [1, 2, 2, 1, 1]  # the beam thins when no other continuation is left
    # Without the length penalty the raw sum wins: the short A.
    raw, _ = run_scripted(PATIENCE_TABLE, beam_size=2, patience=2.0, length_penalty=0.0)
    assert raw[0].tokens == (A,) and raw[0].score == pytest.approx(math.log(0.45), abs=1e-6)


def test_eot_below_the_beam_is_not_a_hypothesis():
    """Only the top beam_size continuations can finish (as in CTranslate2): here B-EOT is
    third, so it neither finishes nor takes a place in the beam."""
    table = {
        (): {A: 0.5, B: 0.5},
        (A,): {C: 0.6, D: 0.4},
        (B,): {EOT: 0.3, C: 0.7},
        (A, C): {EOT: 1.0}, (A, D): {EOT: 1.0}, (B, C): {EOT: 1.0},
    }
    results, _ = run_scripted(table, beam_size=2, patience=1.0)
    assert [r.tokens for r in results] == [(B, C), (A, C)]


def test_max_length_finishes_every_live_hypothesis():
    forever = {prefix: {A: 0.7, B: 0.3} for prefix in _prefixes((A, B), 4)}
    results, _ = run_scripted(forever, beam_size=2, max_new=3)
    assert len(results) == 2 and results[0].tokens == (A, A, A)
    assert all(len(r.tokens) == 3 and not r.finished for r in results)


def test_a_loop_is_cut_flagged_and_ranked_last():
    # Always likelier to repeat A than to stop: greedy would loop to the length limit.
    loop = {prefix: {A: 0.8, EOT: 0.2} for prefix in _prefixes((A,), 12)}
    results, _ = run_scripted(loop, beam_size=1, max_new=12, cut_loop=loop_cutter(EOT))
    assert results[0].looped and results[0].tokens == (A,) and not results[0].finished
    assert find_loop(list(results[0].tokens)) is None
    # With a beam, every A...A-EOT on the way finishes too, and they outrank the cut loop.
    results, _ = run_scripted(loop, beam_size=2, patience=5.0, max_new=12, cut_loop=loop_cutter(EOT))
    assert not results[0].looped and results[-1].looped


def _prefixes(alphabet, n):
    out = [()]
    for _ in range(n):
        out += [p + (t,) for p in out if len(p) == len(out[-1]) for t in alphabet]
    return set(out)


# -- the bundled tiny.en on real speech ------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("timestamps", [True, False], ids=["timestamps", "text-only"])
def test_beam_of_one_is_greedy_decoding(tiny_en, timestamps):
    d = tiny_en.decoder
    opts = DecodingOptions(temperatures=(0.0,), timestamps=timestamps)
    for _, audio, _ in librivox_clips():
        feats = d.encode([audio])
        greedy = d.decode(feats, opts, [len(audio) / SR])[0]
        beam = beam_decode(d, feats, opts, beam_size=1)
        assert list(beam.tokens) == list(greedy.tokens)
        assert beam.sum_logprob / (len(beam.tokens) + 1) == pytest.approx(greedy.avg_logprob, abs=1e-6)


@pytest.mark.slow
def test_mlx_steps_beam_equals_numpy_steps_beam(tiny_en):
    """decoding.py's plain `_MlxSteps` is wrapped (same model, cross K/V and caches)."""
    d = tiny_en.decoder
    opts = DecodingOptions(temperatures=(0.0,), timestamps=False)
    audio = librivox_clips()[1][1]
    feats = d.encode([audio])
    ours = beam_decode(d, feats, opts, beam_size=3)
    mlx = beam_decode(d, feats, opts, beam_size=3, steps=_MlxSteps(d.model, d.model.decoder.cross_kv(feats)))
    assert mlx.tokens == ours.tokens
    assert mlx.sum_logprob == pytest.approx(ours.sum_logprob, abs=1e-3)


@pytest.mark.slow
def test_beam_five_against_faster_whisper_beam_five(tiny_en):
    """Text-only beam 5 on the LibriVox clips against faster-whisper's (CTranslate2 float32)
    beam 5 at temperature 0. Measured: 5 of 5 token-for-token equal."""
    fw = pytest.importorskip("faster_whisper")
    ref = fw.WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="float32")
    d = tiny_en.decoder
    opts = DecodingOptions(temperatures=(0.0,), timestamps=False)
    truth, ours, theirs, same = [], [], [], 0
    for _, audio, text in librivox_clips():
        beam = beam_decode(d, d.encode([audio]), opts, beam_size=5)
        segments, _ = ref.transcribe(audio, beam_size=5, without_timestamps=True, temperature=0.0,
                                     condition_on_previous_text=False, vad_filter=False)
        segments = list(segments)
        same += list(beam.tokens) == [t for s in segments for t in s.tokens]
        truth.append(text)
        ours.append(d.tok.decode(list(beam.tokens)))
        theirs.append(" ".join(s.text for s in segments))
    assert same >= 4, f"{same}/5 token-for-token equal"
    assert wer(truth, ours) <= wer(truth, theirs) + 0.01, (wer(truth, ours), wer(truth, theirs))
