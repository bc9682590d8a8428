"""Laplace updates: add rows by Newton's method, forget them by dividing them out.

With ``q(theta) = N(m, Lambda^-1)`` the current posterior (the prior before
the first fit) and ``l(theta)`` the weighted log-likelihood of the rows:

- learning (:func:`newton_fit`) maximises ``log q(theta) + l(theta)``, which is
  concave, by damped Newton steps; the new precision is ``Lambda + H(theta*)``,
  ``H`` the rows' (Gauss-Newton) negative Hessian;
- forgetting (:func:`laplace_divide_out`, method ``'laplace'``) divides the
  rows out: ``Lambda_r = Lambda - H(m)`` and one Newton step
  ``m_r = m - Lambda_r^-1 grad l(m)`` from the mode (Guo et al. 2020's Newton
  removal; Rawat et al. 2022's Laplace divide-out). When ``q`` is the Laplace
  posterior at its mode, this is exactly one Newton step of the remaining
  data's log posterior, whose Hessian at ``m`` is ``-(Lambda - H(m))``.

The asymmetry is deliberate: iterating the divide-out objective ``log q - l``
to its stationary point goes wrong, because ``log q`` is only a local
quadratic picture of the full-data posterior (docs/logistic_regression.md).
"""

import math

import numpy as np
from scipy import linalg

from ..exceptions import NotPositiveDefiniteError
from ..posterior import GaussianPosterior
from ._checks import (
    NEGLIGIBLE_MOVE,
    NEWTON_DECREMENT,
    OVERSHOOT_CLIP,
    decrement_warning,
    linearisation_bounds,
    linearisation_check,
    overshoot_warning,
)
from ._diagnostics import LaplaceDiagnostics

__all__ = ["laplace_divide_out", "newton_fit", "site_terms"]

# The divide-outs of 'uib' and of diagonal posteriors do not check steps moving the
# mean less than this many posterior standard deviations. 'laplace' checks every
# step: its mean's linearisation error is of second order in the move, but the
# rows' curvature changes with their predictions' move, which a large-amplitude
# kernel makes large while the mean moves little (linearisation_bounds certifies
# the small moves that are safe, without the check's second pass).
CHECKED_MOVE = 0.1

# The certified floor test asks its eigenvalue bound to clear the prior's largest
# eigenvalue by _BOUND_SLACK d tr(precision), over the round-off of forming and
# factorising the precision, d u ||precision||_2 (Higham 2002, Thm. 10.3).
_BOUND_SLACK = 16 * np.finfo(np.float64).eps

# Divide-outs of at most d / _DOWNDATE_RATIO rows downdate the stored Cholesky
# factor row by row (O(k d^2)) instead of factorising the new precision.
_DOWNDATE_RATIO = 60


def laplace_divide_out(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    terms=None,
    previous=None,
    origin=None,
):
    """Forget rows by dividing their likelihood out of a Laplace posterior.

    ``Lambda_r = floor(Lambda - H(m))`` and ``m_r = m - Lambda_r^-1 grad l(m)``
    (one Newton step of ``log q - l`` from the mode), ``floor`` the prior's
    (:meth:`~sklunlearn.unlearning.GaussianPrior.floor`): the Newton removal
    step of Guo et al. (2020, eq. 3) and the Laplace divide-out of Rawat et
    al. (2022, Sec. 3). The floor is not tested when Weyl's inequality
    certifies it, ``posterior.eigenvalue_bound - ||H||`` above the prior's
    largest eigenvalue, so that a forget factorises once.

    Every step that moves the mean is then checked
    (:func:`linearisation_check`): the rows are re-evaluated at ``m_r``, and a
    change of their gradient or curvature that the linearisation at ``m`` did
    not predict is reported as a warning. Where bounds from the rows' moves
    alone show that the check cannot warn (:func:`linearisation_bounds`), it
    is not run and the diagnostics hold those bounds. A step the check passes
    still warns when its Newton decrement exceeds ``NEWTON_DECREMENT``
    (:func:`~sklunlearn.unlearning._checks.decrement_warning`): the remaining
    rows' likelihood, which the check cannot evaluate, then has to stay
    quadratic over a long step.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q(theta|D)``; not modified.
    model : Model
        Predictor, likelihood and prior.
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    inference : {'laplace', 'vi'}, default='laplace'
        How ``posterior`` was obtained. For ``'vi'`` the rows' gradient and
        curvature are averaged under ``posterior`` (a Gaussian variational
        posterior's precision is ``prior + sum_i E_q[c_i] J_i J_i'``), and
        the check is not run.
    terms : LikelihoodTerms or None, default=None
        The rows' terms at ``posterior.mean`` (expected ones for ``'vi'``)
        when the caller has them; None computes them.
    previous : LikelihoodTerms or None, default=None
        Pending requests: the terms, at ``posterior.mean``, of rows forgotten
        earlier from ``posterior`` (then the stored full-data posterior). The
        union of those rows and these is divided out.
    origin : ndarray of shape (n_parameters,) or None, default=None
        Where ``terms`` linearise the rows when that is not
        ``posterior.mean``: the Gaussian site taken at ``origin`` and moved
        to ``posterior.mean`` (the site a posterior that learned rows since
        holds of them). The bounds that settle the check then measure the
        rows' moves from ``origin``.

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : LaplaceDiagnostics
    """
    m = posterior.mean
    if terms is None:
        terms = site_terms(posterior, model, X, y, weights, inference)
    union = terms if previous is None else previous + terms
    precision = posterior.precision - union.hessian
    # Weyl: lambda_min(Lambda - H) >= bound(Lambda) - lambda_max(H), and lambda_max(H)
    # is at most H's Frobenius and infinity norms; NaN or inf fail the test.
    bound = posterior.eigenvalue_bound - min(
        np.linalg.norm(union.hessian), np.linalg.norm(union.hessian, np.inf)
    )
    # Round-off of forming and factorising the precision, with a wide margin.
    bound -= _BOUND_SLACK * m.shape[0] * abs(np.trace(precision))
    if bound > model.prior.eigenvalue_range[1]:  # certified: Lambda - H >= Lambda0
        clipped = 0.0
    else:
        precision, clipped = model.prior.floor(precision)
        bound = 0.0
    if (
        clipped
        or previous is not None
        or inference == "vi"
        or X.shape[0] * _DOWNDATE_RATIO >= m.shape[0]
    ):
        factor = GaussianPosterior.from_precision(m, precision, eigenvalue_bound=bound)
    else:
        factor = _downdated(posterior, model, X, y, weights, precision)
    new = factor.with_mean(m - factor.solve(union.gradient))
    step = new.mean - m
    messages = (overshoot_warning(clipped),) if clipped < -OVERSHOOT_CLIP else ()
    mean_error = covariance_error = math.nan
    move = math.sqrt(max(step @ posterior.precision @ step, 0.0))
    if inference != "vi" and move > NEGLIGIBLE_MOVE:
        # Certified from the rows' moves alone, else re-evaluated at the new mean.
        checked = linearisation_bounds(
            model, X, weights, posterior, new, union, bound, origin=origin
        )
        if checked is None:
            checked = linearisation_check(
                model, X, y, weights, posterior, new, terms, union
            )
        mean_error, covariance_error, message = checked
        if message is None:
            # This request's rows' Newton decrement: g' P^-1 g = -g' delta for their part
            # delta = -P^-1 g of the step (the whole step without pending requests).
            own = step if previous is None else -factor.solve(terms.gradient)
            decrement = math.sqrt(max(-(terms.gradient @ own), 0.0))
            if decrement > NEWTON_DECREMENT:
                message = decrement_warning(decrement)
        messages = messages if message is None else (*messages, message)
    return new, LaplaceDiagnostics(
        move=move,
        clipped_eigenvalue=clipped,
        warnings=messages,
        mean_relinearisation=mean_error,
        covariance_relinearisation=covariance_error,
    )


def site_terms(posterior, model, X, y, weights, inference="laplace"):
    """The rows' likelihood terms that ``posterior`` holds: at its mean, or expected.

    A Laplace posterior's precision holds the rows' curvature at its mode; a
    Gaussian variational one their curvature averaged under it.
    """
    if inference == "vi":
        return model.expected_terms(X, y, weights, posterior)
    return model.terms(X, y, weights, posterior.mean, with_value=False)


def _downdated(posterior, model, X, y, weights, precision):
    """``posterior`` with the rows' Gauss-Newton curvature at its mean removed.

    A rank-k downdate of the stored factor by the rows ``sqrt(w c) J``,
    O(k d^2): cheaper than factorising the new precision when k is small.
    """
    m = posterior.mean
    curvature = model.likelihood.row_terms(model.predictor.value(X, m), y)[2]
    try:
        return posterior.rank_downdate(model.predictor.jacobian(X, m), weights * curvature)
    except NotPositiveDefiniteError:
        # Round-off of the row-by-row downdate; the floored precision itself is
        # positive definite, so factorise it instead.
        return GaussianPosterior.from_precision(m, precision)


def newton_fit(posterior, model, X, y, weights, *, max_iter=100, tol=1e-10, verbose=0):
    """Add rows: damped Newton on ``log q(theta) + l(theta)`` from the current mean.

    Stops after the step whose Newton decrement ``g' H^-1 g / 2`` is below
    ``tol``; halves a step that does not increase the objective. ``verbose``
    prints the objective and the decrement of each iteration.

    Returns
    -------
    posterior : GaussianPosterior
        ``N(theta*, (Lambda + H(theta*))^-1)``.
    diagnostics : LaplaceDiagnostics
    """
    m0, Lambda0 = posterior.mean, posterior.precision
    theta = m0.copy()
    terms = model.terms(X, y, weights, theta)
    value = terms.log_likelihood - 0.5 * posterior.mahalanobis(theta) ** 2
    converged = False
    n_iter = 0
    while n_iter < max_iter and not converged:
        n_iter += 1
        gradient = terms.gradient - Lambda0 @ (theta - m0)
        step = linalg.cho_solve(linalg.cho_factor(Lambda0 + terms.hessian), gradient)
        theta, terms, value = _backtrack(
            posterior, model, X, y, weights, theta, step, value
        )
        # The step is taken before testing, so the mode is one quadratic step past tol.
        converged = 0.5 * gradient @ step < tol
        if verbose:
            print(
                f"Newton iteration {n_iter}, log posterior = {value:.6g}, "
                f"decrement = {0.5 * gradient @ step:.3g}"
            )
    precision = Lambda0 + terms.hessian
    new = GaussianPosterior.from_precision(
        theta, precision, eigenvalue_bound=_eigenvalue_bound(posterior, X, precision)
    )
    return new, LaplaceDiagnostics(
        n_iter=n_iter, converged=converged, move=posterior.mahalanobis(theta)
    )


def _eigenvalue_bound(posterior, X, precision):
    """A lower bound on the smallest eigenvalue of ``precision = Lambda + H``.

    With at least as many rows as parameters, the computed smallest
    eigenvalue less the eigensolver's error, ``d u ||precision||_2`` with a
    wide margin (Golub & Van Loan 2013, Sec. 8.4); with fewer, ``H`` is
    singular and Weyl's inequality keeps the bound of ``Lambda``.
    """
    if X.shape[0] < precision.shape[0] or not np.isfinite(precision).all():
        return posterior.eigenvalue_bound  # a non-finite one is refused by the caller
    try:
        eigenvalues = linalg.eigvalsh(precision, check_finite=False)
    except linalg.LinAlgError:  # no convergence: keep what Weyl gives
        return posterior.eigenvalue_bound
    slack = _BOUND_SLACK * precision.shape[0] * eigenvalues[-1]
    return max(float(eigenvalues[0] - slack), posterior.eigenvalue_bound, 0.0)


def _backtrack(posterior, model, X, y, weights, theta, step, value):
    """The longest step ``t step``, ``t = 1, 1/2, ...``, not lowering the objective."""
    t = 1.0
    while True:
        candidate = theta + t * step
        terms = model.terms(X, y, weights, candidate)
        candidate_value = terms.log_likelihood - 0.5 * posterior.mahalanobis(candidate) ** 2
        if candidate_value >= value - 1e-12 * abs(value) or t < 1e-10:
            return candidate, terms, candidate_value
        t *= 0.5
