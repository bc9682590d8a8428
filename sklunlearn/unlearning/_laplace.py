"""Laplace updates: add rows by Newton's method, forget them by dividing them out.

Fitting and forgetting share one path with a sign. With ``q(theta)`` the
current Gaussian (the prior before the first fit) and ``l(theta)`` the
weighted log-likelihood of the rows,

- ``sign = +1`` (learn) maximises ``log q(theta) + l(theta)``, which is
  concave, by damped Newton steps to convergence; the new precision is
  ``Lambda + H(theta*)``, ``H`` the rows' negative Hessian.
- ``sign = -1`` (forget) divides the rows out: ``Lambda_r = Lambda - H(m)``
  and ONE Newton step ``m_r = m - Lambda_r^-1 grad l(m)`` from the current
  mode ``m`` (Guo et al. 2020's Newton removal; Rawat et al. 2022's Laplace
  divide-out). When ``q`` is the Laplace posterior at the mode, this is
  exactly one Newton step of the remaining data's log posterior, whose
  Hessian at ``m`` is ``-(Lambda - H(m))``: it needs only the forgotten rows.

The asymmetry is deliberate and measured (``docs/logistic_regression.md``):
iterating the divide-out objective ``log q - l`` to its stationary point goes
wrong because ``log q`` is only a local quadratic picture of the full-data
posterior, so far from ``m`` the objective is dominated by the error of that
picture (73x worse than doing nothing on breast_cancer, 30% forgotten).
The forgotten rows' Hessian is taken at ``m``, where it is part of the
stored precision, so ``Lambda - H(m)`` is ``prior + H_remaining(m)`` and
positive definite; round-off and earlier approximate updates are absorbed by
flooring the precision at the prior precision (:func:`floor_precision`).
"""

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from ..exceptions import NotPositiveDefiniteError
from ..posterior import GaussianPosterior
from ._common import (
    UpdateResult,
    floor_precision,
    linear_predictor_moments,
    mahalanobis,
)

__all__ = ["laplace_update"]


def _terms(likelihood, posterior, X, y, weights, theta, expected):
    """Likelihood terms at ``theta`` or, if ``expected``, averaged under ``posterior``."""
    if expected:
        mean, variance = linear_predictor_moments(posterior, X)
        return likelihood.expected_design_terms(X, y, weights, mean, variance)
    # The divide-out uses only the derivatives: skip the log-likelihood.
    return likelihood.design_terms(X, y, weights, theta, with_value=False)


def _learn(posterior, likelihood, X, y, weights, max_iter, tol):
    """Damped Newton on ``log q(theta) + l(theta)`` (concave) from the current mean.

    Stops after the step whose Newton decrement ``g' H^-1 g / 2`` is below
    ``tol``; backtracks by halving when a full step does not increase the objective.
    """
    m0 = posterior.mean
    Lambda0 = posterior.precision
    theta = m0.copy()

    def objective(theta, log_likelihood):
        r = posterior.precision_cholesky @ (theta - m0)
        return log_likelihood - 0.5 * r @ r

    terms = likelihood.design_terms(X, y, weights, theta)
    value = objective(theta, terms.log_likelihood)
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        gradient = terms.gradient - Lambda0 @ (theta - m0)
        negative_hessian = Lambda0 + terms.hessian
        factor = linalg.cho_factor(negative_hessian)
        step = linalg.cho_solve(factor, gradient)
        decrement = 0.5 * gradient @ step
        t = 1.0
        while True:
            candidate = theta + t * step
            candidate_terms = likelihood.design_terms(X, y, weights, candidate)
            candidate_value = objective(candidate, candidate_terms.log_likelihood)
            if candidate_value >= value - 1e-12 * abs(value) or t < 1e-10:
                break
            t *= 0.5
        theta, terms, value = candidate, candidate_terms, candidate_value
        # The step is taken before testing, so the mode is one quadratic step past tol.
        if decrement < tol:
            converged = True
            break
    precision = Lambda0 + terms.hessian
    return theta, precision, n_iter, converged


def laplace_update(
    posterior,
    likelihood,
    X,
    y,
    weights,
    *,
    sign,
    prior_precision,
    expected=False,
    max_iter=100,
    tol=1e-10,
):
    """Add (``sign=+1``) or divide out (``sign=-1``) rows' likelihood, Laplace style.

    Parameters
    ----------
    posterior : GaussianPosterior
        Current ``q(theta)`` (the prior before the first fit). Not modified.
    likelihood : object
        Per-row likelihood with ``design_terms`` and ``expected_design_terms``
        (see :mod:`sklunlearn.linear_model._likelihoods`).
    X : ndarray of shape (k, d)
        Design rows (features as the model sees them, intercept column included).
    y : ndarray of shape (k,)
        Targets in the likelihood's encoding.
    weights : ndarray of shape (k,)
        Non-negative row weights.
    sign : {1, -1}
        Learn or forget.
    prior_precision : float or ndarray of shape (d,)
        Diagonal prior precision: the lower bound the forgotten precision is
        floored at.
    expected : bool, default=False
        Forgetting only: use the rows' gradient and curvature averaged under
        ``posterior`` (right when it is a Gaussian variational posterior, whose
        precision is ``prior + sum_i E_q[c_i] x_i x_i'``) instead of their
        values at the mean (right for a Laplace posterior).
    max_iter : int, default=100
        Learning only: maximum Newton steps.
    tol : float, default=1e-10
        Learning only: stop when the Newton decrement is below ``tol``.

    Returns
    -------
    UpdateResult
        ``diagnostics`` holds ``move`` (Mahalanobis size of the mean's move
        under the input posterior), ``clipped_eigenvalue`` (most negative
        eigenvalue removed when flooring the precision; 0 when none) and
        ``warnings``.
    """
    if sign > 0:
        theta, precision, n_iter, converged = _learn(
            posterior, likelihood, X, y, weights, max_iter, tol
        )
        # prior + curvature: positive definite by construction, no floor needed
        new, clipped = GaussianPosterior.from_precision(theta, precision), 0.0
    else:
        terms = _terms(likelihood, posterior, X, y, weights, posterior.mean, expected)
        precision, clipped = floor_precision(
            posterior.precision - terms.hessian, prior_precision
        )
        # >= the prior: positive definite. LAPACK directly (finite input, checked
        # by floor_precision): scipy.linalg's wrappers cost more than a d=50 factor.
        R, info = lapack.dpotrf(precision, lower=0, clean=1)
        if info != 0:  # pragma: no cover - excluded by the floor
            raise NotPositiveDefiniteError(
                f"The forgotten precision is not positive definite (dpotrf info={info})."
            )
        # One Newton step of log q - l from the mode; its Hessian there is -Lambda_r.
        step, _ = lapack.dpotrs(R, terms.gradient, lower=0)
        theta = posterior.mean - step
        if not np.all(np.isfinite(theta)):
            raise FloatingPointError("The Newton step of the divide-out is not finite.")
        new = GaussianPosterior._trusted(theta, R)
        n_iter, converged = 1, True
    diagnostics = {
        "move": mahalanobis(posterior, new.mean),
        "clipped_eigenvalue": clipped,
        "warnings": [],
    }
    return UpdateResult(new, n_iter, converged, diagnostics)
