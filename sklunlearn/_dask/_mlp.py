"""The Bayesian network regressor on rows held on a dask cluster.

:class:`~sklunlearn.neural_network.BayesianMLPRegressor` learns from rows
only through a few sums over them, the members of its
:class:`~sklunlearn.neural_network._training.TrainingRows`: the objective's
data term ``beta / 2 sum_i w_i (y_i - f_i)^2`` with its gradient, the
curvature (the Gauss-Newton matrix ``J' diag(beta w) J``, its diagonal, or
the output layer's feature statistics) with the weighted squared error, and the targets'
weighted moments. :class:`ChunkedRows` computes each as one pass: the
in-memory code on every chunk, on the worker that holds it, added in a tree.
L-BFGS-B, MacKay's noise update and the posterior's factorisation then run
unchanged on the client, over the network's p weights.

A forget request's rows are gathered to the client (validated and
fingerprinted per chunk on the way) and forgotten by the in-memory code: a
deletion request is small, and every forgetting method of the registry reads
its rows as arrays.
"""

import numpy as np

from ..neural_network._training import (
    StartingPoint,
    TrainingRows,
    _objective,
    lbfgs_fit,
)
from ..utils._blas import one_blas_thread

__all__ = ["ChunkedRows", "mlp_update"]


def _chunk_objective(X, y, weights, predictor, beta, theta):
    """The chunk's data term and its gradient: the in-memory objective without a prior."""
    data_only = StartingPoint(theta, 0.0)  # a prior of zero precision adds nothing
    # The in-memory objective runs with one BLAS thread: so does each chunk's.
    with one_blas_thread():
        return _objective(predictor, X, y, weights, beta, data_only, 1.0)(theta)


def _chunk_curvature(X, y, weights, predictor, theta, beta, kind, with_error):
    """The chunk's curvature, with its squared error when ``with_error`` (else alone)."""
    curvature, squared_error = TrainingRows(X, y, weights).curvature(
        predictor, theta, beta, kind=kind, with_error=with_error
    )
    return (curvature, squared_error) if with_error else curvature


def _chunk_target_sum(X, y, weights):
    return float(weights @ y)


def _chunk_target_scatter(X, y, weights, mean):
    return float(weights @ (y - mean) ** 2)


class _ChunkedObjective:
    """``theta -> (E / W, gradient)`` of the rows on a cluster: one pass per call.

    The chunks give the data term; the prior's penalty is added on the client,
    in the order the in-memory objective adds it.
    """

    def __init__(self, rows, predictor, beta, prior):
        self.rows, self.predictor, self.beta, self.prior = rows, predictor, beta, prior

    def __call__(self, theta):
        value, gradient = self.rows.reduce(
            _chunk_objective, self.predictor, self.beta, np.asarray(theta)
        )
        penalty, penalty_gradient = self.prior.penalty(theta)
        scale = 1.0 / self.rows.weight
        return (value + penalty) * scale, (gradient + penalty_gradient) * scale


class ChunkedRows:
    """The twin of :class:`~sklunlearn.neural_network._training.TrainingRows` for rows
    on a dask cluster: each member is one pass over the chunks.

    Parameters
    ----------
    rows : DaskRows
        The rows of the call; their ``y`` are the validated float targets.
    """

    # Only the variational posterior reads the rows themselves; it is refused here.
    X = y = weights = None

    def __init__(self, rows):
        self.rows = rows
        self.n_features = rows.n_features
        self._target_sum = None

    def _first_pass(self):
        # The targets' weighted sum: the first pass, which also counts the rows.
        if self._target_sum is None:
            self._target_sum = self.rows.reduce(_chunk_target_sum)

    @property
    def n_rows(self):
        """Rows with a non-zero weight."""
        if self.rows.n_rows is None:
            self._first_pass()
        return self.rows.n_rows

    @property
    def weight(self):
        """``W = sum_i w_i``."""
        if self.rows.weight is None:
            self._first_pass()
        return self.rows.weight

    def target_moments(self):
        """The weighted mean and variance of the targets: two passes over ``y``."""
        self._first_pass()
        total = self.rows.weight
        mean = self._target_sum / total
        return mean, self.rows.reduce(_chunk_target_scatter, mean) / total

    def minimise(self, predictor, beta, prior, theta, *, solver, options, rng):
        """L-BFGS-B on the client, each evaluation one pass (``solver='lbfgs'`` only)."""
        objective = _ChunkedObjective(self.rows, predictor, beta, prior)
        return lbfgs_fit(objective, theta, options)

    def curvature(self, predictor, theta, beta, *, kind, with_error=False):
        """:meth:`TrainingRows.curvature` summed over the chunks: one pass."""
        parts = self.rows.reduce(
            _chunk_curvature, predictor, np.asarray(theta), beta, kind, with_error
        )
        return parts if with_error else (parts, None)


def _check_supported(estimator, reset):
    """Refuse, before any pass, what rows on a cluster cannot do faithfully.

    Adam's minibatches are shuffled across all rows by ``random_state`` and the
    variational posterior reads the rows per iteration; a fit, and a
    ``partial_fit`` of ``curvature='ggn'`` (whose MAP and posterior use them),
    need ``solver='lbfgs'`` and ``inference='laplace'``.
    """
    if not reset and estimator.curvature == "last_layer":
        return  # adding rows to the output layer is a sum of their statistics
    unsupported = []
    if estimator.solver != "lbfgs":
        unsupported.append(f"solver={estimator.solver!r}")
    if estimator.inference != "laplace":
        unsupported.append(f"inference={estimator.inference!r}")
    if unsupported:
        raise NotImplementedError(
            "Rows in a dask collection train the network with solver='lbfgs' and "
            f"inference='laplace'; got {', '.join(unsupported)}. Set solver='lbfgs' "
            "(and inference='laplace'), or compute the rows (X.compute())."
        )


def mlp_update(estimator, rows, *, sign, reset):
    """``_update`` of a :class:`~sklunlearn.neural_network.BayesianMLPRegressor` for
    rows on a cluster.

    Learning runs the estimator's own training on :class:`ChunkedRows`: one
    pass per evaluation of the objective and its gradient (L-BFGS-B on the
    client), one per curvature (and noise update), and, when the noise is
    learned, two over the targets first. Forgetting gathers the request's rows
    to the client in one pass (each chunk validated and fingerprinted on its
    worker) and forgets them in memory, with any registered method.

    Parameters
    ----------
    estimator : BayesianMLPRegressor
    rows : DaskRows
    sign : float
        +1 to learn, -1 to forget.
    reset : bool
        Whether this is a fit.

    Returns
    -------
    outcome : UpdateOutcome
    """
    if sign < 0:
        X, y, weights = rows.gather()
        return estimator._update(X, y, weights, sign=-1.0, reset=False)
    _check_supported(estimator, reset)
    return estimator._learn_rows(ChunkedRows(rows), reset)
