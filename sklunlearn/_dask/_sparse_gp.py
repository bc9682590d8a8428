"""Sparse GP regression on rows held on a dask cluster.

At fixed hyperparameters and inducing points the model depends on the rows
only through :class:`~sklunlearn.gaussian_process._bound.SparseStatistics`,
a sum over rows: one pass computes each chunk's with the in-memory code and
adds them in a tree. Learning the hyperparameters evaluates the collapsed
bound and its gradient in one pass: each chunk gives the bound's sums and
their derivatives in the kernel hyperparameters
(:func:`~sklunlearn.gaussian_process._bound_moments.bound_moments`), the
client the bound and its gradient from their total. Learning the inducing
locations too keeps two passes per evaluation
(:func:`~sklunlearn.gaussian_process._bound.bound_sums`, then
:func:`~sklunlearn.gaussian_process._bound.gradient_sweep` after the m x m
solve): the derivatives of the sums in ``Z`` would be m x m x (m p) numbers
per chunk. Inducing points are k-means centroids of a bounded uniform sample
of the rows, drawn on the workers.
"""

import zlib
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ..gaussian_process._bound import (
    BoundEvaluation,
    SparseStatistics,
    bound_partials,
    bound_setup,
    bound_sums,
    gradient_sweep,
    target_normalization,
)
from ..gaussian_process._bound_moments import bound_moments, moments_evaluation
from ..gaussian_process._inducing import (
    coinciding_inducing_points,
    resolve_inducing_points,
    select_inducing_points,
)
from ..linear_model._sufficient_statistics import LinearStatistics

__all__ = ["sample_size", "sparse_gp_update"]

# Rows of the sample k-means chooses inducing points from: this many per inducing
# point, and at least _MIN_SAMPLE (all the rows when there are fewer).
_SAMPLE_PER_INDUCING = 50
_MIN_SAMPLE = 10_000


def sample_size(n_inducing):
    """Rows sampled (uniformly, without replacement) to choose ``n_inducing`` points."""
    return max(_MIN_SAMPLE, _SAMPLE_PER_INDUCING * int(n_inducing))


@dataclass(frozen=True)
class _Sample:
    """A uniform sample of rows without replacement: the ``size`` largest random keys.

    Two samples add to the sample of their union (the largest keys of both),
    so a tree of chunks' samples gives a sample of all rows.
    """

    keys: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    size: int

    def __add__(self, other):
        return _Sample.largest(
            np.concatenate([self.keys, other.keys]),
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.weights, other.weights]),
            self.size,
        )

    @classmethod
    def largest(cls, keys, rows, weights, size):
        if keys.size > size:
            keep = np.sort(np.argpartition(-keys, size - 1)[:size])
            keys, rows, weights = keys[keep], rows[keep], weights[keep]
        return cls(keys, rows, weights, size)


def _chunk_first(X, y, weights, size, seed):
    """The chunk's raw statistics (targets, magnitudes) and, with a ``size``, its sample.

    The chunk's keys are seeded by ``seed`` and its contents, so a fit is
    reproducible whatever worker computes it.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        raw = LinearStatistics.from_data(X, y, weights)
    if size is None:
        return raw
    keep = weights > 0
    content = [zlib.crc32(np.ascontiguousarray(a).tobytes()) for a in (X, weights)]
    keys = np.random.default_rng([seed, *content]).random(int(np.count_nonzero(keep)))
    return raw, _Sample.largest(keys, X[keep], weights[keep], size)


def _chunk_update(X, y, weights, kernel, Z, factor, forget):
    """The chunk's raw statistics, its :class:`SparseStatistics` and, when
    forgetting, which inducing points equal one of its rows (0 or 1 each)."""
    with np.errstate(over="ignore", invalid="ignore"):
        raw = LinearStatistics.from_data(X, y, weights)
    batch = SparseStatistics.from_data(kernel, Z, factor, X, y, weights)
    hits = np.zeros(Z.shape[0], dtype=np.int64)
    if forget:
        hits[coinciding_inducing_points(X[weights > 0], Z)] = 1
    return raw, batch, hits


def _chunk_bound_sums(X, y, weights, setup, mean, std):
    return bound_sums(setup, X, (y - mean) / std, weights)


def _chunk_bound_moments(X, y, weights, setup, mean, std):
    return bound_moments(setup, X, (y - mean) / std, weights)


def _chunk_gradient(X, y, weights, setup, mean, std, partial, noise_variance):
    start = (np.zeros(setup.cross.n_theta), np.zeros(setup.cross.Z.shape))
    return gradient_sweep(
        setup, X, (y - mean) / std, weights, partial, noise_variance, start
    )


class ChunkedBound:
    """The collapsed bound of rows on a cluster: one pass per evaluation
    (two with derivatives in the inducing locations).

    The twin of the in-memory ``_RowsBound`` of
    :class:`~sklunlearn.gaussian_process.SparseGPRegressor`: called as
    ``bound(kernel, Z, noise_variance, with_inducing, jitters)``, it returns
    the :class:`BoundEvaluation` that :func:`collapsed_bound` gives on the
    same rows: the value to round-off; the gradient differs by the order in
    which its moments are summed, which can move where L-BFGS-B stops by its
    tolerance (docs/scaling_out.md).

    Parameters
    ----------
    rows : DaskRows
    raw : LinearStatistics
        The rows' statistics (their targets' weighted mean and scatter).
    normalize_y : bool
    """

    def __init__(self, rows, raw, normalize_y):
        self.rows = rows
        self.mean, self.std = target_normalization(
            raw.y_mean, raw.yy, raw.weight_sum, normalize_y
        )
        self.n_rows = rows.n_rows
        self.weight_sum = raw.weight_sum

    def __call__(self, kernel, Z, noise_variance, with_inducing, jitters):
        setup = bound_setup(kernel, Z, with_inducing=with_inducing, jitters=jitters)
        if with_inducing:
            return self._two_passes(setup, noise_variance)
        moments = self.rows.reduce(_chunk_bound_moments, setup, self.mean, self.std)
        return moments_evaluation(setup, moments, noise_variance)

    def _two_passes(self, setup, noise_variance):
        """The bound with derivatives in ``Z``: the sums, then the gradient's sweep."""
        sums = self.rows.reduce(_chunk_bound_sums, setup, self.mean, self.std)
        posterior, partial, (theta, d_Z) = bound_partials(setup, sums, noise_variance)
        parts = self.rows.reduce(
            _chunk_gradient, setup, self.mean, self.std, partial, noise_variance
        )
        gradient = np.append(theta + parts[0], float(noise_variance) * partial.d_s2)
        return BoundEvaluation(posterior.bound, gradient, d_Z + parts[1])


def _choose_model(estimator, rows, inducing_points):
    """Set the estimator's model for a fit: one pass for the targets' statistics
    (and the sample, when inducing points are chosen), then the optimiser's."""
    size = seed = None
    if inducing_points is None:
        size = sample_size(estimator.inducing_points)
        seed = int(check_random_state(estimator.random_state).randint(2**31 - 1))
    first = rows.reduce(_chunk_first, size, seed)
    raw, sample = first if size is not None else (first, None)
    raw.check_magnitude("these rows")
    if sample is not None:
        order = np.argsort(-sample.keys, kind="stable")
        inducing_points = select_inducing_points(
            sample.rows[order],
            sample.weights[order],
            int(estimator.inducing_points),
            estimator.random_state,
        )
    bound = None
    if estimator.optimizer is not None:
        bound = ChunkedBound(rows, raw, estimator.normalize_y)
    estimator._choose_model(inducing_points, bound)


def _given_inducing_points(estimator, rows):
    """The inducing points of a fit when they are not chosen from the rows, else None."""
    refit = rows.options.get("reoptimize")
    if getattr(refit, "inducing_points", None) is not None:
        return refit.inducing_points
    if isinstance(estimator.inducing_points, Integral):
        return None
    return resolve_inducing_points(estimator, np.empty((0, rows.n_features)), None)


def sparse_gp_update(estimator, rows, *, sign, reset):
    """``_update`` of a :class:`~sklunlearn.gaussian_process.SparseGPRegressor`
    for rows on a cluster.

    A fit at fixed hyperparameters with given inducing points, a
    ``partial_fit`` and a ``partial_unfit`` are one pass: each chunk's
    statistics (and, when forgetting, which inducing points equal one of its
    rows) summed in a tree. A fit that chooses inducing points or learns the
    hyperparameters first makes one pass for the targets' statistics and the
    sample, then one per evaluation of the bound (two when it learns the
    inducing locations too).

    Parameters
    ----------
    estimator : SparseGPRegressor
    rows : DaskRows
    sign : float
        +1 to learn, -1 to forget.
    reset : bool
        Whether this is a fit.

    Returns
    -------
    outcome : UpdateOutcome
    """
    if reset:
        inducing_points = _given_inducing_points(estimator, rows)
        if inducing_points is None or estimator.optimizer is not None:
            _choose_model(estimator, rows, inducing_points)
        else:
            estimator._choose_model(inducing_points, None)
    Z = estimator.inducing_points_
    raw, batch, hits = rows.reduce(
        _chunk_update, estimator.kernel_, Z, estimator._inducing_factor, sign < 0
    )
    raw.check_magnitude("these rows")
    # The inducing points equal to a forgotten row stand for those rows in the check.
    forgotten = Z[np.asarray(hits) > 0] if sign < 0 else None
    return estimator._apply(batch, sign, reset, forgotten)
