"""A model is a predictor, a likelihood and a prior; its summed likelihood terms.

``Model(predictor, likelihood, prior)`` is everything a learning or
forgetting method knows about an estimator's model: the rows' log-likelihood
``l(theta) = sum_i w_i log p(y_i | g(x_i; theta))``, its gradient ``J'(w g)``
and its Gauss-Newton curvature ``J' diag(w c) J`` (the negative Hessian for a
predictor linear in ``theta``), at one ``theta``, averaged under a Gaussian,
or over fixed draws.
"""

from dataclasses import dataclass

import numpy as np

from ._predictors import row_blocks

__all__ = ["LikelihoodTerms", "Model"]


@dataclass(frozen=True)
class LikelihoodTerms:
    """Summed likelihood terms of weighted rows (at one ``theta``, or expected).

    Terms of disjoint row sets add: ``a + b``, ``a - b`` and ``sum(parts)``
    (chunked or distributed reductions) give the terms of the union or the
    difference.

    Attributes
    ----------
    log_likelihood : float
        ``sum_i w_i log p(y_i | f_i)`` (NaN when not computed).
    gradient : ndarray of shape (p,)
        ``J' (w g)``, the gradient of ``log_likelihood`` in ``theta``.
    hessian : ndarray of shape (p, p)
        ``J' diag(w c) J``, the (Gauss-Newton) negative Hessian.
    """

    log_likelihood: float
    gradient: np.ndarray
    hessian: np.ndarray

    def __add__(self, other):
        if not isinstance(other, LikelihoodTerms):
            return NotImplemented
        return LikelihoodTerms(
            self.log_likelihood + other.log_likelihood,
            self.gradient + other.gradient,
            self.hessian + other.hessian,
        )

    def __radd__(self, other):
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def __sub__(self, other):
        if not isinstance(other, LikelihoodTerms):
            return NotImplemented
        return LikelihoodTerms(
            self.log_likelihood - other.log_likelihood,
            self.gradient - other.gradient,
            self.hessian - other.hessian,
        )


@dataclass(frozen=True)
class Model:
    """Predictor x likelihood x prior.

    Attributes
    ----------
    predictor : Predictor
        ``f = g(x; theta)`` and its Jacobian products.
    likelihood : Likelihood
        Per-row ``log p(y | f)`` and its derivatives.
    prior : GaussianPrior
        The prior; its precision floors every forgotten precision.
    """

    predictor: object
    likelihood: object
    prior: object

    def terms(self, X, y, weights, theta, *, with_value=True, vectors=None):
        """:class:`LikelihoodTerms` of the rows at ``theta``.

        ``with_value=False`` may skip the log-likelihood (NaN): a one-step
        divide-out needs only the derivatives. With ``vectors`` of shape
        (p, s), ``hessian`` is the curvature applied to them, ``J' diag(w c)
        J vectors`` of shape (p, s), computed in ``O(n p s)`` without forming
        the (p, p) curvature.
        """
        fused = self.predictor.fused_terms(
            self.likelihood, X, y, weights, theta, with_value, vectors=vectors
        )
        if fused is not None:
            return LikelihoodTerms(*fused)
        value, gradient, curvature = self.likelihood.row_terms(
            self.predictor.value(X, theta), y
        )
        return self._summed(X, theta, weights, value, gradient, curvature, vectors)

    def _summed(self, X, theta, weights, value, gradient, curvature, vectors=None):
        """:class:`LikelihoodTerms` from per-row terms in ``f``: the weighted sum of
        the values, and the gradient and Gauss-Newton curvature through ``J`` at
        ``theta`` (the curvature only applied to ``vectors`` when given)."""
        curvature = weights * curvature
        return LikelihoodTerms(
            float(weights @ value),
            self.predictor.vjp(X, theta, weights * gradient),
            self.predictor.gauss_newton(X, theta, curvature)
            if vectors is None
            else self.predictor.gauss_newton_product(X, theta, curvature, vectors),
        )

    def expected_terms(self, X, y, weights, posterior):
        """:class:`LikelihoodTerms` averaged over ``theta ~ posterior``.

        Each row's ``f`` is Gaussian with the predictor's (linearised) moments,
        so the expectations are one-dimensional (Gauss-Hermite); the products
        use ``J`` at the posterior mean.
        """
        mean, variance = self.predictor.moments(X, posterior)
        value, gradient, curvature = self.likelihood.expected_terms(mean, variance, y)
        return self._summed(X, posterior.mean, weights, value, gradient, curvature)

    def sampled_terms(self, X, y, weights, thetas, sample_weights):
        """:class:`LikelihoodTerms` averaged over draws ``thetas`` (p, S).

        ``sample_weights`` (S,) sum to at most one. For a predictor linear in
        ``theta`` the Jacobian is the same for every draw, so the per-row
        derivatives are averaged first; otherwise each draw's terms are summed.
        """
        p = thetas.shape[0]
        if not self.predictor.linear_in_parameters:
            zero = LikelihoodTerms(0.0, np.zeros(p), np.zeros((p, p)))
            return sum(
                (
                    LikelihoodTerms(*(a * term for term in self._at(X, y, weights, theta)))
                    for theta, a in zip(thetas.T, sample_weights, strict=True)
                ),
                start=zero,
            )
        f = self.predictor.value(X, thetas)  # (k, S)
        value, gradient, curvature = (
            term @ sample_weights for term in self.likelihood.row_terms(f, y[:, None])
        )
        theta = np.zeros(p)  # J does not depend on theta
        return self._summed(X, theta, weights, value, gradient, curvature)

    def _at(self, X, y, weights, theta):
        terms = self.terms(X, y, weights, theta)
        return terms.log_likelihood, terms.gradient, terms.hessian

    def row_gradients(self, X, y, weights, theta):
        """Per-row gradients ``w_i g_i J_i`` of a block of rows, shape (n, p)."""
        gradient = self.likelihood.row_terms(self.predictor.value(X, theta), y)[1]
        return (weights * gradient)[:, None] * self.predictor.jacobian(X, theta)

    def log_likelihood_samples(self, X, y, weights, thetas):
        """``l(theta_s)`` for each draw of ``thetas`` (p, S), shape (S,)."""
        total = np.zeros(thetas.shape[1])
        for b in row_blocks(X.shape[0]):
            f = self.predictor.value(X[b], thetas)
            total += weights[b] @ self.likelihood.log_likelihood(f, y[b, None])
        return total
