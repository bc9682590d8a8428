"""Per-row likelihoods ``p(y | f)`` of a latent predictor value ``f``.

A likelihood gives, for each row, the value ``log p(y | f)``, its first
derivative in ``f`` and its curvature ``-d^2 log p / df^2`` (non-negative for
the log-concave likelihoods here), and their expectations under a Gaussian
``f`` (Gauss-Hermite quadrature). It knows nothing of how ``f`` is computed:
the predictor (:mod:`._predictors`) turns these per-row numbers into gradients
and curvature over the parameters. A new likelihood is one subclass of
:class:`Likelihood` with :meth:`~Likelihood.row_terms`.
"""

from functools import lru_cache

import numpy as np
from scipy.special import expit, log_expit

from .._numba import expected_logistic_terms, logistic_terms

__all__ = ["BernoulliLogit", "GaussianNoise", "Likelihood", "gauss_hermite"]


@lru_cache(maxsize=8)
def gauss_hermite(n_points):
    """Nodes and weights for ``E[h(z)]``, ``z ~ N(0, 1)`` (probabilists' rule)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    nodes.setflags(write=False)
    weights = weights / np.sqrt(2.0 * np.pi)
    weights.setflags(write=False)
    return nodes, weights


class Likelihood:
    """Base class: per-row value, derivative and curvature of ``log p(y | f)``.

    Subclasses implement :meth:`row_terms`; :meth:`log_likelihood` and
    :meth:`expected_terms` follow from it. A subclass may also provide
    ``linear_terms(X, y, weights, theta, intercept, with_value, vectors)``, a
    fused kernel for ``f = X @ theta`` returning the summed value, gradient and
    negative Hessian (applied to ``vectors`` when they are given), which the
    linear predictor then uses instead of its row blocks.

    Parameters
    ----------
    n_quadrature : int, default=32
        Gauss-Hermite points for expectations under a Gaussian ``f``.

    Attributes
    ----------
    curvature_lipschitz : float or None
        A bound on ``|dc / df|``, how fast the curvature changes with ``f``
        (None when unknown): the Laplace step's self-check uses it to
        certify small moves without re-evaluating the rows.
    """

    curvature_lipschitz = None

    def __init__(self, n_quadrature=32):
        self.n_quadrature = n_quadrature

    def row_terms(self, f, y):
        """``log p(y | f)``, ``d log p / df`` and ``-d^2 log p / df^2``, elementwise."""
        raise NotImplementedError

    def log_likelihood(self, f, y):
        """``log p(y | f)``, elementwise."""
        return self.row_terms(f, y)[0]

    def expected_terms(self, mean, variance, y):
        """Per-row ``E[log p]``, ``E[g]`` and ``E[c]`` for ``f ~ N(mean, variance)``.

        Gauss-Hermite quadrature with ``n_quadrature`` points. By Stein's
        lemma ``E[g]`` and ``E[c]`` are the derivatives of ``E[log p]`` in the
        mean (and ``-2 x`` its derivative in the variance).

        Returns
        -------
        value, gradient, curvature : ndarrays of shape (n,)
        """
        nodes, weights = gauss_hermite(self.n_quadrature)
        f = mean[:, None] + np.sqrt(np.maximum(variance, 0.0))[:, None] * nodes
        return tuple(term @ weights for term in self.row_terms(f, y[:, None]))


class BernoulliLogit(Likelihood):
    """Bernoulli likelihood with the logistic link, ``p(y = 1 | f) = 1 / (1 + e^-f)``.

    Labels are ``0`` and ``1``. Summed terms of a linear predictor use the
    fused row-block Numba kernel, expectations a one-pass Numba kernel.

    Parameters
    ----------
    n_quadrature : int, default=32
        Gauss-Hermite points for expectations under a Gaussian ``f``.
    """

    # The fused kernel of f = X @ theta (with an implicit intercept column):
    # the data are never copied.
    linear_terms = staticmethod(logistic_terms)

    # max |d (p (1 - p)) / df| = max |p (1 - p) (1 - 2 p)|, at p = (3 -+ sqrt(3)) / 6.
    curvature_lipschitz = float(np.sqrt(3.0) / 18.0)

    def log_likelihood(self, f, y):
        """``log p(y | f) = y f - log(1 + e^f)``, elementwise."""
        return log_expit(np.where(y > 0.5, f, -f))

    def row_terms(self, f, y):
        """Value, ``y - sigmoid(f)`` and ``p (1 - p)`` (one sigmoid evaluation)."""
        p = expit(f)
        return self.log_likelihood(f, y), y - p, p * (1.0 - p)

    def expected_terms(self, mean, variance, y):
        """Per-row ``E[log p]``, ``E[g]`` and ``E[c]`` for ``f ~ N(mean, variance)``."""
        nodes, weights = gauss_hermite(self.n_quadrature)
        return expected_logistic_terms(mean, variance, y, nodes, weights)


class GaussianNoise(Likelihood):
    """Gaussian likelihood ``y ~ N(f, 1 / noise_precision)``.

    Parameters
    ----------
    noise_precision : float, default=1.0
        Inverse noise variance ``beta``.
    n_quadrature : int, default=32
        Unused by the closed-form expectations; kept for the common interface.
    """

    # The curvature beta does not depend on f.
    curvature_lipschitz = 0.0

    def __init__(self, noise_precision=1.0, n_quadrature=32):
        super().__init__(n_quadrature)
        self.noise_precision = noise_precision

    def row_terms(self, f, y):
        """``log N(y; f, 1/beta)``, ``beta (y - f)`` and ``beta``, elementwise."""
        beta = self.noise_precision
        residual = y - f
        value = 0.5 * np.log(beta / (2.0 * np.pi)) - 0.5 * beta * residual**2
        return value, beta * residual, np.full(np.shape(residual), float(beta))

    def expected_terms(self, mean, variance, y):
        """Closed form: ``E[log p]`` adds ``-beta var / 2``; the derivatives are linear."""
        value, gradient, curvature = self.row_terms(mean, y)
        return value - 0.5 * self.noise_precision * variance, gradient, curvature
