"""Checks shared by the forgetting methods: the adjusted-likelihood region and
the signs of a result that is likely worse than not forgetting at all."""

import numpy as np
from scipy import stats

__all__ = [
    "OVERSHOOT_CLIP",
    "REFERENCE_DISAGREEMENT",
    "overshoot_warning",
    "reference_disagreement",
    "region_mahalanobis_radius",
    "region_mass",
]

# A log-concave likelihood can only add curvature, so no posterior of the model
# has a precision below the prior's. A forgotten precision that had to be
# floored by more than this fraction of the prior precision (in some direction)
# removed curvature the posterior never had: the method over-forgot.
OVERSHOOT_CLIP = 0.1

# 'eubo' and 'rkl' are cross-checked against the one-step Laplace divide-out,
# which predicts the retrained posterior well (benchmarks/README.md). A result
# whose KL to it exceeds this fraction of the unforgotten posterior's is, in
# square-root-KL terms, at least 2/3 of the way back to doing nothing: with the
# reference's own error, likely no better than not forgetting.
REFERENCE_DISAGREEMENT = 0.45
# Below this KL (nats) between the unforgotten posterior and the reference,
# forgetting changes nothing measurable and the ratio is not formed.
_NEGLIGIBLE_KL = 1e-10


def region_mahalanobis_radius(unlearning_lambda):
    """Squared Mahalanobis radius ``-2 log lambda`` of ``{q(theta|D) > lambda max q}``."""
    if unlearning_lambda <= 0:
        return np.inf
    return -2.0 * np.log(unlearning_lambda)


def region_mass(unlearning_lambda, n_features):
    """Mass of ``q(theta|D)`` inside the adjusted-likelihood region.

    The region is an ellipsoid of squared Mahalanobis radius ``-2 log lambda``
    under a ``d``-dimensional Gaussian, so its mass is the chi-squared
    distribution function ``F_{chi2_d}(-2 log lambda)``: ``lambda = 0.1``
    holds 68% of the mass at ``d = 5`` but 1% at ``d = 20``.
    """
    if unlearning_lambda <= 0:
        return 1.0
    if unlearning_lambda >= 1:
        return 0.0
    return float(stats.chi2.cdf(region_mahalanobis_radius(unlearning_lambda), n_features))


def overshoot_warning(clipped):
    """The over-forgetting warning for a precision floored ``-clipped`` below the prior."""
    if clipped >= -OVERSHOOT_CLIP:
        return None
    return (
        f"Unlearning removed more curvature than the posterior holds: the new "
        f"precision fell {-clipped:.2g} times the prior precision below the prior "
        "in some direction and was floored there. The result is likely worse "
        "than not forgetting (over-forgetting); forget fewer rows at a time, or "
        "use unlearning='laplace' or a larger unlearning_lambda."
    )


def reference_disagreement(result, reference, posterior):
    """``KL(result || reference) / KL(posterior || reference)`` and its warning (or None).

    ``reference`` is the one-step Laplace divide-out of the same rows from
    ``posterior``. A floored precision is only reported (see
    :func:`overshoot_warning`) when the result also disagrees with it.
    """
    nothing = posterior.kl_divergence(reference)
    distance = result.kl_divergence(reference)
    if nothing <= _NEGLIGIBLE_KL:
        disagreement = 0.0 if distance <= _NEGLIGIBLE_KL else np.inf
    else:
        disagreement = float(distance / nothing)
    if disagreement <= REFERENCE_DISAGREEMENT:
        return disagreement, None
    return disagreement, (
        f"The result is {disagreement:.2g} times as far (KL) from the one-step "
        "Laplace divide-out of the same rows as the unforgotten posterior is; "
        "the Laplace step predicts the retrained posterior well, so this result "
        "is likely no better than not forgetting. Compare with "
        "unlearning='laplace'."
    )
