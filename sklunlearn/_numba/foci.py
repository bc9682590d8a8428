"""Ranks and nearest neighbours for Azadkia & Chatterjee's dependence coefficient.

The conditional dependence coefficient ``T_n(Y, Z | X)`` (Azadkia & Chatterjee
2021, Sec. 2) needs, for every observation ``i``, the counts
``R_i = #{j : Y_j <= Y_i}`` and ``L_i = #{j : Y_j >= Y_i}`` and the nearest
neighbour of ``i`` (Euclidean, excluding ``i``) among the ``X`` and among the
``(X, Z)`` values. FOCI, their forward selection, evaluates ``(X, Z_j)`` for every
candidate column ``Z_j`` at each of its steps, so :func:`foci_scores` finds
those neighbours for all candidates at once, exactly but without trying all
``n`` rows. Without ``X`` the neighbour in ``Z_j`` alone is one of the two
adjacent in sorted order. With ``X``, two lists are walked at once (the
threshold algorithm of Fagin, Lotem & Naor 2003, for the smallest sum of two
terms each listed in increasing order): the rows nearest to ``i`` in ``X``
(found once per step, shared by the candidates) and the rows outwards from
``i`` along sorted ``Z_j``. A row not yet reached by either walk is at least
as far in ``X`` as the next row of the first and at least as far along
``Z_j`` as the next row of the second, so the search stops as soon as the
sum of those two squared distances reaches the best squared distance found.

Candidates are scored in parallel threads (the kernels release the GIL); each
candidate's score is computed by one thread alone, so the result does not
depend on the number of threads.

Ties among distances go to the point found first, not to a random one as in
Azadkia & Chatterjee: with continuous data they have probability zero.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._config import jit

__all__ = [
    "candidate_orders",
    "foci_scores",
    "nearest_neighbours",
    "rank_counts",
    "scoring_threads",
]

STATUS_OK = 0
STATUS_NOT_FINITE = 2

# Rows nearest in the conditioning columns kept per row for the threshold
# walk: past them, the walk along a candidate continues alone.
_BASE_NEIGHBOURS = 16

# Below this many (row, candidate) searches a second thread costs more than
# it saves.
PARALLEL_MIN_SEARCHES = 50_000


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
def _keep_nearest(distances, i, neighbours, near_distances):
    """The ``K`` smallest ``distances`` other than ``i``, and the next one.

    ``neighbours`` (K,) in increasing distance ``near_distances[:K]``, the
    first index on ties; ``near_distances[K]`` is the (K + 1)-th smallest (inf
    when there is none). Unfilled entries get index -1 and distance inf.
    """
    n_kept = near_distances.shape[0]
    near_distances[:] = np.inf
    neighbours[:] = -1
    for j in range(distances.shape[0]):
        distance = distances[j]
        if j == i or distance >= near_distances[n_kept - 1]:
            continue
        # insertion into the sorted list, after equal distances
        position = n_kept - 1
        while position > 0 and near_distances[position - 1] > distance:
            near_distances[position] = near_distances[position - 1]
            if position < n_kept - 1:
                neighbours[position] = neighbours[position - 1]
            position -= 1
        near_distances[position] = distance
        if position < n_kept - 1:
            neighbours[position] = j


@jit
def _base_neighbours_kernel(columns, start, stop, neighbours, near_distances):
    """Rows ``start:stop``: the ``K`` nearest other rows in the base, and the next distance.

    ``columns`` (q, n) is the base by columns, so that a row's distances to
    all others are one vectorised pass per column; see :func:`_keep_nearest`
    for ``neighbours[i]`` (K,) and ``near_distances[i]`` (K + 1,).
    """
    q, n = columns.shape
    distances = np.empty(n)
    for i in range(start, stop):
        distances[:] = 0.0
        for c in range(q):
            centre = columns[c, i]
            for j in range(n):
                difference = centre - columns[c, j]
                distances[j] += difference * difference
        _keep_nearest(distances, i, neighbours[i], near_distances[i])


@jit
def _nearest_joint(base, near, near_distances, z, sorted_z, order, start, i):
    """Nearest neighbour of ``i`` in ``(base, z)`` by Fagin's threshold algorithm.

    Two walks: down ``near`` (the rows nearest ``i`` in ``base``, in
    increasing squared distance ``near_distances``) and outwards from
    ``start``, the position of ``i`` in ``sorted_z = z[order]``. A row reached
    by neither is at least ``near_distances[r]`` away in ``base`` and
    ``gap^2`` along ``z`` (``r`` and ``gap`` the walks' next), so the search
    stops when their sum reaches the best squared distance. The walk whose
    term is larger goes next: that term dominates the distance, so its order
    is closer to the joint one.
    """
    n = z.shape[0]
    n_near = near.shape[0]
    best = np.inf
    best_index = -1
    r = 0
    low = start - 1
    high = start + 1
    while True:
        gap_low = z[i] - sorted_z[low] if low >= 0 else np.inf
        gap_high = sorted_z[high] - z[i] if high < n else np.inf
        gap = min(gap_low, gap_high)
        squared_gap = gap * gap
        if near_distances[r] + squared_gap >= best:
            return best_index
        if r < n_near and near_distances[r] >= squared_gap:
            j = near[r]
            difference = z[i] - z[j]
            distance = difference * difference + near_distances[r]
            r += 1
        else:
            if gap_low <= gap_high:
                j = order[low]
                low -= 1
            else:
                j = order[high]
                high += 1
            distance = squared_gap + _squared_distance(base, i, j)
        if distance < best:
            best = distance
            best_index = j


@jit
def _joint_scores_kernel(
    base, near, near_distances, candidates, orders, rows, below, scores
):
    """``scores[a] = sum_i min(R_i, R_N(i))``, ``N(i)`` the neighbour in ``(base, Z_g)``.

    ``g = rows[a]`` indexes ``candidates`` (G, n), one candidate per row, and
    ``orders``, which sorts each; ``near`` and ``near_distances`` are
    :func:`_base_neighbours_kernel`'s.
    """
    n = candidates.shape[1]
    position = np.empty(n, dtype=np.int64)
    sorted_z = np.empty(n)
    for a in range(rows.shape[0]):
        z = candidates[rows[a]]
        order = orders[rows[a]]
        for t in range(n):
            position[order[t]] = t
            sorted_z[t] = z[order[t]]
        total = 0
        for i in range(n):
            j = _nearest_joint(
                base, near[i], near_distances[i], z, sorted_z, order, position[i], i
            )
            total += min(below[i], below[j])
        scores[a] = total


@jit
def _marginal_scores_kernel(candidates, orders, rows, below, scores):
    """``scores[a] = sum_i min(R_i, R_N(i))``, ``N(i)`` the neighbour in ``Z_g`` alone.

    In one dimension the nearest other row is one of the two adjacent in
    sorted order (the lower one on a tie).
    """
    n = candidates.shape[1]
    for a in range(rows.shape[0]):
        z = candidates[rows[a]]
        order = orders[rows[a]]
        total = 0
        for t in range(n):
            i = order[t]
            gap_low = z[i] - z[order[t - 1]] if t > 0 else np.inf
            gap_high = z[order[t + 1]] - z[i] if t + 1 < n else np.inf
            j = order[t - 1] if gap_low <= gap_high else order[t + 1]
            total += min(below[i], below[j])
        scores[a] = total


def _points(points, name):
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return points


def scoring_threads():
    """The most threads the kernels here use: Numba's count, at most the cores."""
    return max(1, min(numba.config.NUMBA_NUM_THREADS, os.cpu_count() or 1))


def _threads(n_searches):
    """Threads for ``n_searches`` neighbour searches: one below a floor."""
    if n_searches < PARALLEL_MIN_SEARCHES:
        return 1
    return scoring_threads()


def _in_threads(task, n_threads, pool=None):
    """``task(t, n_threads)`` for every ``t < n_threads``, in that many threads.

    Task 0 runs in the calling thread, the others in ``pool`` (a
    ``ThreadPoolExecutor``; a new one when None): a pool kept across calls
    saves starting threads at every call.
    """
    if n_threads == 1:
        task(0, 1)
        return
    if pool is None:
        with ThreadPoolExecutor(n_threads - 1) as own:
            _in_threads(task, n_threads, own)
        return
    futures = [pool.submit(task, t, n_threads) for t in range(1, n_threads)]
    try:
        task(0, n_threads)
    finally:
        for future in futures:
            future.result()


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


def candidate_orders(candidates, n_threads=None, pool=None):
    """``np.argsort(candidates, axis=1)``, rows sorted in parallel threads.

    Parameters
    ----------
    candidates : ndarray of shape (G, n)
    n_threads : int, default=None
        Threads to sort in (by default Numba's thread count, one for small
        inputs).
    pool : concurrent.futures.ThreadPoolExecutor, default=None
        Threads to use besides the calling one (new ones by default).

    Returns
    -------
    orders : ndarray of int64 of shape (G, n)
    """
    candidates = np.asarray(candidates)
    orders = np.empty(candidates.shape, dtype=np.int64)
    if n_threads is None:
        n_threads = _threads(candidates.size)

    def task(t, n_tasks):  # NumPy releases the GIL while it sorts
        part = slice(t * len(orders) // n_tasks, (t + 1) * len(orders) // n_tasks)
        orders[part] = np.argsort(candidates[part], axis=1)

    _in_threads(task, n_threads, pool)
    return orders


def foci_scores(
    base, candidates, below, active=None, orders=None, n_threads=None, pool=None
):
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
    n_threads : int, default=None
        Threads to score in (by default Numba's thread count, one for small
        inputs); the scores do not depend on it.
    pool : concurrent.futures.ThreadPoolExecutor, default=None
        Threads to use besides the calling one (new ones by default).

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
    rows = np.arange(candidates.shape[0])
    if active is not None:
        rows = np.flatnonzero(active)
    if orders is None:
        orders = np.argsort(candidates, axis=1)
    orders = np.ascontiguousarray(orders, dtype=np.int64)
    below = np.ascontiguousarray(below, dtype=np.int64)
    if n_threads is None:
        n_threads = _threads(n * rows.shape[0])
    # Interleaved shares: neighbouring candidates often cost alike.
    shares = [rows[t::n_threads].copy() for t in range(n_threads)]
    partial = [np.empty(share.shape[0], dtype=np.int64) for share in shares]
    if base.shape[1] == 0:

        def task(t, n_tasks):
            _marginal_scores_kernel(candidates, orders, shares[t], below, partial[t])

    else:
        n_near = min(_BASE_NEIGHBOURS, n - 1)
        near = np.empty((n, n_near), dtype=np.int64)
        near_distances = np.empty((n, n_near + 1))
        columns = np.ascontiguousarray(base.T)

        def neighbours(t, n_tasks):
            start, stop = t * n // n_tasks, (t + 1) * n // n_tasks
            _base_neighbours_kernel(columns, start, stop, near, near_distances)

        _in_threads(neighbours, n_threads, pool)

        def task(t, n_tasks):
            _joint_scores_kernel(
                base, near, near_distances, candidates, orders, shares[t], below, partial[t]
            )

    _in_threads(task, n_threads, pool)
    scores = np.full(candidates.shape[0], -1, dtype=np.int64)
    for share, part in zip(shares, partial, strict=True):
        scores[share] = part
    return scores
