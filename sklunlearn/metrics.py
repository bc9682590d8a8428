"""How close forgetting came to retraining, and what an attacker can still see.

Posterior and predictive divergences compare an unlearned model with the model
retrained from scratch on the remaining rows (the gold standard, Nguyen, Low &
Jaillet 2020); the membership-inference measure asks whether the forgotten
rows still look like training rows to a loss-threshold attacker (Yeom et al.
2018).
"""

import warnings

import numpy as np
from scipy.special import rel_entr
from sklearn.base import is_classifier
from sklearn.metrics import roc_auc_score
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import HasMethods, validate_params
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._caller import caller_stacklevel
from ._dask import is_dask_collection
from ._diagonal_posterior import DiagonalGaussianPosterior, kl_from_trace
from .exceptions import UnlearningWarning
from .posterior import GaussianPosterior

__all__ = [
    "gaussian_kl",
    "posterior_kl",
    "predictive_kl",
    "per_sample_loss",
    "membership_inference_auc",
]

# Probabilities are floored at machine epsilon before taking logarithms, so a
# class one model deems impossible gives a large finite divergence, not inf.
_PROBABILITY_FLOOR = np.finfo(np.float64).eps


def _non_negative(kl):
    """A divergence as a float, with round-off below zero (about -1e-15) clipped to 0."""
    return max(float(kl), 0.0)


# The posterior classes the divergences accept.
_POSTERIORS = (GaussianPosterior, DiagonalGaussianPosterior)


def _kl(p, q):
    """KL(p || q) between two posteriors, either of them diagonal.

    A full ``p`` against a diagonal ``q`` (precision vector ``d``):
    ``0.5 (sum_j d_j Sigma_p,jj + (m_q - m_p)' diag(d) (m_q - m_p) - n +
    log|Sigma_q| - log|Sigma_p|)``; the other cases are the posteriors' own.
    """
    if isinstance(p, GaussianPosterior) and isinstance(q, DiagonalGaussianPosterior):
        if p.n_features != q.n_features:
            raise ValueError(
                f"Cannot compare a {p.n_features}-dimensional posterior with a "
                f"{q.n_features}-dimensional one."
            )
        return kl_from_trace(p, q, float(np.diag(p.covariance) @ q.precision))
    return p.kl_divergence(q)


def _as_posterior(distribution, name):
    if isinstance(distribution, _POSTERIORS):
        return distribution
    if len(distribution) != 2:
        raise ValueError(
            f"{name} must be a GaussianPosterior, a DiagonalGaussianPosterior or a "
            f"(mean, covariance) pair; got a tuple of length {len(distribution)}."
        )
    mean, covariance = distribution
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    covariance = np.atleast_2d(np.asarray(covariance, dtype=np.float64))
    if covariance.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(
            f"The covariance of {name} must have shape {(mean.shape[0],) * 2} to match "
            f"its mean of length {mean.shape[0]}; got {covariance.shape}."
        )
    return GaussianPosterior.from_covariance(mean, covariance)


@validate_params(
    {
        "p": [GaussianPosterior, DiagonalGaussianPosterior, tuple],
        "q": [GaussianPosterior, DiagonalGaussianPosterior, tuple],
    },
    prefer_skip_nested_validation=True,
)
def gaussian_kl(p, q):
    """KL divergence KL(p || q) between two multivariate normal distributions.

    Computed from the Cholesky factors of the two precisions by
    :meth:`GaussianPosterior.kl_divergence`, with triangular solves only (no
    explicit inverse or determinant). For estimators' posteriors, which
    store those factors, this avoids inverting the precisions, which saves
    more the larger d is (timings in ``benchmarks/README.md``). A
    ``(mean, covariance)`` pair is factorised
    first. A :class:`~sklunlearn.posterior.DiagonalGaussianPosterior` on
    either side is compared in ``O(d)`` (against a full one, ``O(d^3)``).

    Parameters
    ----------
    p : GaussianPosterior, DiagonalGaussianPosterior or tuple (mean, covariance)
        First distribution; a pair is a mean of shape (d,) and a symmetric
        positive definite covariance of shape (d, d).
    q : GaussianPosterior, DiagonalGaussianPosterior or tuple (mean, covariance)
        Second distribution, of the same dimension.

    Returns
    -------
    kl : float
        ``KL(p || q)`` in nats, non-negative, 0 if and only if ``p == q``.

    See Also
    --------
    posterior_kl : The same between two fitted estimators' ``posterior_``.

    Examples
    --------
    >>> from sklunlearn.metrics import gaussian_kl
    >>> round(gaussian_kl(([0.0], [[1.0]]), ([1.0], [[1.0]])), 6)
    0.5
    """
    return _non_negative(_kl(_as_posterior(p, "p"), _as_posterior(q, "q")))


def _fitted_posteriors(estimator, name):
    """``posterior_`` as a list: one posterior, or one per class (one-vs-rest)."""
    check_is_fitted(estimator)
    posterior = getattr(estimator, "posterior_", None)
    posteriors = posterior if isinstance(posterior, list) else [posterior]
    if not posteriors or not all(isinstance(p, _POSTERIORS) for p in posteriors):
        raise TypeError(
            f"{name} ({type(estimator).__name__}) has no posterior_ GaussianPosterior; "
            "posterior_kl compares the posteriors of sklunlearn estimators. Use "
            "predictive_kl for other models."
        )
    return posteriors


@validate_params(
    {"est_a": [HasMethods(["fit"])], "est_b": [HasMethods(["fit"])]},
    prefer_skip_nested_validation=True,
)
def posterior_kl(est_a, est_b):
    """KL divergence between the posteriors of two fitted estimators.

    To audit forgetting, pass the unlearned model first and the model
    retrained from scratch on the remaining rows second:
    ``posterior_kl(unlearned, retrained)`` is the measure of Nguyen, Low &
    Jaillet (2020).

    Parameters
    ----------
    est_a : estimator
        Fitted estimator with a ``posterior_`` attribute (a
        :class:`~sklunlearn.posterior.GaussianPosterior` or a
        :class:`~sklunlearn.posterior.DiagonalGaussianPosterior`, or a list
        of them, one per class, for a one-vs-rest classifier: their KLs are
        summed).
    est_b : estimator
        Fitted estimator whose posterior has the same dimension.

    Returns
    -------
    kl : float
        ``KL(est_a.posterior_ || est_b.posterior_)`` in nats.

    Warns
    -----
    UnlearningWarning
        When both models have ``inducing_points_`` and they differ (a sparse
        GP refitted from scratch picks its own): the posteriors are then over
        different variables; use :func:`predictive_kl`.

    See Also
    --------
    gaussian_kl : The same between two distributions.
    predictive_kl : Divergence between predictions instead of weights.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.metrics import posterior_kl
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.randn(50, 2), rng.randn(50)
    >>> unlearned = BayesianLinearRegression().fit(X, y).partial_unfit(X[:5], y[:5])
    >>> retrained = BayesianLinearRegression().fit(X[5:], y[5:])
    >>> posterior_kl(unlearned, retrained) < 1e-8
    True
    """
    posteriors_a = _fitted_posteriors(est_a, "est_a")
    posteriors_b = _fitted_posteriors(est_b, "est_b")
    if len(posteriors_a) != len(posteriors_b):
        raise ValueError(
            f"est_a has {len(posteriors_a)} one-vs-rest posteriors and est_b "
            f"{len(posteriors_b)}: they were fitted on different classes."
        )
    _warn_if_different_inducing_points(est_a, est_b)
    # One-vs-rest posteriors are independent: the KL of their product is the sum.
    return _non_negative(
        sum(_kl(a, b) for a, b in zip(posteriors_a, posteriors_b, strict=True))
    )


def _warn_if_different_inducing_points(est_a, est_b):
    """Posteriors over ``f(Z_a)`` and ``f(Z_b)`` are over different variables."""
    Z_a = getattr(est_a, "inducing_points_", None)
    Z_b = getattr(est_b, "inducing_points_", None)
    if Z_a is None or Z_b is None:
        return
    if np.shape(Z_a) == np.shape(Z_b) and np.array_equal(Z_a, Z_b):
        return
    warnings.warn(
        "The two models have different inducing points, so their posteriors are over "
        "different variables and their KL divergence does not measure how close the "
        "models are. Compare them with predictive_kl, or give both the same "
        "inducing_points (an array) and fixed hyperparameters.",
        UnlearningWarning,
        stacklevel=caller_stacklevel(),
    )


def _categorical_kl(p, q):
    """Row-wise ``sum_k p_k log(p_k / q_k)``, probabilities floored at machine epsilon."""
    p = np.clip(p, _PROBABILITY_FLOOR, 1.0)
    q = np.clip(q, _PROBABILITY_FLOOR, 1.0)
    return np.sum(rel_entr(p, q), axis=1)


def _normal_kl(mean_p, std_p, mean_q, std_q):
    """Element-wise KL(N(mean_p, std_p^2) || N(mean_q, std_q^2))."""
    ratio = (std_p / std_q) ** 2
    return 0.5 * (ratio + ((mean_p - mean_q) / std_q) ** 2 - 1.0 - np.log(ratio))


def _predict_with_std(estimator, X, name):
    try:
        mean, std = estimator.predict(X, return_std=True)
    except TypeError as exc:
        raise TypeError(
            f"{name} ({type(estimator).__name__}) is a regressor whose predict does not "
            "accept return_std=True; predictive_kl needs the predictive standard "
            "deviation of regressors."
        ) from exc
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


def _check_same_classes(est_a, est_b):
    classes_a, classes_b = est_a.classes_, est_b.classes_
    if len(classes_a) != len(classes_b) or np.any(classes_a != classes_b):
        raise ValueError(
            f"The two classifiers know different classes ({classes_a!r} and "
            f"{classes_b!r}); their predicted probabilities cannot be compared. A forget "
            "set that removes every row of a class changes the classes of the retrained "
            "model."
        )


@validate_params(
    {
        "est_a": [HasMethods(["predict"])],
        "est_b": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def predictive_kl(est_a, est_b, X, *, sample_weight=None):
    """Mean KL divergence between two fitted models' predictive distributions.

    For each row ``x`` of ``X`` this is ``KL(p_a(y | x) || p_b(y | x))``:

    - classifiers: between the categorical (Bernoulli for two classes)
      distributions given by ``predict_proba``, probabilities floored at
      machine epsilon;
    - regressors: between the normal distributions ``N(mean, std^2)`` given
      by ``predict(X, return_std=True)``.

    The mean over rows is what Nguyen, Low & Jaillet (2020) report to
    compare an unlearned model with the retrained one. Unlike
    :func:`posterior_kl`, it also works for models whose posteriors are not
    comparable (different inducing points, different parametrisations).

    Parameters
    ----------
    est_a : estimator
        Fitted classifier with ``predict_proba`` or regressor whose
        ``predict`` accepts ``return_std=True``.
    est_b : estimator
        Fitted estimator of the same kind (same ``classes_`` for classifiers).
    X : array-like of shape (n_samples, n_features)
        Inputs at which to compare the predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows in the mean: finite, non-negative and not all
        zero.

    Returns
    -------
    kl : float
        Weighted mean over the rows of ``KL(p_a(y|x) || p_b(y|x))``, in nats.

    See Also
    --------
    posterior_kl : Divergence between the posteriors over the weights.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.metrics import predictive_kl
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.randn(50, 2), rng.randn(50)
    >>> full = BayesianLinearRegression().fit(X, y)
    >>> retrained = BayesianLinearRegression().fit(X[5:], y[5:])
    >>> predictive_kl(full, retrained, X) > 0
    True
    """
    if is_classifier(est_a) != is_classifier(est_b):
        raise ValueError(
            "predictive_kl compares two classifiers or two regressors; got a "
            f"{type(est_a).__name__} and a {type(est_b).__name__}."
        )
    check_is_fitted(est_a)
    check_is_fitted(est_b)
    if sample_weight is not None:
        # Checked before predicting, so bad weights fail fast and clearly.
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
    if is_classifier(est_a):
        _check_same_classes(est_a, est_b)
        divergences = _categorical_kl(est_a.predict_proba(X), est_b.predict_proba(X))
    else:
        mean_a, std_a = _predict_with_std(est_a, X, "est_a")
        mean_b, std_b = _predict_with_std(est_b, X, "est_b")
        divergences = _normal_kl(mean_a, std_a, mean_b, std_b)
    return _non_negative(np.average(divergences, weights=sample_weight))


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def per_sample_loss(estimator, X, y):
    """Negative log predictive density of each row under a fitted model.

    The loss a membership-inference attacker thresholds:

    - classifiers: ``-log p(y | x)`` from ``predict_proba`` (floored at
      machine epsilon); labels must be among ``estimator.classes_``;
    - regressors with ``predict(X, return_std=True)``: ``-log N(y | mean,
      std^2)``;
    - other regressors: the squared error ``(y - predict(X))^2``.

    Parameters
    ----------
    estimator : estimator
        Fitted classifier or regressor.
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y : array-like of shape (n_samples,)
        Observed targets or labels; a regressor's must be finite.

    Returns
    -------
    loss : ndarray of shape (n_samples,)
        Loss of each row; lower means the model fits the row better. When
        ``X`` is a dask collection, a lazy dask array chunked like its rows,
        as ``estimator.predict`` returns on dask (``y`` is read into memory).
    """
    check_is_fitted(estimator)
    return _loss(estimator, X, _checked_target(estimator, X, y))


def _checked_target(estimator, X, y):
    """``y`` as a 1-D array of ``X``'s length, of known labels or finite values."""
    # A column vector (a one-column frame, say) is raveled with scikit-learn's
    # DataConversionWarning; a 2-D y would broadcast against the predictions.
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_)
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown!r} that the estimator does not know "
                f"(classes_ = {classes!r})."
            )
        return y
    y = y.astype(np.float64)
    # A NaN target would give a NaN loss, which roc_auc_score refuses without
    # saying where it came from.
    assert_all_finite(y, input_name="y")
    return y


def _loss(estimator, X, y):
    """:func:`per_sample_loss` of a checked ``y``; lazy when ``predict`` is (dask)."""
    if is_classifier(estimator):
        probabilities = estimator.predict_proba(X)
        # A one-hot product rather than fancy indexing, which dask arrays lack.
        is_label = y[:, None] == np.asarray(estimator.classes_)[None, :]
        true_probability = (probabilities * is_label).sum(axis=1)
        return -np.log(np.clip(true_probability, _PROBABILITY_FLOOR, 1.0))
    try:
        mean, std = estimator.predict(X, return_std=True)
    except TypeError:
        return (y - _as_float(estimator.predict(X))) ** 2
    std = _as_float(std)
    return 0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((y - mean) / std) ** 2


def _as_float(values):
    """float64 values; a dask array stays lazy (``np.asarray`` would compute it)."""
    if is_dask_collection(values):
        return values.astype(np.float64)
    return np.asarray(values, dtype=np.float64)


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X_forgotten": ["array-like", "sparse matrix"],
        "y_forgotten": ["array-like"],
        "X_unseen": ["array-like", "sparse matrix"],
        "y_unseen": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def membership_inference_auc(estimator, X_forgotten, y_forgotten, X_unseen, y_unseen):
    """ROC AUC of a loss-threshold membership-inference attacker.

    The attacker of Yeom et al. (2018) guesses that a row was trained on when
    the model's loss on it (:func:`per_sample_loss`) is low. This function
    scores that guess on rows that were forgotten (positives) against rows
    the model never saw (negatives), drawn from the same distribution:

    - 0.5: the attacker cannot tell forgotten rows from unseen ones, as for
      a model retrained without them; compare with the AUC of the retrained
      model, which is the level forgetting should reach;
    - above 0.5: the forgotten rows still fit better than fresh rows, so the
      model still remembers them;
    - below 0.5: they fit worse (a model can over-forget, which is itself a
      detectable trace; the Streisand effect of Golatkar et al. 2020).

    Parameters
    ----------
    estimator : estimator
        Fitted model after forgetting.
    X_forgotten : array-like of shape (n_forgotten, n_features)
        The rows that were forgotten.
    y_forgotten : array-like of shape (n_forgotten,)
        Their targets.
    X_unseen : array-like of shape (n_unseen, n_features)
        Rows from the same distribution that were never trained on (a held-out
        set).
    y_unseen : array-like of shape (n_unseen,)
        Their targets.

    Returns
    -------
    auc : float
        Probability that a random forgotten row has a lower loss than a
        random unseen row (ties count one half).

    References
    ----------
    S. Yeom, I. Giacomelli, M. Fredrikson and S. Jha, Privacy risk in
    machine learning: analyzing the connection to overfitting, CSF 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.metrics import membership_inference_auc
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(200, 3)
    >>> y = X @ [1.0, 2.0, 0.0] + rng.randn(200)
    >>> est = BayesianLinearRegression().fit(X[:100], y[:100])
    >>> est = est.partial_unfit(X[:50], y[:50])
    >>> auc = membership_inference_auc(est, X[:50], y[:50], X[100:], y[100:])
    >>> 0.3 < auc < 0.7
    True
    """
    check_is_fitted(estimator)
    y_forgotten = _checked_target(estimator, X_forgotten, y_forgotten)
    y_unseen = _checked_target(estimator, X_unseen, y_unseen)
    # Checked before predicting, whose own message would not say which set is empty.
    if y_forgotten.size == 0 or y_unseen.size == 0:
        raise ValueError(
            "Both the forgotten and the unseen sets need at least one row; got "
            f"{y_forgotten.size} forgotten and {y_unseen.size} unseen rows."
        )
    loss_forgotten = np.asarray(_loss(estimator, X_forgotten, y_forgotten))
    loss_unseen = np.asarray(_loss(estimator, X_unseen, y_unseen))
    is_member = np.r_[np.ones(loss_forgotten.size), np.zeros(loss_unseen.size)]
    return float(roc_auc_score(is_member, -np.r_[loss_forgotten, loss_unseen]))
