"""The offline pass: once a meeting (or a file) has been heard, cluster every embedding the live
pass kept at once, and rebuild the turns with labels that no longer depend on the order
voices came in.

Live labels are decided window by window against running centroids; an early centroid made
of little speech can split one person in two, or take in a second voice. Here all the
embeddings of a channel are clustered together (average linkage on cosine distance, cut at a
threshold or at a known number of speakers; a cluster of too few embeddings to be a person,
offline_min_points, joins the nearest larger one), each hop's activity gets the label of its
cluster, and the clusters take the live labels they overlap most (one to one, Hungarian), so
S1 stays S1 wherever the live pass had it right. A long meeting's embeddings arrive here
already pooled to at most MAX_POINTS (diarize.online.WindowLog). Only labels change: the
activity, and so the turn boundaries, are the live pass's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from diarize.clusters import absorb_small, agglomerate, assign
from diarize.online import (
    MERGE_GAP_S,
    DiarizeOptions,
    Embedder,
    LabelBook,
    OnlineDiarizer,
    Segmenter,
    Turn,
    grid_turns,
    label_text,
)


def recluster(diarizer: OnlineDiarizer, speakers: int | None = None, max_speakers: int | None = None) -> list[Turn]:
    """The channel's turns relabelled from all its kept embeddings (see the module's docstring).
    `speakers`: exactly this many (`--speakers N` on one channel); `max_speakers`: at most."""
    log = diarizer.log
    if log.size == 0:
        return []
    live, point = log.column("live"), log.column("point")
    distance = 1.0 - diarizer.options.offline_similar
    points, weights = log.points[:log.count], log.weights[:log.count]
    found = agglomerate(points, distance, speakers, weights)
    if max_speakers is not None and speakers is None and len(set(found.tolist())) > max_speakers:
        found = agglomerate(points, distance, max_speakers, weights)
    if speakers is None and len(found):
        found = absorb_small(points, found, diarizer.options.offline_min_points, weights)
    cluster = np.where(point >= 0, found[np.maximum(point, 0)] if len(found) else -1, -1)
    _fill_unembedded(cluster, live)
    number = _numbers(cluster, live, log.column("activity"), diarizer.numbers, diarizer.book)
    starts, cells, activity = log.column("start"), log.column("cells"), log.column("activity")
    turns: list[Turn] = []
    for w in range(log.size):
        labels = [label_text(number[c]) if c >= 0 else "" for c in cluster[w]]
        turns += grid_turns(float(starts[w]), activity[w, :cells[w]], labels)
    return merge_turns(turns)


def _fill_unembedded(cluster: np.ndarray, live: np.ndarray) -> None:
    """A local speaker with no embedding (too little solo speech) takes the cluster most
    embeddings of its live label went to."""
    for n in np.unique(live[(cluster < 0) & (live > 0)]):
        mine = cluster[(live == n) & (cluster >= 0)]
        if len(mine):
            cluster[(live == n) & (cluster < 0)] = np.bincount(mine).argmax()


def _numbers(cluster: np.ndarray, live: np.ndarray, activity: np.ndarray, known: list[int],
             book: LabelBook) -> dict[int, int]:
    """Cluster → label number: the live label it shares most speech with (one to one); a
    cluster left over (a speaker the live pass merged into another) gets a new number."""
    clusters = sorted(set(cluster[cluster >= 0].tolist()))
    talk = activity.sum(1)  # (hops, LOCAL): cells of speech
    overlap = np.zeros((len(clusters), len(known)))
    for i, c in enumerate(clusters):
        for j, n in enumerate(known):
            overlap[i, j] = talk[(cluster == c) & (live == n)].sum()
    out = {clusters[r]: known[c] for r, c in assign(overlap, 1e-9)}
    for c in clusters:
        if c not in out:
            out[c] = book.new()
            known.append(out[c])
    return out


def merge_turns(turns: Sequence[Turn], gap: float = MERGE_GAP_S) -> list[Turn]:
    """One speaker's turns closer than `gap` joined; in order of start."""
    last: dict[str, int] = {}
    out: list[Turn] = []
    for s, e, label in sorted(turns):
        i = last.get(label)
        if i is not None and s - out[i][1] <= gap:
            out[i] = (out[i][0], max(e, out[i][1]), label)
            continue
        last[label] = len(out)
        out.append((s, e, label))
    return out


def live_pass(audio: np.ndarray, segmenter: Segmenter, embedder: Embedder,
              options: DiarizeOptions = DiarizeOptions()) -> OnlineDiarizer:
    """A whole recording through the live pass, fed a minute at a time (the buffer stays a
    window and a block); `.turns` are the live labels, recluster() gives the offline ones."""
    d = OnlineDiarizer(segmenter, embedder, options=options)
    block = int(60 * 16_000)
    for i in range(0, len(audio), block):
        d.feed(audio[i:i + block])
        while d.ready:
            d.step()
    d.finish()
    return d


def diarize_audio(audio: np.ndarray, segmenter: Segmenter, embedder: Embedder,
                  options: DiarizeOptions = DiarizeOptions(), speakers: int | None = None,
                  offline: bool = True) -> list[Turn]:
    """A whole recording's turns: the live pass over it, then (`offline`) the offline pass."""
    if speakers is not None:
        options = replace(options, max_speakers=speakers)
    d = live_pass(audio, segmenter, embedder, options)
    return recluster(d, speakers) if offline else list(d.turns)
