"""Reverse-KL forgetting by self-normalised importance sampling (VBU Sec. 3.4).

The target is ``p_adj(theta) propto q(theta|D) / p_adj(y_F | X_F, theta)``,
the full-data posterior with the forgotten rows' (adjusted) likelihood divided
out. Minimising ``KL(p_adj || q)`` over Gaussians ``q`` is moment matching:
``q`` takes the mean and covariance of ``p_adj``. They are estimated from
``n_samples`` draws ``theta_s ~ q(theta|D)`` with self-normalised weights

    w_s propto 1 / p_adj(y_F | X_F, theta_s)
          = exp(-sum_i w_i 1[theta_s in region] log p(y_i | x_i' theta_s)),

the region being ``q(theta|D) > lambda max q(theta|D)``. The effective sample
size ``1 / sum w_s^2`` measures how much of the sample carries the answer; when
it is small the estimate is dominated by a few draws and is likely worse than
not forgetting, which is reported as a warning.

Control variates: the same draws with uniform weights estimate the moments of
``q(theta|D)``, which are known exactly, so only the change is estimated:
``mean = m0 + sum (w_s - 1/S) theta_s`` and ``cov = Sigma0 + (C_w - C_uniform)``.
Forgetting zero weight then returns ``q(theta|D)`` itself, and the Monte Carlo
error shrinks with the size of the change. When the corrected covariance is
not positive definite (too few effective draws), the correction is halved
until it is (``covariance_correction_scale`` in the diagnostics). The
precision is floored at the prior precision.
"""

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state

from ..posterior import GaussianPosterior
from ._checks import (
    overshoot_warning,
    reference_disagreement,
    region_mahalanobis_radius,
    region_mass,
)
from ._diagnostics import ReverseKLDiagnostics
from ._laplace import laplace_divide_out

__all__ = ["pareto_k", "reverse_kl_update"]

_MAX_HALVINGS = 30

# Warn when the effective sample size is below this many times the dimension.
ESS_PER_DIMENSION = 2.0
# Warn when the Pareto shape of the importance weights' tail exceeds this value:
# beyond it the weights' variance is effectively infinite and self-normalised
# estimates converge too slowly to be trusted (Vehtari et al. 2024, "Pareto
# smoothed importance sampling", JMLR); it catches heavy tails that neither
# the effective sample size nor the split-half test flags.
PARETO_K = 0.7
# Warn when the estimated Monte Carlo error exceeds this fraction of the move:
# to second order the result's KL to the target over doing nothing's is about
# r / (1 - r) for r = noise / move, and self-normalised weights add a bias of
# the same sign (thresholds measured in benchmarks/README.md).
NOISE_TO_MOVE = 0.25


def _weighted_covariance(samples, weights):
    centred = samples - weights @ samples
    return (centred * weights[:, None]).T @ centred


def _generalized_pareto_shape(exceedances):
    """Shape ``k`` of a generalised Pareto fit to positive ``exceedances``.

    The empirical-Bayes estimator of Zhang & Stephens (2009): with
    ``theta = k / sigma`` the profile log-likelihood is
    ``n (log(theta / k(theta)) - k(theta) - 1)``, ``k(theta) = mean log(1 + theta x)``;
    ``theta`` is averaged over a grid of candidates weighted by it, and ``k``
    is then shrunk towards 1/2 with the weak prior of Vehtari et al. (2024)
    (10 pseudo-observations).
    """
    x = np.sort(exceedances)
    n = x.size
    n_grid = 30 + int(np.sqrt(n))
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)]
    j = np.arange(1, n_grid + 1)
    theta = -1.0 / x[-1] - (1.0 - np.sqrt(n_grid / (j - 0.5))) / (3.0 * quartile)
    k = np.log1p(theta[:, None] * x).mean(axis=1)
    profile = n * (np.log(theta / k) - k - 1.0)
    posterior = np.exp(profile - logsumexp(profile))
    k_hat = np.log1p((posterior @ theta) * x).mean()
    return float((n * k_hat + 10 * 0.5) / (n + 10))


def pareto_k(log_weights):
    """Pareto shape ``k`` of the largest importance weights (PSIS diagnostic).

    Fits a generalised Pareto distribution to the excesses of the
    ``M = min(S / 5, 3 sqrt(S))`` largest of ``S`` weights over the next one.
    ``k < 0.5``: finite variance, reliable; ``0.5 <= k < 0.7``: usable;
    ``k >= 0.7``: the estimate is unreliable (Vehtari et al. 2024). Returns
    ``-inf`` when the tail is flat (uniform weights).
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    n_tail = int(min(0.2 * log_weights.size, 3.0 * np.sqrt(log_weights.size)))
    if n_tail < 5:
        return np.nan
    ordered = np.sort(log_weights - log_weights.max())
    tail, cutoff = ordered[-n_tail:], ordered[-n_tail - 1]
    exceedances = np.exp(tail) - np.exp(cutoff)
    if exceedances[-1] <= 1e-12 * np.exp(tail[-1]) or np.count_nonzero(exceedances) < 5:
        return -np.inf
    # Scale-free: divide by the largest exceedance so tiny weights do not underflow.
    exceedances = exceedances[exceedances > 0] / exceedances[-1]
    return _generalized_pareto_shape(exceedances)


def _whitened_change(z, normalised):
    """Mean shift and covariance correction, in q(theta|D)'s whitened coordinates.

    Uses the control variates of the module docstring, so both are zero when
    the weights are uniform.
    """
    uniform = np.full(z.shape[0], 1.0 / z.shape[0])
    shift = (normalised - uniform) @ z
    correction = _weighted_covariance(z, normalised) - _weighted_covariance(z, uniform)
    return shift, correction


def _quadratic_kl(shift, correction):
    """KL(N(shift, I + correction) || N(0, I)) to second order: |s|^2/2 + |C|_F^2/4."""
    return 0.5 * shift @ shift + 0.25 * np.sum(correction * correction)


def _noise_to_move(z, log_weights):
    """Monte Carlo error of the moment match relative to the size of the change.

    The draws are split in two halves, each self-normalised on its own; the two
    half-sample estimates differ by twice the variance of one, i.e. four times
    the variance of the full-sample estimate, so ``KL(half_a, half_b) / 4``
    estimates the error of the result, to second order. The move is the
    (second-order) KL of the result from ``q(theta|D)``. When the error exceeds
    a quarter of the move (``NOISE_TO_MOVE``), the estimate is mostly noise: it
    is then likely to be further from the retrained posterior than
    ``q(theta|D)`` itself.
    """
    if np.ptp(log_weights) == 0.0:
        return 0.0  # uniform weights: no change to estimate, no error
    halves = np.array_split(np.arange(z.shape[0]), 2)
    estimates = []
    for half in halves:
        w = np.exp(log_weights[half] - logsumexp(log_weights[half]))
        estimates.append(_whitened_change(z[half], w))
    (shift_a, corr_a), (shift_b, corr_b) = estimates
    noise = _quadratic_kl(shift_a - shift_b, corr_a - corr_b) / 4.0
    normalised = np.exp(log_weights - logsumexp(log_weights))
    move = _quadratic_kl(*_whitened_change(z, normalised))
    return float(noise / move)


def _moment_match(posterior, theta, normalised):
    """Mean and covariance of the weighted draws, with control variates.

    The same draws with uniform weights estimate q(theta|D)'s own moments,
    whose exact values are known: only the difference is estimated. A
    covariance correction that is not positive definite (too few effective
    draws) is halved until it is; returns the scale kept.
    """
    n_samples = theta.shape[0]
    uniform = np.full(n_samples, 1.0 / n_samples)
    mean = posterior.mean + (normalised - uniform) @ theta
    correction = _weighted_covariance(theta, normalised) - _weighted_covariance(
        theta, uniform
    )
    base = posterior.covariance
    scale = 1.0
    for _ in range(_MAX_HALVINGS):
        covariance = base + scale * correction
        if np.linalg.eigvalsh(0.5 * (covariance + covariance.T)).min() > 0:
            return mean, 0.5 * (covariance + covariance.T), scale
        scale *= 0.5
    return mean, 0.5 * (base + base.T), 0.0


def _sampling_warning(ess, noise_to_move, k_hat, d, n_samples):
    """The warning of an unreliable importance-sampling estimate, or None."""
    if ess < ESS_PER_DIMENSION * d:
        return (
            f"Reverse-KL unlearning: the importance weights collapsed (effective sample "
            f"size {ess:.3g} of {n_samples} draws, for {d} parameters); the result is "
            "likely worse than not forgetting. Increase n_samples, forget fewer rows "
            "at a time, or use unlearning='laplace'."
        )
    if noise_to_move > NOISE_TO_MOVE:
        return (
            f"Reverse-KL unlearning: the Monte Carlo error of the moment match is "
            f"{noise_to_move:.2g} times the size of the change it estimates ({d} "
            f"parameters, {n_samples} draws); the result is likely worse than not "
            "forgetting. Increase n_samples or use unlearning='laplace'."
        )
    if k_hat > PARETO_K:
        return (
            f"Reverse-KL unlearning: the importance weights have a heavy tail (Pareto "
            f"k = {k_hat:.2g} > {PARETO_K}, effective sample size {ess:.3g} of "
            f"{n_samples}); the moment estimates are unreliable and the result may be "
            "worse than not forgetting. Increase n_samples, forget fewer rows at a "
            "time, or use unlearning='laplace'."
        )
    return None


def reverse_kl_update(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    unlearning_lambda=0.0,
    n_samples=1000,
    random_state=None,
):
    """Forget rows by moment matching the importance-weighted ``q(theta|D) / p_adj``.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q(theta|D)``; not modified.
    model : Model
        Predictor, likelihood and prior (the floor of the new precision).
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    inference : {'laplace', 'vi'}, default='laplace'
        How ``posterior`` was obtained (for the Laplace reference).
    unlearning_lambda : float, default=0.0
    n_samples : int, default=1000
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : ReverseKLDiagnostics
        With ``reference_disagreement``, the KL to the one-step Laplace
        divide-out over the unforgotten posterior's.
    """
    rng = check_random_state(random_state)
    d = posterior.n_features
    theta = posterior.sample(n_samples, rng)  # (S, d)
    r = (theta - posterior.mean) @ posterior.precision_cholesky.T
    inside = np.einsum("ij,ij->i", r, r) <= region_mahalanobis_radius(unlearning_lambda)
    log_likelihood = model.log_likelihood_samples(X, y, weights, theta.T)  # (S,)
    log_weights = -np.where(inside, log_likelihood, 0.0)
    normalised = np.exp(log_weights - logsumexp(log_weights))
    ess = float(1.0 / np.sum(normalised**2))
    mean, covariance, scale = _moment_match(posterior, theta, normalised)
    precision, clipped = model.prior.floor(np.linalg.inv(covariance))
    new = GaussianPosterior.from_precision(mean, precision)
    noise_to_move = _noise_to_move(r, log_weights)
    k_hat = pareto_k(log_weights)
    reference = laplace_divide_out(posterior, model, X, y, weights, inference=inference)[0]
    disagreement, disagrees = reference_disagreement(new, reference, posterior)
    messages = [_sampling_warning(ess, noise_to_move, k_hat, d, n_samples), disagrees]
    if disagrees is not None:
        messages.append(overshoot_warning(clipped))
    return new, ReverseKLDiagnostics(
        move=posterior.mahalanobis(new.mean),
        clipped_eigenvalue=clipped,
        warnings=tuple(dict.fromkeys(m for m in messages if m is not None)),
        effective_sample_size=ess,
        noise_to_move=noise_to_move,
        pareto_k=k_hat,
        region_mass=region_mass(unlearning_lambda, d),
        covariance_correction_scale=scale,
        reference_disagreement=disagreement,
    )
