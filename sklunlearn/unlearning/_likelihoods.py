"""Per-row likelihoods ``p(y | f)`` of a latent predictor value ``f``.

A likelihood gives, for each row, the value ``log p(y | f)``, its first
derivative in ``f`` and its curvature ``-d^2 log p / df^2`` (non-negative for
the log-concave likelihoods here), and their expectations under a Gaussian
``f`` (Gauss-Hermite quadrature). It knows nothing of how ``f`` is computed:
the predictor (:mod:`._predictors`) turns these per-row numbers into gradients
and curvature over the parameters. A new likelihood is one subclass of
:class:`Likelihood` with :meth:`~Likelihood.row_terms`.

Expectations use Gauss-Hermite quadrature where ``f`` spreads little, and the
trapezoid rule where it spreads more than ``WIDE_SPREAD`` (nearly separable rows
far from a boundary, under a weak prior). A Gauss-Hermite rule of fixed size
loses accuracy as the spread grows past the distance of the integrand's nearest
complex singularity from the real axis (``pi`` for the logistic's poles at
``+-i pi``); the trapezoid rule's error for an integrand analytic in the strip
``|Im f| < pi`` is ``O(exp(-2 pi^2 / step))`` whatever the spread (Trefethen &
Weideman 2014, Sec. 5), so ``E[g]`` and ``E[c]`` stay the derivatives of
``E[log p]`` (Stein's lemma) that a variational fixed point needs.
"""

from functools import lru_cache

import numpy as np
from scipy.special import expit, log_expit

from .._numba import expected_logistic_terms, logistic_terms

__all__ = [
    "BernoulliLogit",
    "GaussianNoise",
    "Likelihood",
    "gauss_hermite",
    "trapezoid_rule",
]

# Rows whose f spreads more than WIDE_SPREAD use the trapezoid rule with this step in
# f (discretisation error about exp(-2 pi^2 / step) for the logistic, below
# rounding) out to this many standard deviations (the Gaussian's mass beyond is
# below 1e-18).
WIDE_SPREAD = 1.0
TRAPEZOID_STEP = 0.5
TRAPEZOID_HALF_WIDTH = 9.0
# Row-by-node evaluations per block of the generic expectations (bounded temporaries).
_BLOCK_EVALUATIONS = 1 << 18


@lru_cache(maxsize=8)
def gauss_hermite(n_points):
    """Nodes and weights for ``E[h(z)]``, ``z ~ N(0, 1)`` (probabilists' rule)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    nodes.setflags(write=False)
    weights = weights / np.sqrt(2.0 * np.pi)
    weights.setflags(write=False)
    return nodes, weights


@lru_cache(maxsize=16)
def trapezoid_rule(octave):
    """Trapezoid nodes and weights for ``E[h(z)]``, ``z ~ N(0, 1)``.

    For the rows whose ``f`` spreads up to ``WIDE_SPREAD 2^octave``: the step in
    ``z`` is ``TRAPEZOID_STEP / (WIDE_SPREAD 2^octave)``, at most
    ``TRAPEZOID_STEP`` in ``f``, and the nodes reach ``+-TRAPEZOID_HALF_WIDTH``.
    """
    step = TRAPEZOID_STEP / WIDE_SPREAD / 2.0**octave
    half = int(np.ceil(TRAPEZOID_HALF_WIDTH / step))
    nodes = step * np.arange(-half, half + 1)
    weights = step * np.exp(-0.5 * nodes * nodes) / np.sqrt(2.0 * np.pi)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _by_spread(expect, mean, variance, y, n_quadrature):
    """``expect(mean, variance, y, nodes, weights)`` with each row's rule.

    Gauss-Hermite with ``n_quadrature`` points for rows whose ``f`` spreads at
    most ``WIDE_SPREAD``, else :func:`trapezoid_rule` of the spread's octave.
    """
    spread = np.sqrt(np.maximum(variance, 0.0))
    wide = spread > WIDE_SPREAD
    if not wide.any():
        return expect(mean, variance, y, *gauss_hermite(n_quadrature))
    terms = np.empty((3, mean.shape[0]))
    narrow = ~wide
    if narrow.any():
        terms[:, narrow] = expect(
            mean[narrow], variance[narrow], y[narrow], *gauss_hermite(n_quadrature)
        )
    rows = np.flatnonzero(wide)
    octaves = np.ceil(np.log2(spread[rows] / WIDE_SPREAD)).astype(np.intp)
    for octave in np.unique(octaves):
        chosen = rows[octaves == octave]
        terms[:, chosen] = expect(
            mean[chosen], variance[chosen], y[chosen], *trapezoid_rule(int(octave))
        )
    return terms[0], terms[1], terms[2]


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

        Gauss-Hermite quadrature with ``n_quadrature`` points, the trapezoid
        rule for rows whose ``f`` spreads more than ``WIDE_SPREAD`` (see the
        module). By Stein's lemma ``E[g]`` and ``E[c]`` are the derivatives of
        ``E[log p]`` in the mean (and ``-2 x`` its derivative in the variance).

        Returns
        -------
        value, gradient, curvature : ndarrays of shape (n,)
        """
        return _by_spread(self._expected_with, mean, variance, y, self.n_quadrature)

    def _expected_with(self, mean, variance, y, nodes, weights):
        """The expectations with the rule ``(nodes, weights)`` in ``z ~ N(0, 1)``."""
        terms = np.empty((3, mean.shape[0]))
        spread = np.sqrt(np.maximum(variance, 0.0))
        block = max(1, _BLOCK_EVALUATIONS // nodes.shape[0])
        for start in range(0, mean.shape[0], block):
            rows = slice(start, start + block)
            f = mean[rows, None] + spread[rows, None] * nodes
            for k, term in enumerate(self.row_terms(f, y[rows, None])):
                terms[k, rows] = term @ weights
        return terms[0], terms[1], terms[2]


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

    def _expected_with(self, mean, variance, y, nodes, weights):
        """The expectations with the rule ``(nodes, weights)``, by the Numba kernel."""
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
