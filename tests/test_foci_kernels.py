"""Ranks, nearest neighbours and Azadkia & Chatterjee's T_n against plain NumPy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklunlearn._numba.foci import (
    _in_threads,
    candidate_orders,
    foci_scores,
    nearest_neighbours,
    rank_counts,
)
from sklunlearn.unlearning._lcodec import conditional_dependence, foci


def reference_neighbours(points):
    """Brute-force nearest other row (first index on ties)."""
    points = points.reshape(points.shape[0], -1)
    distances = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    return np.argmin(distances, axis=1)


def reference_dependence(y, z, x=None):
    """T_n from Azadkia & Chatterjee (2021), Sec. 2, written out."""
    n = y.shape[0]
    R = np.array([(y <= value).sum() for value in y])
    L = np.array([(y >= value).sum() for value in y])
    z = z.reshape(n, -1)
    if x is None:
        M = reference_neighbours(z)
        return (n * np.minimum(R, R[M]) - L**2).sum() / (L * (n - L)).sum()
    x = x.reshape(n, -1)
    N = reference_neighbours(x)
    M = reference_neighbours(np.hstack([x, z]))
    return (np.minimum(R, R[M]) - np.minimum(R, R[N])).sum() / (
        R - np.minimum(R, R[N])
    ).sum()


def test_rank_counts_with_ties(rng):
    y = rng.randint(0, 4, size=30).astype(float)
    below, above = rank_counts(y)
    np.testing.assert_array_equal(below, [(y <= v).sum() for v in y])
    np.testing.assert_array_equal(above, [(y >= v).sum() for v in y])
    with pytest.raises(ValueError, match="NaN"):
        rank_counts(np.array([0.0, np.nan]))


@pytest.mark.parametrize("q", [1, 3])
def test_nearest_neighbours_match_brute_force(rng, q):
    points = rng.randn(40, q)
    np.testing.assert_array_equal(nearest_neighbours(points), reference_neighbours(points))


@pytest.mark.parametrize("t", [0, 1, 2])
def test_foci_scores_match_brute_force(rng, t):
    """The pruned search finds the same neighbours as trying every row."""
    n = 60
    base = rng.randn(n, t) * rng.uniform(0.1, 3.0, size=t)
    candidates = rng.randn(5, n) * np.array([[1e-3], [0.1], [1.0], [10.0], [0.0]])
    y = rng.randn(n)
    below, _ = rank_counts(y)
    scores = foci_scores(base, candidates, below)
    for g, z in enumerate(candidates):
        neighbour = reference_neighbours(np.hstack([base, z[:, None]]))
        if np.ptp(z) > 0:  # a constant candidate has tied neighbours
            assert scores[g] == np.minimum(below, below[neighbour]).sum()


def reference_scores(base, candidates, below):
    """``sum_i min(R_i, R_M(i))`` per candidate, ``M`` from brute-force neighbours."""
    joint = [reference_neighbours(np.hstack([base, z[:, None]])) for z in candidates]
    return np.array([np.minimum(below, below[m]).sum() for m in joint])


def clustered_copies(rng, n, q, n_rows=5):
    """Noisy copies of a few rows with columns of very different scales, as in L-CODEC.

    Returns the base (n, q) and candidates (6, n): the walk along a candidate
    or the one through the base neighbours dominates depending on the scale.
    """
    scales = np.array([1e-3, 0.1, 1.0, 10.0, 1e3, 1.0])
    rows = rng.randn(n_rows, q + scales.shape[0])
    rows[:, -1] = 0.0  # a column the rows share: copies overlap along it
    copies = rows[np.arange(n) % n_rows] + 0.1 * rng.randn(n, rows.shape[1])
    base = copies[:, :q] * rng.uniform(0.1, 3.0, size=q)
    return base, (copies[:, q:] * scales).T


@pytest.mark.parametrize("q", [1, 3])
@pytest.mark.parametrize("n", [9, 150])
def test_threshold_walk_matches_brute_force_on_clustered_copies(rng, q, n):
    """Exact whichever walk finds the neighbour, also with fewer rows than kept."""
    base, candidates = clustered_copies(rng, n, q)
    below, _ = rank_counts(rng.randn(n))
    np.testing.assert_array_equal(
        foci_scores(base, candidates, below), reference_scores(base, candidates, below)
    )


@pytest.mark.parametrize("q", [0, 2])
def test_scores_do_not_depend_on_the_number_of_threads(rng, q):
    base, candidates = clustered_copies(rng, 80, q)
    below, _ = rank_counts(rng.randn(80))
    active = np.array([True, False, True, True, True, False])
    scores = [foci_scores(base, candidates, below, active, n_threads=t) for t in (1, 2, 3)]
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])
    expected = reference_scores(base, candidates, below)
    np.testing.assert_array_equal(scores[0], np.where(active, expected, -1))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_candidate_orders_are_argsort(rng, n_threads):
    candidates = rng.randn(7, 30)
    orders = candidate_orders(candidates, n_threads=n_threads)
    np.testing.assert_array_equal(orders, np.argsort(candidates, axis=1))
    assert orders.dtype == np.int64


def reference_foci(y, Z, screen):
    """FOCI written out with ``reference_dependence``, screened after its first step."""
    n, G = Z.shape
    first = np.array([reference_dependence(y, Z[:, j]) for j in range(G)])
    selected, coefficients = [int(np.argmax(first))], [float(first.max())]
    kept = set(np.argsort(-first, kind="stable")[:screen].tolist()) - set(selected)
    while kept:
        coefficient, best = max(
            (reference_dependence(y, Z[:, j], Z[:, selected]), -j) for j in kept
        )
        if not coefficient > 0:
            break
        selected.append(-best)
        coefficients.append(float(coefficient))
        kept.remove(-best)
    return selected, coefficients


def test_screened_foci_matches_a_reference(rng):
    """The screened candidates, copied out after the first step, keep their names."""
    n = 150
    Z = rng.randn(n, 12) * rng.uniform(0.1, 10.0, size=12)
    y = Z[:, 7] / Z[:, 7].std() + np.sin(Z[:, 3] / Z[:, 3].std())
    y += (Z[:, 10] / Z[:, 10].std()) ** 2 + 0.1 * rng.randn(n)
    selected, coefficients = foci(y, Z, screen=6)
    expected, expected_coefficients = reference_foci(y, Z, 6)
    assert selected == expected and {7, 3, 10} <= set(selected)
    np.testing.assert_allclose(coefficients, expected_coefficients, rtol=1e-12)


@pytest.mark.parametrize("conditional", [False, True])
def test_conditional_dependence_matches_the_formula(rng, conditional):
    n = 80
    x = rng.randn(n, 2)
    z = rng.randn(n)
    y = x[:, 0] + 0.5 * z + 0.3 * rng.randn(n)
    given_x = x if conditional else None
    assert conditional_dependence(y, z, given_x) == pytest.approx(
        reference_dependence(y, z, given_x), rel=1e-12
    )


def test_foci_coefficients_are_conditional_dependences(rng):
    """Each coefficient FOCI reports is T_n of the column given those before it."""
    n = 120
    Z = rng.randn(n, 6)
    y = Z[:, 2] + 0.5 * Z[:, 4] ** 2 + 0.05 * rng.randn(n)
    selected, coefficients = foci(y, Z)
    assert selected[:2] == [2, 4]
    for step, (j, coefficient) in enumerate(zip(selected, coefficients, strict=True)):
        before = Z[:, selected[:step]] if step else None
        assert coefficient == pytest.approx(reference_dependence(y, Z[:, j], before))


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**16),
    transform=st.sampled_from([np.exp, np.tanh, lambda v: v**3, lambda v: 2 * v - 5]),
)
def test_invariant_to_monotone_transforms_of_the_response(seed, transform):
    rng = np.random.RandomState(seed)
    z = rng.randn(50, 2)
    y = z[:, 0] - z[:, 1] ** 2 + 0.5 * rng.randn(50)
    assert conditional_dependence(transform(y), z) == pytest.approx(
        conditional_dependence(y, z), abs=1e-12
    )
    assert conditional_dependence(transform(y), z[:, 1], z[:, 0]) == pytest.approx(
        conditional_dependence(y, z[:, 1], z[:, 0]), abs=1e-12
    )


# Few examples: CI reruns this file with NUMBA_DISABLE_JIT=1 (brute-force neighbours).
@settings(max_examples=5)
@given(seed=st.integers(0, 2**16))
def test_coefficient_range_for_large_n(seed):
    """Near 0 when independent, near 1 for a function (Azadkia & Chatterjee)."""
    rng = np.random.RandomState(seed)
    n = 500
    z = rng.randn(n)
    independent = conditional_dependence(rng.randn(n), z)
    function = conditional_dependence(np.sin(3 * z), z)
    assert -0.15 < independent < 0.15  # about 4 standard deviations at n = 500
    assert 0.9 < function <= 1.0
    x = rng.randn(n)
    # conditionally: nearest neighbours in two dimensions, a slower convergence
    assert 0.7 < conditional_dependence(np.sin(3 * z) + x, z, x) <= 1.0


def test_a_shared_pool_scores_and_sorts_as_fresh_threads(rng):
    """FOCI reuses one pool for all its steps: results as brute force, errors raised."""
    from concurrent.futures import ThreadPoolExecutor

    base, candidates = clustered_copies(rng, 80, 2)
    below, _ = rank_counts(rng.randn(80))
    expected = reference_scores(base, candidates, below)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(2):  # the pool's threads serve several calls
            for t in (2, 3):
                scores = foci_scores(base, candidates, below, n_threads=t, pool=pool)
                np.testing.assert_array_equal(scores, expected)
                orders = candidate_orders(candidates, n_threads=t, pool=pool)
                np.testing.assert_array_equal(orders, np.argsort(candidates, axis=1))
        with pytest.raises(ValueError, match="NaN"):
            foci_scores(np.full((80, 1), np.nan), candidates, below, pool=pool)

        def task(t, n_tasks):
            if t == n_tasks - 1:
                raise RuntimeError(f"task {t} of {n_tasks}")

        with pytest.raises(RuntimeError, match="task 1 of 2"):  # a pool thread's
            _in_threads(task, 2, pool)
