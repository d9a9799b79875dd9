"""Grouping voice embeddings by speaker, numpy only: one-to-one assignment (Hungarian) and
agglomerative clustering with average linkage on cosine distance.

scipy would give both (`linear_sum_assignment`, `linkage`), but it is not a product
dependency and the sizes here are small: a handful of labels to assign, and at most
MAX_POINTS embeddings to cluster at the end of a meeting (the caller pools beyond that).
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 800  # agglomeration is O(n^2) memory and about n argmins over n^2: ~1 s here at 800


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero): cosine similarity is then a dot product."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """The (row, column) pairs of least total cost, one per row of the smaller side
    (Kuhn-Munkres with potentials, O(n^2 m))."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    if cost.shape[0] > cost.shape[1]:
        return sorted((r, c) for c, r in hungarian(cost.T))
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, int)  # owner[j]: the row (1-based) holding column j; column 0 is a sentinel
    way = np.zeros(m + 1, int)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = ~used[1:] & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = j0
            free = np.flatnonzero(~used[1:]) + 1
            j1 = int(free[np.argmin(slack[free])])
            delta = slack[j1]
            u[owner[used]] += delta
            v[used] -= delta
            slack[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j])


def assign(gain: np.ndarray, least: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs with the largest total gain, among pairs whose gain is
    at least `least` (> 0): a row no column is good enough for stays unpaired, and two rows
    never share a column."""
    gain = np.asarray(gain, np.float64)
    allowed = np.where(gain >= least, gain, 0.0)
    return [(r, c) for r, c in hungarian(-allowed) if allowed[r, c] > 0]


def agglomerate(points: np.ndarray, distance: float, clusters: int | None = None,
                weights: np.ndarray | None = None) -> np.ndarray:
    """Cluster numbers 0..k-1 (in order of first point) for `points` (rows, compared by cosine
    distance), merging the closest pair (average linkage) while it is closer than `distance`,
    or, with `clusters`, until that many are left whatever the distance. `weights`: how many
    embeddings each point stands for (pooled points), so that averages stay fair."""
    n = len(points)
    if n == 0:
        return np.zeros(0, int)
    x = unit(points)
    d = 1.0 - x @ x.T
    np.fill_diagonal(d, np.inf)
    size = np.ones(n) if weights is None else np.asarray(weights, np.float64).copy()
    owner = np.arange(n)
    left = n
    while left > max(clusters or 1, 1):
        flat = int(np.argmin(d))
        i, j = divmod(flat, n)
        if clusters is None and d[i, j] >= distance:
            break
        merged = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        d[i, :], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j, :], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        owner[owner == j] = i
        left -= 1
    _, first = np.unique(owner, return_index=True)
    order = {int(owner[f]): k for k, f in enumerate(sorted(first))}
    return np.array([order[int(o)] for o in owner])


def absorb_small(points: np.ndarray, found: np.ndarray, least: float, weights: np.ndarray | None = None) -> np.ndarray:
    """`found` (cluster numbers of `points`) with every cluster that holds less than `least`
    weight (embeddings) moved into the large cluster whose centroid is most similar to its
    own, renumbered 0..k-1 in order of first point. Nothing changes when no cluster is large."""
    found = np.asarray(found)
    w = np.ones(len(found)) if weights is None else np.asarray(weights, np.float64)
    ids = np.unique(found)
    size = np.array([w[found == c].sum() for c in ids])
    large, small = ids[size >= least], ids[size < least]
    if not len(large) or not len(small):
        return found
    x = unit(points)
    centroid = {int(c): unit(x[found == c].sum(0)) for c in ids}
    out = found.copy()
    keep = np.stack([centroid[int(c)] for c in large])
    for c in small:
        out[found == c] = large[int(np.argmax(keep @ centroid[int(c)]))]
    _, first = np.unique(out, return_index=True)
    order = {int(out[f]): k for k, f in enumerate(sorted(first))}
    return np.array([order[int(o)] for o in out])
