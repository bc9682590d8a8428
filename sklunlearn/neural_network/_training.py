"""MAP training of the network: the objective, L-BFGS and Adam, the noise update.

The negative log joint of weighted rows under a Gaussian prior
``N(m0, Lambda0^-1)`` and Gaussian noise of precision ``beta`` is, without
constants,

    E(theta) = beta / 2 sum_i w_i (y_i - f_i)^2 + 1/2 (theta - m0)' Lambda0 (theta - m0),

minimised here divided by ``W = sum_i w_i`` (a per-row scale, as
``MLPRegressor``'s loss, so ``tol`` means the same at any ``n``).
"""

from typing import NamedTuple

import numpy as np
from scipy import optimize

from ..unlearning._diagonal import diagonal_gauss_newton
from ..utils._blas import one_blas_thread
from ._last_layer import feature_statistics

__all__ = [
    "MAPResult",
    "StartingPoint",
    "TrainingRows",
    "glorot_weights",
    "lbfgs_fit",
    "map_fit",
    "mackay_alpha",
    "mackay_noise",
]

# Adam (Kingma & Ba 2015) constants, as scikit-learn's MLP uses them.
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-8
# scipy's default relative-decrease tolerance of L-BFGS-B.
_SCIPY_FTOL = 2.220446049250313e-09
# Adam stops after this many epochs without an improvement of tol (MLPRegressor's).
_N_ITER_NO_CHANGE = 10


class StartingPoint(NamedTuple):
    """The prior of a MAP fit: ``mean`` (p,) and ``precision``.

    ``precision`` is a float, a (p,) vector (a diagonal precision) or a
    (p, p) matrix.
    """

    mean: np.ndarray
    precision: object

    def penalty(self, theta):
        """``(1/2 d' Lambda0 d, Lambda0 d)`` with ``d = theta - m0``."""
        d = theta - self.mean
        product = self.precision * d if np.ndim(self.precision) < 2 else self.precision @ d
        return 0.5 * float(d @ product), product


class MAPResult(NamedTuple):
    """A MAP fit: ``theta``, ``loss`` (``E / W`` at it), ``n_iter``, ``converged``,
    and ``gradient``, that of ``E / W`` at ``theta`` (None when not evaluated)."""

    theta: np.ndarray
    loss: float
    n_iter: int
    converged: bool
    gradient: np.ndarray = None


class TrainingRows:
    """The rows of one learn call in memory, read through the sums training needs.

    :class:`~sklunlearn.neural_network.BayesianMLPRegressor` learns from rows
    only through these members, each a sum over rows; its twin for rows on a
    dask cluster, ``sklunlearn._dask._mlp.ChunkedRows``, computes each as one
    pass over the chunks.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_samples,)
    """

    def __init__(self, X, y, weights):
        self.X, self.y, self.weights = X, y, weights

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def n_rows(self):
        """Rows with a non-zero weight."""
        return int(np.count_nonzero(self.weights))

    @property
    def weight(self):
        """``W = sum_i w_i``."""
        return float(self.weights.sum())

    def target_moments(self):
        """The weighted mean and variance of the targets."""
        total = self.weight
        mean = float(self.weights @ self.y) / total
        return mean, float(self.weights @ (self.y - mean) ** 2) / total

    def minimise(self, predictor, beta, prior, theta, *, solver, options, rng):
        """:func:`map_fit` of the rows."""
        return map_fit(
            predictor, self.X, self.y, self.weights, beta, prior, theta, solver=solver,
            options=options, rng=rng,
        )  # fmt: skip

    def curvature(self, predictor, theta, beta, *, kind, with_error=False):
        """The rows' curvature at ``theta``, and ``sum_i w_i (y_i - f_i)^2``.

        The curvature of ``kind`` (the estimator's ``curvature``) is
        ``J' diag(beta w) J`` (p x p) for ``'ggn'``, its diagonal (p,) for
        ``'diag'``, or the output layer's feature statistics for
        ``'last_layer'``; the error is None without ``with_error``.
        """
        X, y, weights = self.X, self.y, self.weights
        if kind == "last_layer":
            statistics = feature_statistics(predictor, X, y, weights, theta)
        elif kind == "diag":
            statistics = diagonal_gauss_newton(predictor, X, theta, beta * weights)
        else:
            statistics = predictor.gauss_newton(X, theta, beta * weights)
        if not with_error:
            return statistics, None
        residual = y - predictor.value(X, theta)
        return statistics, float(weights @ residual**2)


def glorot_weights(predictor, activation, random_state):
    """Glorot-uniform weights and zero-mean uniform biases (as MLPRegressor starts).

    Bound ``sqrt(6 / (fan_in + fan_out))`` (``sqrt(2 / ...)`` for the logistic).
    """
    factor = 2.0 if activation == "logistic" else 6.0
    theta = np.empty(predictor.n_weights)
    for (w, _, end), n_in, n_out in zip(
        predictor.offsets,
        predictor.layer_sizes[:-1],
        predictor.layer_sizes[1:],
        strict=True,
    ):
        bound = np.sqrt(factor / (n_in + n_out))
        theta[w:end] = random_state.uniform(-bound, bound, end - w)
    return theta


def _objective(predictor, X, y, weights, beta, prior, scale):
    """``theta -> (E(theta) * scale, gradient)`` on the given rows."""

    # the same rows at every call: the passes' buffers are allocated once, here
    squared_error = predictor.squared_error(X, y, weights)

    def objective(theta):
        error, gradient = squared_error(theta, beta)
        penalty, penalty_gradient = prior.penalty(theta)
        value = 0.5 * beta * error + penalty
        gradient += penalty_gradient
        gradient *= scale
        return value * scale, gradient

    return objective


def map_fit(predictor, X, y, weights, beta, prior, theta, *, solver, options, rng):
    """Minimise ``E / W`` from ``theta`` with L-BFGS or Adam.

    ``options``: ``max_iter``, ``tol``, ``verbose`` (print each iteration's
    loss), and for Adam ``batch_size`` and ``learning_rate_init``. ``rng``
    shuffles Adam's minibatches.
    """
    # Each iteration is a few small products: BLAS threads would spend more on
    # synchronisation than they save (many times more on a loaded machine).
    with one_blas_thread():
        return _minimise(predictor, X, y, weights, beta, prior, theta, solver, options, rng)


def _minimise(predictor, X, y, weights, beta, prior, theta, solver, options, rng):
    total = float(weights.sum())
    if solver == "lbfgs":
        objective = _objective(predictor, X, y, weights, beta, prior, 1.0 / total)
        return lbfgs_fit(objective, theta, options)
    return _adam(predictor, X, y, weights, beta, prior, theta, options, rng)


def lbfgs_fit(objective, theta, options):
    """Minimise ``objective`` (``theta -> (value, gradient)``) with L-BFGS-B from ``theta``.

    ``options``: ``max_iter``, ``tol`` and ``verbose``, as for :func:`map_fit`.
    """
    result = optimize.minimize(
        objective,
        theta,
        jac=True,
        method="L-BFGS-B",
        callback=_lbfgs_report() if options.get("verbose") else None,
        # tol on the largest gradient entry (as MLPRegressor), and a relative
        # decrease test no looser than scipy's default that tightens with tol,
        # so that a small tol reaches the mode the Laplace posterior assumes.
        options={
            "maxiter": options["max_iter"],
            "gtol": options["tol"],
            "ftol": min(_SCIPY_FTOL, 1e-4 * options["tol"]),
        },
    )
    # status 1: the iteration or evaluation budget ran out
    return MAPResult(
        result.x, float(result.fun), int(result.nit), result.status != 1, result.jac
    )


def _lbfgs_report():
    """An L-BFGS-B callback printing each iteration's loss (``E / W``)."""
    count = [0]

    def report(intermediate_result):
        count[0] += 1
        print(f"Iteration {count[0]}, loss = {intermediate_result.fun:.8g}")

    return report


def _adam(predictor, X, y, weights, beta, prior, theta, options, rng):
    """Adam on minibatches; each batch's likelihood is scaled up to all ``W``."""
    n = X.shape[0]
    batch = options["batch_size"]
    batch = min(200, n) if batch == "auto" else min(int(batch), n)
    total = float(weights.sum())
    first, second = np.zeros_like(theta), np.zeros_like(theta)
    best, stale, step, epochs, converged = np.inf, 0, 0, 0, False
    while epochs < options["max_iter"] and not converged:
        epochs += 1
        order = rng.permutation(n)
        epoch_loss = 0.0
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            batch_weight = float(weights[rows].sum())
            if batch_weight == 0.0:
                continue
            # likelihood of the batch scaled by W / W_batch, the prior once: E / W
            value, gradient = _batch_objective(
                predictor, X[rows], y[rows], weights[rows], beta, prior, theta, total
            )
            epoch_loss += value * batch_weight / total
            step += 1
            first = _BETA_1 * first + (1 - _BETA_1) * gradient
            second = _BETA_2 * second + (1 - _BETA_2) * gradient**2
            rate = options["learning_rate_init"] * np.sqrt(1 - _BETA_2**step)
            theta = theta - rate / (1 - _BETA_1**step) * first / (
                np.sqrt(second) + _EPSILON
            )
        if epoch_loss > best - options["tol"]:
            stale += 1
        else:
            stale = 0
        if options.get("verbose"):
            print(f"Iteration {epochs}, loss = {epoch_loss:.8g}")
        best = min(best, epoch_loss)
        converged = stale >= _N_ITER_NO_CHANGE
    loss, gradient = _objective(predictor, X, y, weights, beta, prior, 1.0 / total)(theta)
    return MAPResult(theta, float(loss), epochs, converged, gradient)


def _batch_objective(predictor, X, y, weights, beta, prior, theta, total):
    """``E / W`` estimated from one batch (its likelihood scaled by ``W / W_batch``)."""
    batch_weight = float(weights.sum())
    data = _objective(predictor, X, y, weights, beta, StartingPoint(theta, 0.0), 1.0)
    value, gradient = data(theta)
    penalty, penalty_gradient = prior.penalty(theta)
    return (
        value / batch_weight + penalty / total,
        gradient / batch_weight + penalty_gradient / total,
    )


def mackay_alpha(theta, n_effective):
    """MacKay's evidence fixed point for the prior precision (MacKay 1992, section 4).

    ``alpha = gamma / ||theta||^2`` at the MAP ``theta``, ``gamma`` the effective
    number of well-determined parameters. A ``gamma`` at or below zero (no weight
    determined; round-off can take it below) or weights at zero give ``inf``: the
    caller bounds the precision.
    """
    norm = float(theta @ theta)
    if n_effective <= 0.0 or norm == 0.0:
        return np.inf
    return n_effective / norm


def mackay_noise(squared_error, total, n_effective):
    """MacKay's evidence fixed point for the noise precision (MacKay 1992, eq. 4.22).

    ``beta = (W - gamma) / sum_i w_i r_i^2`` from the weighted squared error
    ``sum_i w_i r_i^2``, the total weight ``W`` (the weighted likelihood's count
    of observations) and ``gamma = p - tr(Lambda0 Sigma)``, the effective number
    of well-determined parameters. ``W - gamma`` below one residual degree of
    freedom is raised to one, or to ``W`` when ``W`` is below one: the noise is
    then at most the weighted mean squared error ``sum_i w_i r_i^2 / W``, its
    maximum-likelihood estimate, whatever the scale of the weights. The rows do
    not determine it then, and the caller warns.
    """
    residual_count = max(total - n_effective, min(total, 1.0))
    return residual_count / max(squared_error, np.finfo(float).tiny)
