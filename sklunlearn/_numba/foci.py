"""Ranks and nearest neighbours for Azadkia & Chatterjee's dependence coefficient.

The conditional dependence coefficient ``T_n(Y, Z | X)`` (Azadkia & Chatterjee
2021, Sec. 2) needs, for every observation ``i``, the counts
``R_i = #{j : Y_j <= Y_i}`` and ``L_i = #{j : Y_j >= Y_i}`` and the nearest
neighbour of ``i`` (Euclidean, excluding ``i``) among the ``X`` and among the
``(X, Z)`` values. FOCI, their forward selection, evaluates ``(X, Z_j)`` for every
candidate column ``Z_j`` at each of its steps, so :func:`foci_scores` finds
those neighbours for all candidates at once, exactly but without trying all
``n`` rows: it tries the few rows nearest to ``i`` in ``X`` (found once per
step), then walks outwards from ``i`` along sorted ``Z_j``, and stops as soon
as the distance in ``X`` of the rows not tried, or ``(Z_ji - Z_jl)^2`` alone,
reaches the best squared distance found: no further row can beat it.

Ties among distances go to the point found first, not to a random one as in
Azadkia & Chatterjee: with continuous data they have probability zero.
"""

import numpy as np

from ._config import jit

__all__ = ["foci_scores", "nearest_neighbours", "rank_counts"]

STATUS_OK = 0
STATUS_NOT_FINITE = 2

# Rows nearest in the conditioning columns tried before the walk along a
# candidate: enough to make the walk stop at once for most candidates.
_BASE_NEIGHBOURS = 8


@jit
def _rank_counts_kernel(y, order, below, above):
    """``below[i] = #{j : y_j <= y_i}``, ``above[i] = #{j : y_j >= y_i}``.

    ``order`` sorts ``y`` ascending; equal values form one run.
    """
    n = y.shape[0]
    for i in range(n):
        if not np.isfinite(y[i]):
            return STATUS_NOT_FINITE
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and y[order[stop]] == y[order[start]]:
            stop += 1
        for t in range(start, stop):
            below[order[t]] = stop
            above[order[t]] = n - start
        start = stop
    return STATUS_OK


@jit
def _squared_distance(points, i, j):
    total = 0.0
    for c in range(points.shape[1]):
        difference = points[i, c] - points[j, c]
        total += difference * difference
    return total


@jit
def _nearest_neighbours_kernel(points, neighbour):
    """Brute-force nearest neighbour of each row of ``points`` (another row)."""
    n = points.shape[0]
    for i in range(n):
        best = np.inf
        best_index = -1
        for j in range(n):
            if j != i:
                distance = _squared_distance(points, i, j)
                if distance < best:
                    best = distance
                    best_index = j
        neighbour[i] = best_index


@jit
def _base_neighbours_kernel(base, neighbours, near_distances):
    """The ``K`` nearest other rows of each row of ``base``, and the next distance.

    ``neighbours[i]`` (K,) in increasing squared distance ``near_distances[i,
    :K]``; ``near_distances[i, K]`` is the (K + 1)-th smallest (inf when there
    is none): no row outside ``neighbours[i]`` is closer in ``base``.
    """
    n = base.shape[0]
    n_kept = neighbours.shape[1] + 1
    distances = np.empty(n_kept)
    indices = np.empty(n_kept, dtype=np.int64)
    for i in range(n):
        size = 0
        for j in range(n):
            if j == i:
                continue
            distance = _squared_distance(base, i, j)
            if size == n_kept and distance >= distances[size - 1]:
                continue
            # insertion into the sorted list of the n_kept nearest so far
            position = size if size < n_kept else n_kept - 1
            while position > 0 and distances[position - 1] > distance:
                if position < n_kept:
                    distances[position] = distances[position - 1]
                    indices[position] = indices[position - 1]
                position -= 1
            distances[position] = distance
            indices[position] = j
            size = min(size + 1, n_kept)
        for r in range(n_kept):
            if r < neighbours.shape[1]:
                neighbours[i, r] = indices[r] if r < size else -1
            near_distances[i, r] = distances[r] if r < size else np.inf


@jit
def _nearest_joint(base, near, near_distances, z, order, position, i):
    """Nearest neighbour of ``i`` in ``(base, z)``.

    First the rows nearest in ``base`` (``near``, in increasing distance
    ``near_distances``), then an outward walk along sorted ``z``; both give
    lower bounds on the distance of the rows not yet tried (the next distance
    in ``base``, the gap in ``z``), and the search stops when either reaches
    the best distance found.
    """
    n = z.shape[0]
    best = np.inf
    best_index = -1
    for r in range(near.shape[0]):
        if near_distances[r] >= best:
            return best_index
        j = near[r]
        if j < 0:
            break
        gap = z[i] - z[j]
        distance = gap * gap + near_distances[r]
        if distance < best:
            best = distance
            best_index = j
    if near_distances[near.shape[0]] >= best:
        return best_index
    low = position[i] - 1
    high = position[i] + 1
    while low >= 0 or high < n:
        gap_low = z[i] - z[order[low]] if low >= 0 else np.inf
        gap_high = z[order[high]] - z[i] if high < n else np.inf
        if gap_low <= gap_high:
            j = order[low]
            gap = gap_low
            low -= 1
        else:
            j = order[high]
            gap = gap_high
            high += 1
        # Every later row is at least this far along z alone.
        if gap * gap >= best:
            break
        distance = gap * gap + _squared_distance(base, i, j)
        if distance < best:
            best = distance
            best_index = j
    return best_index


@jit
def _foci_scores_kernel(
    base, near, near_distances, candidates, orders, active, below, scores
):
    """``scores[j] = sum_i min(R_i, R_N(i))``, ``N(i)`` the neighbour in ``(base, Z_j)``.

    ``candidates`` holds one candidate per row (G, n); ``orders`` sorts each;
    ``near`` and ``near_distances`` are :func:`_base_neighbours_kernel`'s.
    """
    n_candidates, n = candidates.shape
    position = np.empty(n, dtype=np.int64)
    for g in range(n_candidates):
        if not active[g]:
            continue
        z = candidates[g]
        order = orders[g]
        for t in range(n):
            position[order[t]] = t
        total = 0
        for i in range(n):
            j = _nearest_joint(base, near[i], near_distances[i], z, order, position, i)
            total += min(below[i], below[j])
        scores[g] = total


def _points(points, name):
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return points


def rank_counts(y):
    """``R_i = #{j : y_j <= y_i}`` and ``L_i = #{j : y_j >= y_i}`` (int64).

    Parameters
    ----------
    y : array-like of shape (n,)

    Returns
    -------
    below, above : ndarray of shape (n,)
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array, got shape {y.shape}.")
    below = np.empty(y.shape[0], dtype=np.int64)
    above = np.empty(y.shape[0], dtype=np.int64)
    if _rank_counts_kernel(y, np.argsort(y, kind="stable"), below, above) != STATUS_OK:
        raise ValueError("y contains NaN or infinity.")
    return below, above


def nearest_neighbours(points):
    """Index of the nearest other row of each row of ``points`` (n, q), n >= 2."""
    points = _points(points, "points")
    if points.shape[0] < 2:
        raise ValueError("Nearest neighbours need at least 2 points.")
    neighbour = np.empty(points.shape[0], dtype=np.int64)
    _nearest_neighbours_kernel(points, neighbour)
    return neighbour


def foci_scores(base, candidates, below, active=None, orders=None):
    """``sum_i min(R_i, R_N(i))`` per candidate, ``N(i)`` the neighbour in ``(base, Z_g)``.

    Parameters
    ----------
    base : ndarray of shape (n, q)
        The conditioning columns (``q = 0`` for none).
    candidates : ndarray of shape (G, n)
        One candidate variable per row.
    below : ndarray of shape (n,)
        ``R_i`` of :func:`rank_counts`.
    active : ndarray of bool of shape (G,), default=None
        Candidates to score (all by default); the others get -1.
    orders : ndarray of shape (G, n), default=None
        ``np.argsort(candidates, axis=1)``, when already known.

    Returns
    -------
    scores : ndarray of shape (G,)
    """
    base = _points(base, "base")
    candidates = _points(candidates, "candidates")
    n = candidates.shape[1]
    if base.shape[0] != n or below.shape != (n,) or n < 2:
        raise ValueError(
            f"base has {base.shape[0]} rows and below {below.shape[0]} entries for "
            f"candidates of {n} observations (at least 2 needed)."
        )
    if active is None:
        active = np.ones(candidates.shape[0], dtype=np.bool_)
    if orders is None:
        orders = np.argsort(candidates, axis=1)
    scores = np.full(candidates.shape[0], -1, dtype=np.int64)
    # Without conditioning columns every distance in base is 0: nothing to prune by.
    n_near = min(_BASE_NEIGHBOURS, n - 1) if base.shape[1] else 0
    near = np.empty((n, n_near), dtype=np.int64)
    near_distances = np.zeros((n, n_near + 1))
    if n_near:
        _base_neighbours_kernel(base, near, near_distances)
    _foci_scores_kernel(
        base,
        near,
        near_distances,
        candidates,
        np.ascontiguousarray(orders, dtype=np.int64),
        np.ascontiguousarray(active, dtype=np.bool_),
        np.ascontiguousarray(below, dtype=np.int64),
        scores,
    )
    return scores
