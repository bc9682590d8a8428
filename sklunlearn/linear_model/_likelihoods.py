"""Per-row likelihoods of a latent linear predictor ``f = x' theta``.

A likelihood gives, for each row, the value ``log p(y | f)``, its first
derivative in ``f`` and its curvature ``-d^2 log p / df^2`` (non-negative for
the log-concave likelihoods used here). Everything a forgetting method needs
follows from these three and the design matrix: the gradient over the
parameters is ``X' (w g)`` and the negative Hessian ``X' diag(w c) X``. The
forgetting functions of :mod:`sklunlearn.unlearning` are written against this
interface only, so logistic regression, the sparse GP classifier (logistic
regression on whitened inducing-point features) and later models plug in.
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.special import expit, log_expit

from .._numba import expected_logistic_terms, logistic_terms, weighted_gram

__all__ = ["BernoulliLogit", "DesignTerms", "gauss_hermite"]


class DesignTerms(NamedTuple):
    """Summed likelihood terms of weighted rows at one parameter value.

    Fields
    ------
    log_likelihood : float
        ``sum_i w_i log p(y_i | f_i)``.
    gradient : ndarray of shape (d,)
        ``X' (w g)``, the gradient of ``log_likelihood`` in ``theta``.
    hessian : ndarray of shape (d, d)
        ``X' diag(w c) X``, the negative Hessian (positive semi-definite).
    """

    log_likelihood: float
    gradient: np.ndarray
    hessian: np.ndarray


@lru_cache(maxsize=8)
def gauss_hermite(n_points):
    """Nodes and weights for ``E[h(z)]``, ``z ~ N(0, 1)`` (probabilists' rule)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    nodes.setflags(write=False)
    weights = weights / np.sqrt(2.0 * np.pi)
    weights.setflags(write=False)
    return nodes, weights


class BernoulliLogit:
    """Bernoulli likelihood with the logistic link, ``p(y = 1 | f) = 1 / (1 + e^-f)``.

    Labels are ``0`` and ``1``. ``design_terms`` uses the fused row-block
    Numba kernel.

    Parameters
    ----------
    n_quadrature : int, default=32
        Gauss-Hermite points for expectations under a Gaussian ``f``.
    """

    def __init__(self, n_quadrature=32):
        self.n_quadrature = n_quadrature

    # ------------------------------------------------------------- per row
    def log_likelihood(self, f, y):
        """``log p(y | f) = y f - log(1 + e^f)``, elementwise."""
        return log_expit(np.where(y > 0.5, f, -f))

    def gradient(self, f, y):
        """``d log p / df = y - sigmoid(f)``, elementwise."""
        return y - expit(f)

    def curvature(self, f, y):
        """``-d^2 log p / df^2 = p (1 - p)``, elementwise (independent of ``y``)."""
        p = expit(f)
        return p * (1.0 - p)

    def row_terms(self, f, y):
        """Value, gradient and curvature together (one sigmoid evaluation)."""
        p = expit(f)
        return self.log_likelihood(f, y), y - p, p * (1.0 - p)

    def expected_terms(self, mean, variance, y):
        """Per-row ``E[log p]``, ``E[g]`` and ``E[c]`` for ``f ~ N(mean, variance)``.

        Gauss-Hermite quadrature with ``n_quadrature`` points. By Stein's lemma
        ``E[g]`` and ``E[c]`` are the derivatives of ``E[log p]`` in the
        mean (and ``-2 x`` its derivative in the variance).

        Returns
        -------
        value, gradient, curvature : ndarrays of shape (n,)
        """
        nodes, weights = gauss_hermite(self.n_quadrature)
        return expected_logistic_terms(mean, variance, y, nodes, weights)

    # ----------------------------------------------------------- summed
    def design_terms(self, X, y, weights, theta, with_value=True):
        """:class:`DesignTerms` of the rows ``X`` at ``theta`` (fused kernel).

        ``with_value=False`` skips the log-likelihood (NaN): the one-step
        divide-out needs only the gradient and the Hessian.
        """
        return DesignTerms(*logistic_terms(X, y, weights, theta, with_value=with_value))

    def with_implicit_intercept(self):
        """This likelihood on ``[X, 1]`` with ``X`` given without the ones column.

        Only ``design_terms`` (all that Newton's method needs) is provided; the
        fused kernel adds the intercept itself, so fitting never copies the data.
        """
        return _ImplicitIntercept()

    def expected_design_terms(self, X, y, weights, mean, variance):
        """:class:`DesignTerms` averaged over ``f_i ~ N(mean_i, variance_i)``."""
        value, gradient, curvature = self.expected_terms(mean, variance, y)
        return DesignTerms(
            float(weights @ value),
            X.T @ (weights * gradient),
            weighted_gram(X, weights * curvature),
        )


class _ImplicitIntercept:
    """``design_terms`` of :class:`BernoulliLogit` on ``[X, 1]``, from ``X`` alone."""

    def design_terms(self, X, y, weights, theta, with_value=True):
        return DesignTerms(
            *logistic_terms(X, y, weights, theta, intercept=True, with_value=with_value)
        )
