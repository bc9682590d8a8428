"""The forgetting core: predictor x likelihood x prior, and the methods registry.

A model (:class:`Model`) is a predictor ``f = g(x; theta)``
(:class:`LinearPredictor`, :class:`InducingPointPredictor`, or any
:class:`Predictor`), a per-row likelihood (:class:`BernoulliLogit`,
:class:`GaussianNoise`, or any :class:`Likelihood`) and a Gaussian prior
(:class:`GaussianPrior`). Learning (:func:`learn`) and forgetting go through
the same pieces; a forgetting method takes the stored posterior, the model
and the rows, and returns the new posterior and a typed diagnostics record.
Nothing here knows an estimator: the estimators build a model and look the
method named by their ``unlearning`` parameter up in the registry.

Methods
-------
``'laplace'``
    Divide the rows' likelihood out of the Laplace posterior with one
    Newton step (:func:`laplace_divide_out`).
``'eubo'``
    Minimise the evidence upper bound of Nguyen, Low & Jaillet (2020) over
    full-covariance Gaussians, optionally with the adjusted likelihood
    (:func:`eubo_forget`).
``'rkl'``
    Moment-match ``q(theta|D) / p_adj(y_F|theta)`` with self-normalised
    importance sampling (:func:`reverse_kl_update`).
``'uib'``
    The unlearning information bottleneck of Han et al. (2024): a staged
    bound with a bottleneck to a dynamic prior (:func:`uib_forget`).
``'lcodec'``
    L-CODEC (Mehta et al. 2022): the Newton removal step on the parameter
    groups that FOCI selects from perturbed copies of the rows
    (:func:`lcodec_forget`).

``'laplace'`` and ``'uib'`` take ``terms`` and ``previous`` (the rows' site
terms at the stored posterior's mean), so that an estimator can keep the
full-data posterior and divide out the union of pending requests.

Register another with :func:`register_method`. Certified removal (Guo et al.
2020) is the ``'laplace'`` step on a fit with a perturbed objective, with a
residual bound kept by :class:`RemovalState` (:mod:`._certified`).
"""

from ._certified import (
    LOGISTIC_GAMMA,
    CertifiedDiagnostics,
    RemovalCertificate,
    RemovalState,
    certificate_constant,
    perturbed_priors,
)
from ._checks import (
    COVARIANCE_RELINEARISATION,
    MEAN_RELINEARISATION,
    OVERSHOOT_CLIP,
    REFERENCE_DISAGREEMENT,
    region_mass,
)
from ._diagnostics import (
    Diagnostics,
    LaplaceDiagnostics,
    ReverseKLDiagnostics,
    UIBDiagnostics,
    VariationalDiagnostics,
)
from ._laplace import laplace_divide_out, newton_fit, site_terms
from ._lcodec import LCodecDiagnostics, lcodec_forget
from ._learning import learn
from ._likelihoods import BernoulliLogit, GaussianNoise, Likelihood, gauss_hermite
from ._model import LikelihoodTerms, Model
from ._predictors import InducingPointPredictor, LinearPredictor, Predictor
from ._prior import GaussianPrior, floor_precision
from ._registry import METHOD_NAMES, ForgettingMethod, get_method, register_method
from ._reverse_kl import reverse_kl_update
from ._uib import forgotten_fraction, uib_forget
from ._variational import UpdateResult, eubo_forget, variational_update

__all__ = [
    "COVARIANCE_RELINEARISATION",
    "LOGISTIC_GAMMA",
    "MEAN_RELINEARISATION",
    "METHOD_NAMES",
    "OVERSHOOT_CLIP",
    "REFERENCE_DISAGREEMENT",
    "BernoulliLogit",
    "CertifiedDiagnostics",
    "Diagnostics",
    "ForgettingMethod",
    "GaussianNoise",
    "GaussianPrior",
    "InducingPointPredictor",
    "LCodecDiagnostics",
    "LaplaceDiagnostics",
    "Likelihood",
    "LikelihoodTerms",
    "LinearPredictor",
    "Model",
    "Predictor",
    "RemovalCertificate",
    "RemovalState",
    "ReverseKLDiagnostics",
    "UIBDiagnostics",
    "UpdateResult",
    "VariationalDiagnostics",
    "certificate_constant",
    "eubo_forget",
    "floor_precision",
    "forgotten_fraction",
    "gauss_hermite",
    "get_method",
    "laplace_divide_out",
    "lcodec_forget",
    "learn",
    "newton_fit",
    "perturbed_priors",
    "region_mass",
    "register_method",
    "reverse_kl_update",
    "site_terms",
    "uib_forget",
    "variational_update",
]

# 'terms' and 'previous' are passed by the estimators' pending-request path, not
# read from estimator parameters.
register_method("laplace", laplace_divide_out, parameters=("inference",))
register_method("eubo", eubo_forget)
register_method("rkl", reverse_kl_update)
register_method(
    "lcodec",
    lcodec_forget,
    parameters=(
        "lcodec_n_perturbations",
        "lcodec_scale",
        "lcodec_max_features",
        "random_state",
        "inference",
    ),
)
register_method(
    "uib",
    uib_forget,
    parameters=("inference", "unlearning_beta", "unlearning_stages"),
)
