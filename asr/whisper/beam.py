"""Beam search over one Whisper window, scored as CTranslate2 (faster-whisper) scores it.

The semantics follow CTranslate2's `BeamSearch` as faster-whisper calls it
(beam_size=5, patience=1, length_penalty=1):

- the first step expands the single prompt row only; later steps take the best
  2 * beam_size continuations of all live hypotheses by cumulative log-probability;
- of those, only the top beam_size are looked at: one ending in EOT is a finished
  hypothesis (EOT's log-probability counted, the token itself dropped) and its place in
  the beam goes to the next candidate that does not end in EOT;
- the search stops once round(beam_size * patience) hypotheses are finished, or at the
  last allowed step, where every live hypothesis counts as finished;
- finished hypotheses are ranked by sum_logprob / len(tokens) ** length_penalty.

Decoder steps are any callable `tokens (rows, n) -> logits (rows, n, vocab)` with a
`reorder(index)` that makes row r continue what row index[r] decoded (`NumpySteps`, or
`MlxSteps` here for the MLX decoder). The suppression and timestamp rules come in as
`logit_filter(logits, seqs)`, applied in place to one (rows, vocab) array given each
row's sampled tokens so far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from asr.repetition import find_loop, find_segment_copy

LogitFilter = Callable[[np.ndarray, list[list[int]]], None]
LoopCut = Callable[[list[int]], "tuple[list[int], bool] | None"]


@dataclass(frozen=True)
class BeamResult:
    tokens: tuple[int, ...]  # sampled tokens, no EOT
    sum_logprob: float  # cumulative log-probability, EOT's included when it ended with one
    score: float  # ranking score: sum_logprob / len(tokens) ** length_penalty
    finished: bool  # ended with EOT (not the length limit or a loop cut)
    looped: bool = False  # a repetition loop was cut off the end of `tokens`


class MlxSteps:
    """Decoder steps on the MLX model that beam search can reorder.

    Holds the model, the per-window cross-attention keys and values and the layers'
    `KVCache`s (keys and values (batch, heads, capacity, dh) each)."""

    def __init__(self, model, cross_kv, caches=None) -> None:
        self.model = model
        self._windows = cross_kv
        self.cross_kv = cross_kv
        self.caches = caches if caches is not None else model.new_caches()
        self._rows = np.arange(cross_kv[0][0].shape[0])

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        logits = self.model.decoder(mx.array(tokens), self.cross_kv, self.caches)
        return np.array(logits, dtype=np.float32)

    def reorder(self, index: np.ndarray) -> None:
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(index) == len(self._rows) and np.array_equal(index, np.arange(len(index))):
            return
        take = mx.array(index.astype(np.int32))
        for c in self.caches:
            if c.keys is not None:
                c.keys, c.values = c.keys[take], c.values[take]
        rows = self._rows[index]
        if not np.array_equal(rows, self._rows):
            if np.array_equal(rows, np.arange(self._windows[0][0].shape[0])):
                self.cross_kv = self._windows
            else:
                sel = mx.array(rows.astype(np.int32))
                self.cross_kv = [(k[sel], v[sel]) for k, v in self._windows]
        self._rows = rows


def reorderable(steps):
    """`steps` itself if it can reorder its rows, else an `MlxSteps` over the same model,
    cross-attention and caches (decoding.py's `_MlxSteps`)."""
    if hasattr(steps, "reorder"):
        return steps
    if all(hasattr(steps, a) for a in ("model", "cross_kv", "caches")):
        return MlxSteps(steps.model, steps.cross_kv, steps.caches)
    raise TypeError(f"{type(steps).__name__} cannot reorder its rows for beam search")


def loop_cutter(eot: int) -> LoopCut:
    """The greedy decoder's repetition cut (`cut_loop`) as a beam-search hook."""

    return lambda seq: cut_loop(seq, eot)


def cut_loop(seq: list[int], eot: int) -> tuple[list[int], bool] | None:
    """What to keep of `seq` when it ends in a repetition, and whether that was a loop to
    flag; None when it does not. Timestamps are the tokens above EOT.

    An exact loop is cut to one copy and flagged. A segment restating the one before it with
    a few words left out is cut off after its opening timestamp, not flagged: the decode
    then ends inside an unfinished segment, complete up to the kept segment's end, and the
    audio after that is decoded in the next window (a fallback at a higher temperature
    would decode the whole window again, and usually worse).
    """
    text_pos = [i for i, t in enumerate(seq) if t < eot]
    if len(text_pos) < 8:
        return None
    at = find_loop([seq[i] for i in text_pos])
    if at is not None:
        return seq[: text_pos[at - 1] + 1], True
    start = find_segment_copy(seq, lambda t: t > eot)
    if start is None:
        return None
    return seq[:start], False


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _top(sums: np.ndarray, logprobs: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """The k best (row, token, cumulative log-prob) continuations, best first, finite only.

    Partitioning all of rows x vocab is slow (4-7 ms for 5 x 51864 on the 2-core test
    machine; the thousands of suppressed tokens are equal -inf), so only those within 10
    nats of the best are partitioned, or every finite one when fewer than k are that
    close; the answer is the same."""
    vocab = logprobs.shape[-1]
    totals = (sums[:, None] + logprobs).reshape(-1)
    best = totals.max()
    if best == -np.inf:
        return []
    idx = np.flatnonzero(totals >= best - 10.0)
    if len(idx) < k:
        idx = np.flatnonzero(totals > -np.inf)
    if len(idx) > 4 * k:
        kth = np.partition(totals[idx], len(idx) - k)[len(idx) - k]
        idx = idx[totals[idx] >= kth]  # all ties of the k-th, so that the order below decides
    idx = idx[np.lexsort((idx, -totals[idx]))][:k]  # ties go to the lower row, then token
    return [(int(i // vocab), int(i % vocab), float(totals[i])) for i in idx]


def _score(sum_logprob: float, length: int, length_penalty: float) -> float:
    if length_penalty == 0:
        return sum_logprob
    if length == 0:
        return float("-inf")  # CTranslate2 divides by 0 ** penalty
    return sum_logprob / length**length_penalty


def beam_search(steps, first_logits: np.ndarray, beam_size: int, patience: float, max_new: int, eot: int,
                logit_filter: LogitFilter, length_penalty: float | None = 1.0,
                cut_loop: LoopCut | None = None) -> list[BeamResult]:
    """Beam search over ONE window whose prompt `steps` has already decoded.

    first_logits: the logits after the prompt, (vocab,) or (1, vocab); the search expands
    the steps' single row to up to `beam_size` rows (`reorder`). max_new: the most tokens
    sampled, EOT included. length_penalty None means 1 (plain length normalisation).
    cut_loop(seq): (a shorter seq, looped) when seq ends in a repetition; such a hypothesis
    is finished there; one flagged `looped` is ranked after every hypothesis without a loop.
    Returns the finished hypotheses, best first (at least one when max_new >= 1).
    """
    if length_penalty is None:
        length_penalty = 1.0
    steps = reorderable(steps)
    max_candidates = max(1, round(beam_size * patience))
    n_candidates = 2 * beam_size
    seqs: list[list[int]] = [[]]
    sums = np.zeros(1)
    logits = np.array(first_logits, dtype=np.float32).reshape(1, -1)
    finished: list[BeamResult] = []

    def done(tokens: list[int], total: float, ended: bool, looped: bool = False) -> None:
        finished.append(BeamResult(tuple(tokens), total, _score(total, len(tokens), length_penalty), ended, looped))

    for step in range(max_new):
        logit_filter(logits, seqs)
        cands = _top(sums, _log_softmax(logits), n_candidates)
        last = step == max_new - 1
        live: list[tuple[int, int, float]] = []
        spare = beam_size  # where replacements for finished hypotheses come from
        for row, tok, total in cands[:beam_size]:
            if tok != eot and not last:
                live.append((row, tok, total))
                continue
            done(seqs[row] + ([] if tok == eot else [tok]), total, tok == eot)
            while spare < len(cands):
                spare += 1
                if cands[spare - 1][1] != eot:
                    live.append(cands[spare - 1])
                    break
        if cut_loop is not None:
            kept = []
            for row, tok, total in live:
                cut = cut_loop(seqs[row] + [tok])
                if cut is None:
                    kept.append((row, tok, total))
                else:
                    done(cut[0], total, False, looped=cut[1])
            live = kept
        if len(finished) >= max_candidates or not live:
            break
        # A hypothesis keeps its row where it can, so that reordering copies few rows.
        n = len(live)
        slot_of: list[int | None] = [None] * n
        taken = [False] * n
        for c, (row, _, _) in enumerate(live):
            if row < n and not taken[row]:
                slot_of[c], taken[row] = row, True
        free = iter(s for s in range(n) if not taken[s])
        slot_of = [s if s is not None else next(free) for s in slot_of]
        index = np.zeros(n, dtype=np.int64)
        tokens = np.zeros((n, 1), dtype=np.int64)
        new_seqs: list[list[int]] = [[] for _ in range(n)]
        sums = np.zeros(n)
        for (row, tok, total), s in zip(live, slot_of):
            index[s], tokens[s, 0], sums[s] = row, tok, total
            new_seqs[s] = seqs[row] + [tok]
        seqs = new_seqs
        steps.reorder(index)
        logits = np.array(steps(tokens)[:, -1], dtype=np.float32)
    if not finished:
        return [BeamResult((), 0.0, float("-inf"), False)]
    return sorted(finished, key=lambda r: (r.looped, -r.score))


def filter_for_rows(filter_rows: Callable[[np.ndarray, Sequence], None], row_type) -> LogitFilter:
    """Adapt a filter over row objects with a `.tokens` list (decoding.py's `_filter` with
    its options bound, and `_Row`) to the `logit_filter(logits, seqs)` beam search takes."""
    return lambda logits, seqs: filter_rows(logits, [row_type(tokens=s) for s in seqs])
