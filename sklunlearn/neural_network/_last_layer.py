"""The output layer's conjugate posterior given the hidden features (exact forgetting).

With the hidden layers fixed, ``f = phi(x)' v`` is linear in the output
layer's weights and bias ``v`` (``phi(x) = [h_L(x), 1]``), so with Gaussian
noise of precision ``beta`` and the prior ``N(0, alpha^-1 I)`` the posterior
is Gaussian (Bishop 2006, eqs. 3.53-3.54):

    Lambda = alpha I + beta Phi' W Phi,   m = beta Lambda^-1 Phi' W y.

``Phi' W Phi`` and ``Phi' W y`` are sums over rows, kept as the same
:class:`~sklunlearn.linear_model._sufficient_statistics.LinearStatistics`
that :class:`~sklunlearn.linear_model.BayesianLinearRegression` merges with
``+`` and ``-``: forgetting subtracts the forgotten rows' statistics, and the
posterior equals a refit of the output layer on the remaining rows' features.
"""

import numpy as np

from ..linear_model._sufficient_statistics import UNIT_ROUNDOFF, LinearStatistics
from ..posterior import GaussianPosterior

__all__ = ["feature_statistics", "features", "output_posterior", "relative_error"]


def features(predictor, X, theta):
    """``[h_L(x), 1]`` of the rows, shape (n, n_hidden_last + 1)."""
    inputs, _ = predictor.forward(X, theta)
    return np.hstack([inputs[-1], np.ones((X.shape[0], 1))])


def feature_statistics(predictor, X, y, weights, theta):
    """:class:`LinearStatistics` of the rows' features and targets."""
    return LinearStatistics.from_data(features(predictor, X, theta), y, weights)


def output_posterior(statistics, alpha, beta):
    """``N(m, Lambda^-1)`` of the output layer (Bishop 2006, eqs. 3.53-3.54)."""
    gram, target, _ = statistics.gram(fit_intercept=False)
    precision = beta * gram
    precision.flat[:: precision.shape[0] + 1] += alpha
    posterior = GaussianPosterior.from_precision(np.zeros(gram.shape[0]), precision)
    return posterior.with_mean(posterior.solve(beta * target))


def relative_error(statistics, alpha, beta, refit=False):
    """Estimated relative round-off error of the output layer's posterior.

    The worst of two ratios, from the statistics' round-off record (``refit``:
    the record a refit on the same rows would have), as
    :meth:`~sklunlearn.linear_model.BayesianLinearRegression._estimated_error`
    divides each error by the size of what it determines:

    - a diagonal entry of the precision: its absolute error over its size
      ``alpha / beta + (Phi' W Phi)_jj``;
    - the mean ``m = beta Lambda^-1 Phi' W y``: the error of ``(Phi' W y)_j``,
      at most ``sqrt(e_jj e_yy)`` (Cauchy-Schwarz on the absorbed terms, with
      ``e`` the errors of the diagonal of ``Phi' W Phi`` and of ``y' W y``),
      moves ``m_j`` by that over ``alpha / beta + (Phi' W Phi)_jj`` (the
      diagonal of ``Lambda / beta``), against the largest ``|m_j|`` so
      estimated. A forgotten row of large target cancels digits here and
      nowhere in the precision.

    A first-order estimate with ``Lambda`` replaced by its diagonal, not a bound.
    """
    round_off = statistics.refit_round_off() if refit else statistics.round_off
    gram_error, yty_error = statistics.gram_round_off(False, round_off)
    gram, target, _ = statistics.gram(fit_intercept=False)
    size = np.clip(np.diag(gram), 0.0, None) + alpha / beta
    target_error = np.sqrt(gram_error * yty_error)
    mean_size = np.max(np.abs(target) / size, initial=0.0)
    ratios = (
        np.max(gram_error / size, initial=0.0),
        np.max(target_error / size, initial=0.0) / max(mean_size, np.finfo(float).tiny),
    )
    return float(max(max(ratios), UNIT_ROUNDOFF))
