"""Unlearning information bottleneck (UIB): forget with a bottleneck to a dynamic prior.

Han, Huang, Scheinost, Hartley & Rodriguez Martinez (2024) recalibrate the
parameters after a deletion by bounding the information bottleneck
``-I(Y_r; theta) + beta I(X_r; theta)`` variationally, with a prior that
follows the change in the data. For this package's Gaussian posteriors the
bound is solved over Gaussians ``q`` in ``S`` stages ``s = 1..S``,
``q_0 = q(theta|D) = N(m, Lambda^-1)``:

    q_s = argmin_q  E_q[log t_F(theta)] + KL(q || q(theta|D))
                    + sum_k beta_k KL(q_k || q_{s-1,k}),

- ``E_q[log t_F]`` is the forgotten rows' expected log-likelihood, with their
  likelihood replaced by the Gaussian site that ``q(theta|D)`` holds for them
  (Han et al.'s first, "relevance", term; the data term of Nguyen et al.'s
  EUBO): ``log t_F(theta) = g'(theta - m) - (theta - m)' H (theta - m) / 2``,
  with ``g``, ``H`` the rows' gradient and curvature at the mode ``m``
  (Laplace), or their Gauss-Hermite expectations under ``q(theta|D)``
  (variational);
- ``KL(q || q(theta|D))`` anchors ``q`` to the full-data posterior;
- the bottleneck: the dynamic prior ``q_{s-1}`` is the previous stage's
  estimate of the remaining-data posterior, so each stage compresses what
  the parameters take from the change in the data.

The bottleneck is weighed per direction of the site. In the coordinates
``z = U' R (theta - m)`` (``Lambda = R' R``, ``R^-T H R^-1 = U diag(lambda) U'``)
``q(theta|D)`` is ``N(0, I)`` and the site's curvature is ``diag(lambda)``.
Along ``u_k`` the prior holds ``pi_k = u_k' R^-T Lambda_0 R^-1 u_k`` of the
unit precision and the data ``1 - pi_k``, of which the forgotten rows hold
``lambda_k``: their share of the data's precision there is
``s_k = lambda_k / (1 - pi_k)`` (clipped to [0, 1]). ``q`` factorises over
these coordinates (``q_k``), and each stage keeps

    beta_k / (1 + beta_k) = (beta / (1 + beta)) (1 - s_k^p)^(1 / S),

``p = share_exponent``. The dynamic prior guards against what the divide-out
cannot know: how the remaining rows' curvature changes at the new mean.
Where the remaining rows hold the data's precision (``s_k -> 0``) the
bottleneck weight is ``beta``; where the forgotten rows held all of it
(``s_k -> 1``, such as an injected feature), the remaining rows add no
curvature there, the divide-out is exact and the bottleneck vanishes.

Both KLs are Gaussian and ``E_q[log t_F]`` is quadratic in ``q``'s mean and
covariance, so each stage's Newton (natural-gradient) iteration converges in
one step. Setting the derivatives in ``q_k``'s mean and variance to zero, in
natural parameters:

    nat(q_{s,k}) = (nat(q_k(theta|D)) - nat(t_{F,k}) + beta_k nat(q_{s-1,k}))
                   / (1 + beta_k),

and after ``S`` stages ``q_S = q(theta|D) / t_F^rho_k`` direction by
direction, with

    rho_k = 1 - (beta_k / (1 + beta_k))^S = rho + (1 - rho) s_k^p,
    rho = 1 - (beta / (1 + beta))^S:

precision ``Lambda - R' U diag(rho_k lambda_k) U' R`` (floored at the prior's)
and mean ``m - (that precision)^-1 R' U diag(rho_k) U' R^-T g``. ``beta`` and
``S`` act through ``rho`` alone; ``beta = 0``, ``S -> infinity`` or ``p = 0``
give the one-step Laplace divide-out, and ``p -> infinity`` the fraction
``rho`` in every direction (one bottleneck weight).

The site is deliberately not re-linearised as ``q`` moves: neither the
forgotten rows' curvature at each stage's mean nor their Gauss-Hermite
expectations under each ``q_s`` are held by a Laplace ``q(theta|D)``, and
dividing them out runs away (Nguyen et al.'s catastrophic unlearning;
measured in docs/pattern_forgetting.md). For a predictor that is not linear
in ``theta`` (a network) the site is the rows' Gauss-Newton curvature, which
changes with the mean, and the bound can end further from retraining than
doing nothing: there the Laplace divide-out's linearisation check
(:func:`~sklunlearn.unlearning._checks.linearisation_check`) re-evaluates the
rows at the new mean and warns as it does for that step.

References
----------
R. Han, W. Huang, D. Scheinost, C. Hartley, M. Rodriguez Martinez, "Unlearning
Information Bottleneck: Machine Unlearning of Systematic Patterns and Biases",
2024.

Q. P. Nguyen, B. K. H. Low, P. Jaillet, "Variational Bayesian Unlearning",
NeurIPS 2020.
"""

import math

import numpy as np
from scipy import linalg

from ..posterior import GaussianPosterior
from ._checks import OVERSHOOT_CLIP, linearisation_check, overshoot_warning
from ._diagnostics import UIBDiagnostics
from ._laplace import CHECKED_MOVE, site_terms

__all__ = ["SHARE_EXPONENT", "direction_fractions", "forgotten_fraction", "uib_forget"]

# ``p`` of the per-direction bottleneck (module docstring), chosen by measurement
# (benchmarks/README.md, "Forgetting patterns (UIB)").
SHARE_EXPONENT = 10.0


_STEP = "The 'uib' step on a model nonlinear in its parameters"
_ADVICE = (
    "The rows' Gauss-Newton curvature moved with the mean, which the bound does not "
    "follow; the result may be worse than not forgetting. Fit again on the remaining "
    "rows."
)


def forgotten_fraction(unlearning_beta, unlearning_stages):
    """``rho = 1 - (beta / (1 + beta))^stages``, the fraction of the site divided out.

    Each stage keeps ``beta / (1 + beta)`` of the site that the previous one
    had not divided out (the stage update of the module docstring); this is
    the fraction along directions whose precision the remaining rows hold.
    """
    beta = float(unlearning_beta)
    return 1.0 - (beta / (1.0 + beta)) ** int(unlearning_stages)


def direction_fractions(rho, shares, share_exponent=SHARE_EXPONENT):
    """``rho_k = rho + (1 - rho) s_k^p``: the fraction divided out per direction.

    Parameters
    ----------
    rho : float
        :func:`forgotten_fraction` of ``beta`` and ``stages``.
    shares : ndarray of shape (d,)
        ``s_k``, the forgotten rows' share of the data's precision along
        each direction (clipped to [0, 1]).
    share_exponent : float, default=SHARE_EXPONENT
        ``p``.

    Returns
    -------
    fractions : ndarray of shape (d,)
    """
    shares = np.clip(shares, 0.0, 1.0)
    return rho + (1.0 - rho) * shares**share_exponent


def _divided_site(posterior, model, site, rho, share_exponent):
    """``(R' U diag(rho_k lambda_k) U' R, R' U diag(rho_k) U' R^-T g)``: the part of the
    site divided out, direction by direction (module docstring)."""
    if rho == 1.0:  # every rho_k is 1: the whole site
        return site.hessian, site.gradient
    R = posterior.precision_cholesky
    # R^-T H R^-1: the site's curvature in the coordinates where q(theta|D) is N(0, I).
    half = linalg.solve_triangular(R, site.hessian, trans="T", check_finite=False)
    whitened = linalg.solve_triangular(R, half.T, trans="T", check_finite=False)
    lam, U = linalg.eigh((whitened + whitened.T) / 2.0, driver="evd", check_finite=False)
    lam = np.clip(lam, 0.0, 1.0)
    directions = linalg.solve_triangular(R, U, check_finite=False)  # R^-1 U
    prior = np.sum(directions * (model.prior.precision_matrix() @ directions), axis=0)
    shares = lam / np.maximum(1.0 - prior, np.finfo(float).tiny)
    fractions = direction_fractions(rho, shares, share_exponent)
    B = R.T @ U
    g = U.T @ linalg.solve_triangular(R, site.gradient, trans="T", check_finite=False)
    return (B * (fractions * lam)) @ B.T, B @ (fractions * g)


def uib_forget(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    unlearning_beta=3.0,
    unlearning_stages=4,
    terms=None,
    previous=None,
    share_exponent=SHARE_EXPONENT,
):
    """Forget rows with the staged information-bottleneck bound (Han et al. 2024).

    Solves ``S`` stages of ``min_q E_q[log t_F] + KL(q || q(theta|D)) +
    sum_k beta_k KL(q_k || q_{s-1,k})`` over Gaussians, ``q_0 = q(theta|D)``,
    ``t_F`` the rows' Gaussian site and ``beta_k`` the bottleneck weight
    along the ``k``-th direction of the site, smaller where the forgotten rows
    held more of the data's precision (module docstring). Their composition
    divides out ``rho_k = rho + (1 - rho) s_k^p`` of the site along direction
    ``k``, ``rho = 1 - (beta / (1 + beta))^S`` and ``s_k`` the forgotten rows'
    share of the data's precision there.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q(theta|D)``; not modified.
    model : Model
        Predictor, likelihood and prior (its precision floors the result).
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    inference : {'laplace', 'vi'}, default='laplace'
        How ``posterior`` was obtained: the site is the rows' terms at its
        mean, or their Gauss-Hermite expectations under it.
    unlearning_beta : float, default=3.0
        ``beta``, the weight of the bottleneck term. With ``S`` it sets
        ``rho``: a larger ``beta`` divides out less of the site (the defaults'
        trade-off is in docs/pattern_forgetting.md).
    unlearning_stages : int, default=4
        ``S``, the number of stages.
    terms : LikelihoodTerms or None, default=None
        The rows' site terms when the caller has them; None computes them.
    previous : LikelihoodTerms or None, default=None
        Pending requests: site terms of rows forgotten earlier from
        ``posterior`` (the stored full-data posterior); the union is forgotten.
    share_exponent : float, default=SHARE_EXPONENT
        ``p``: how fast the bottleneck vanishes as the forgotten rows' share
        of the data's precision along a direction approaches 1.

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : UIBDiagnostics
        ``forgotten_fraction`` is ``rho``, the fraction along directions the
        remaining rows hold.
    """
    if terms is None:
        terms = site_terms(posterior, model, X, y, weights, inference)
    site = terms if previous is None else previous + terms
    rho = forgotten_fraction(unlearning_beta, unlearning_stages)
    hessian, gradient = _divided_site(posterior, model, site, rho, share_exponent)
    # The S stages composed (Han et al. 2024's bound, module docstring):
    # q(theta|D) / t_F^rho_k direction by direction.
    precision, clipped = model.prior.floor(posterior.precision - hessian)
    factor = GaussianPosterior.from_precision(posterior.mean, precision)
    new = factor.with_mean(posterior.mean - factor.solve(gradient))
    move = posterior.mahalanobis(new.mean)
    messages = (overshoot_warning(clipped),) if clipped < -OVERSHOOT_CLIP else ()
    mean_error = covariance_error = math.nan
    if (
        not model.predictor.linear_in_parameters
        and inference != "vi"
        and move >= CHECKED_MOVE
    ):
        # A network's Gauss-Newton site moves with the mean: the divide-out's check
        # re-evaluates the rows at the new mean (module docstring).
        mean_error, covariance_error, message = linearisation_check(
            model, X, y, weights, posterior, new, terms, site, step=_STEP, advice=_ADVICE
        )
        messages = messages if message is None else (*messages, message)
    return new, UIBDiagnostics(
        move=move,
        clipped_eigenvalue=clipped,
        warnings=messages,
        forgotten_fraction=rho,
        stages=int(unlearning_stages),
        mean_relinearisation=mean_error,
        covariance_relinearisation=covariance_error,
    )
