"""Unlearning information bottleneck (UIB): forget with a bottleneck to a dynamic prior.

Han, Huang, Scheinost, Hartley & Rodriguez Martinez (2024) recalibrate the
parameters after a deletion by bounding the information bottleneck
``-I(Y_r; theta) + beta I(X_r; theta)`` variationally, with a prior that
follows the change in the data. For this package's Gaussian posteriors the
bound is solved over Gaussians ``q`` in ``S`` stages ``s = 1..S``:

    q_s = argmin_q  E_q[log t_F(theta)] + KL(q || q(theta|D)) + beta KL(q || q_{s-1}),

``q_0 = q(theta|D) = N(m, Lambda^-1)``:

- ``E_q[log t_F]`` is the forgotten rows' expected log-likelihood, with their
  likelihood replaced by the Gaussian site that ``q(theta|D)`` holds for them
  (Han et al.'s first, "relevance", term; the data term of Nguyen et al.'s
  EUBO): ``log t_F(theta) = g'(theta - m) - (theta - m)' H (theta - m) / 2``,
  with ``g``, ``H`` the rows' gradient and curvature at the mode ``m``
  (Laplace), or their Gauss-Hermite expectations under ``q(theta|D)``
  (variational);
- ``KL(q || q(theta|D))`` anchors ``q`` to the full-data posterior;
- ``beta KL(q || q_{s-1})`` is the bottleneck: the dynamic prior is the
  previous stage's estimate of the remaining-data posterior, so each stage
  compresses what the parameters take from the change in the data.

Both KLs are Gaussian and ``E_q[log t_F]`` is quadratic in ``q``'s mean and
covariance, so each stage's Newton (natural-gradient) iteration converges in
one step. Setting the derivatives in ``q``'s mean and covariance to zero, in
natural parameters ``(Lambda m, Lambda)``:

    nat(q_s) = (nat(q(theta|D)) - nat(t_F) + beta nat(q_{s-1})) / (1 + beta),

and after ``S`` stages ``q_S = q(theta|D) / t_F^rho`` with
``rho = 1 - (beta / (1 + beta))^S``: precision ``Lambda - rho H`` (floored at
the prior's) and mean ``m - rho (Lambda - rho H)^-1 g``. ``beta`` and ``S``
act through ``rho`` alone; ``beta = 0`` or ``S -> infinity`` give the
one-step Laplace divide-out, and a finite bottleneck divides out the fraction
``rho``, which is closer to retraining where the divide-out's quadratic
picture overshoots (large, clustered deletions).

The site is deliberately not re-linearised as ``q`` moves: neither the
forgotten rows' curvature at each stage's mean nor their Gauss-Hermite
expectations under each ``q_s`` are held by a Laplace ``q(theta|D)``, and
dividing them out runs away (Nguyen et al.'s catastrophic unlearning;
measured in docs/pattern_forgetting.md).

References
----------
R. Han, W. Huang, D. Scheinost, C. Hartley, M. Rodriguez Martinez, "Unlearning
Information Bottleneck: Machine Unlearning of Systematic Patterns and Biases",
2024.

Q. P. Nguyen, B. K. H. Low, P. Jaillet, "Variational Bayesian Unlearning",
NeurIPS 2020.
"""

from ..posterior import GaussianPosterior
from ._checks import OVERSHOOT_CLIP, overshoot_warning
from ._diagnostics import UIBDiagnostics
from ._laplace import site_terms

__all__ = ["forgotten_fraction", "uib_forget"]


def forgotten_fraction(unlearning_beta, unlearning_stages):
    """``rho = 1 - (beta / (1 + beta))^stages``, the fraction of the site divided out.

    Each stage keeps ``beta / (1 + beta)`` of the site that the previous one
    had not divided out (the stage update of the module docstring).
    """
    beta = float(unlearning_beta)
    return 1.0 - (beta / (1.0 + beta)) ** int(unlearning_stages)


def uib_forget(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    unlearning_beta=2.0,
    unlearning_stages=4,
    terms=None,
    previous=None,
):
    """Forget rows with the staged information-bottleneck bound (Han et al. 2024).

    Solves ``S`` stages of ``min_q E_q[log t_F] + KL(q || q(theta|D)) +
    beta KL(q || q_{s-1})`` over Gaussians, ``q_0 = q(theta|D)`` and
    ``t_F`` the rows' Gaussian site (module docstring); their composition
    is ``q(theta|D) / t_F^rho``, ``rho = 1 - (beta / (1 + beta))^S``:
    precision ``floor(Lambda - rho H)`` and mean
    ``m - rho (Lambda - rho H)^-1 g``.

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
    unlearning_beta : float, default=2.0
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

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : UIBDiagnostics
    """
    if terms is None:
        terms = site_terms(posterior, model, X, y, weights, inference)
    site = terms if previous is None else previous + terms
    rho = forgotten_fraction(unlearning_beta, unlearning_stages)
    # The S stages composed: q(theta|D) / t_F^rho (Han et al. 2024's bound,
    # module docstring): precision Lambda - rho H, mean m - rho (Lambda - rho H)^-1 g.
    precision, clipped = model.prior.floor(posterior.precision - rho * site.hessian)
    factor = GaussianPosterior.from_precision(posterior.mean, precision)
    new = factor.with_mean(posterior.mean - rho * factor.solve(site.gradient))
    return new, UIBDiagnostics(
        move=posterior.mahalanobis(new.mean),
        clipped_eigenvalue=clipped,
        warnings=(overshoot_warning(clipped),) if clipped < -OVERSHOOT_CLIP else (),
        forgotten_fraction=rho,
        stages=int(unlearning_stages),
    )
