"""Tune unlearning hyperparameters with scikit-learn's model selection tools."""

import time
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
    check_is_fitted,
    indexable,
    validate_data,
)

from .base import check_weights
from .metrics import posterior_kl, predictive_kl

__all__ = ["UnlearningAudit", "retraining_clone"]


def _unlearned_has(attribute):
    """available_if condition: the fitted (or else the wrapped) estimator has it."""

    def check(self):
        if hasattr(self, "unlearned_estimator_"):
            getattr(self.unlearned_estimator_, attribute)
        else:
            getattr(self.estimator, attribute)
        return True

    return check


def retraining_clone(fitted):
    """An unfitted clone of ``fitted`` whose retrained posterior is over the same variables.

    A sparse GP's posterior is over the values at its inducing points, and its
    kernel and noise variance are learned once from all the rows (they keep the
    forgotten rows, as ``partial_unfit`` warns). A clone fitted from scratch
    would choose other inducing points and hyperparameters, so its posterior
    could not be compared with the forgotten one's. This clone keeps
    ``inducing_points_``, ``kernel_`` and ``noise_variance_`` of ``fitted`` (with
    ``optimizer=None``), for the final step of a pipeline too; other estimators
    are cloned as they are.

    Parameters
    ----------
    fitted : estimator
        A fitted estimator or pipeline.

    Returns
    -------
    clone : estimator
        An unfitted clone of ``fitted``, to fit on the remaining rows.
    """
    retrained = clone(fitted)
    steps = getattr(fitted, "steps", None)
    final, prefix = (steps[-1][1], f"{steps[-1][0]}__") if steps else (fitted, "")
    params = final.get_params(deep=False)
    learned = {}
    if "inducing_points" in params and hasattr(final, "inducing_points_"):
        learned["inducing_points"] = final.inducing_points_
    if "optimizer" in params and hasattr(final, "kernel_"):
        learned.update(kernel=final.kernel_, optimizer=None)
        if "noise_variance" in params and hasattr(final, "noise_variance_"):
            learned["noise_variance"] = final.noise_variance_
    return retrained.set_params(**{prefix + name: value for name, value in learned.items()})


def _check_classes_remain(y, mask, sample_weight):
    """Refuse a forget set that holds every row of a class (or all its weight).

    The retrained classifier would not know that class, so its posteriors (one per
    class against the rest) could not be compared with the unlearned model's.
    Continuous targets are refused first, with scikit-learn's message, since their
    values are not classes.
    """
    labels = np.asarray(y)
    # type_of_target casts the labels to int before it refuses a NaN or inf among them.
    with np.errstate(invalid="ignore"):
        check_classification_targets(labels)
    kept = ~mask if sample_weight is None else ~mask & (sample_weight > 0)
    gone = np.setdiff1d(np.unique(labels), np.unique(labels[kept]))
    if gone.size:
        raise ValueError(
            f"The forget set holds every row of class(es) {gone.tolist()}, so the model "
            "retrained on the remaining rows cannot know them and its posterior is not "
            "comparable with the unlearned one's. Keep at least one row of each class "
            "in the forget set's complement, or audit the forgetting of a whole class "
            "by hand: forget it from the model and compare its predicted probabilities, "
            "renormalised over the remaining classes, with a retrained model's. "
            "Nothing was fitted."
        )


class UnlearningAudit(MetaEstimatorMixin, BaseEstimator):
    """Forget part of the training rows, retrain without them, and score the gap.

    ``fit(X, y)`` fits a clone of ``estimator`` on all rows, forgets a subset
    of them with ``partial_unfit``, fits another clone from scratch on the
    remaining rows, and measures how far the unlearned model is from the
    retrained one. :meth:`score` returns ``-kl_to_retrained_``, so that
    :class:`~sklearn.model_selection.GridSearchCV` over
    ``estimator__<parameter>`` picks the unlearning hyperparameters that
    come closest to retraining (the evaluation of Nguyen, Low & Jaillet
    2020, as a model-selection criterion). In a cross-validation each
    training fold is audited; the test fold is not used by the score.

    The score compares forgetting methods for one model: it must not be
    used to choose the model's own hyperparameters (``alpha``,
    ``fit_intercept``, the kernel, ...). A model that ignores its data, such
    as one with a very strong prior, forgets perfectly and would win. Choose
    those first by the model's own score (a plain
    :class:`~sklearn.model_selection.GridSearchCV` on the estimator), then
    audit the forgetting of the chosen model.

    Read more in the :ref:`User Guide <model_selection>`.

    Parameters
    ----------
    estimator : estimator
        Estimator with ``fit`` and ``partial_unfit`` whose fitted model has a
        ``posterior_`` (:class:`~sklunlearn.posterior.GaussianPosterior` or
        :class:`~sklunlearn.posterior.DiagonalGaussianPosterior`).
    forget_size : float, int or callable, default=0.1
        Which rows to forget:

        - float in (0, 1): that fraction of the rows (at least one), drawn
          at random;
        - int: that many rows, drawn at random;
        - callable: ``forget_size(X, y)`` returns a boolean mask of shape
          (n_samples,) or integer indices of the rows to forget, for
          clustered or group deletion requests. An integer array of
          n_samples zeros and ones is refused as ambiguous (a mask of the
          wrong dtype, or indices that forget rows 0 and 1 only): return
          ``mask.astype(bool)`` or ``np.flatnonzero(mask)``.

        At least one row must be forgotten and one must remain.
    random_state : int, RandomState instance or None, default=None
        Draws the random forget set. Pass an int for reproducible audits.

    Attributes
    ----------
    unlearned_estimator_ : estimator
        Fitted on all rows, then the forget set forgotten.
    retrained_estimator_ : estimator
        Fitted from scratch on the remaining rows.
    kl_to_retrained_ : float
        ``KL(unlearned || retrained)`` between the posteriors
        (:func:`~sklunlearn.metrics.posterior_kl`); 0 for exact forgetting.
    kl_do_nothing_ : float
        ``KL(full || retrained)``: the gap left by not forgetting at all,
        the baseline ``kl_to_retrained_`` should beat.
    predictive_kl_ : float
        Mean KL between the unlearned and the retrained predictive
        distributions over the training rows
        (:func:`~sklunlearn.metrics.predictive_kl`).
    forget_time_ : float
        Seconds spent in ``partial_unfit``.
    retrain_time_ : float
        Seconds spent fitting the retrained model.
    forget_mask_ : ndarray of shape (n_samples,), dtype=bool
        Rows of the training data that were forgotten.
    classes_ : ndarray of shape (n_classes,)
        Classes of the unlearned classifier (only for classifiers).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    sklunlearn.metrics.posterior_kl : The divergence scored.
    sklunlearn.metrics.membership_inference_auc : A privacy-side measure.

    Notes
    -----
    Each ``fit`` trains the model twice and forgets once.

    ``kl_to_retrained_`` compares posteriors, which is meaningful only when
    they are over the same variables. A sparse GP is therefore retrained with
    the inducing points, kernel and noise variance its fit on all rows learned
    (:func:`retraining_clone`, as the ``sklunlearn audit`` command does): the
    audit measures the forget at those hyperparameters, which still carry the
    forgotten rows (``partial_unfit`` warns so), and ``retrain_time_`` is the
    time of that refit, without the hyperparameters' optimisation. Other
    estimators are retrained from scratch. A network retrained from scratch
    lands in another mode of its posterior, where the KL says little: judge it
    by ``predictive_kl_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.model_selection import UnlearningAudit
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(120, 3)
    >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(120)
    >>> audit = UnlearningAudit(BayesianLinearRegression(), forget_size=0.2,
    ...                         random_state=0).fit(X, y)
    >>> audit.kl_to_retrained_ < 1e-8 < audit.kl_do_nothing_
    True
    >>> from sklunlearn.linear_model import BayesianLogisticRegression
    >>> labels = (y > 0).astype(int)
    >>> audit = UnlearningAudit(BayesianLogisticRegression(random_state=0),
    ...                         forget_size=0.2, random_state=0)
    >>> grid = {"estimator__unlearning": ["laplace", "rkl"]}
    >>> search = GridSearchCV(audit, grid, cv=3).fit(X, labels)
    >>> search.best_params_
    {'estimator__unlearning': 'laplace'}
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "partial_unfit"])],
        "forget_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
            callable,
        ],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, forget_size=0.1, random_state=None):
        self.estimator = estimator
        self.forget_size = forget_size
        self.random_state = random_state

    def _mask_from_callable(self, X, y, n_samples):
        """The rows ``forget_size(X, y)`` chose, as a boolean mask (validated)."""
        chosen = np.asarray(self.forget_size(X, y))
        mask = np.zeros(n_samples, dtype=bool)
        if chosen.dtype == bool:
            if chosen.shape != (n_samples,):
                raise ValueError(
                    f"forget_size returned a boolean mask of shape {chosen.shape}; "
                    f"expected ({n_samples},)."
                )
            return chosen.copy()
        # An empty list comes back as a float array: it selects no rows, which
        # the caller reports as an empty forget set.
        if chosen.size == 0:
            return mask
        if not np.issubdtype(chosen.dtype, np.integer):
            raise ValueError(
                "forget_size must return a boolean mask or integer row indices; got "
                f"an array of dtype {chosen.dtype}."
            )
        if (
            n_samples > 1
            and chosen.shape == (n_samples,)
            and np.all((chosen == 0) | (chosen == 1))
        ):
            # Read as indices it would forget rows 0 and 1 only, which is not
            # what a 0/1 mask of integers means.
            raise ValueError(
                f"forget_size returned an integer array of {n_samples} zeros and ones, "
                "one per row: a mask with an integer dtype, or row indices that forget "
                "rows 0 and 1 only? Return a boolean mask (e.g. mask.astype(bool)) or "
                "the row indices (e.g. np.flatnonzero(mask))."
            )
        chosen = chosen.reshape(-1)
        # Negative indices would silently wrap around to other rows.
        bad = chosen[(chosen < 0) | (chosen >= n_samples)]
        if bad.size:
            raise ValueError(
                f"forget_size returned row indices {bad[:5].tolist()} outside "
                f"[0, {n_samples}); row indices must be non-negative and below "
                "n_samples."
            )
        mask[chosen] = True
        return mask

    def _forget_mask(self, X, y):
        n_samples = _num_samples(X)
        if callable(self.forget_size):
            mask = self._mask_from_callable(X, y, n_samples)
        else:
            if isinstance(self.forget_size, Integral):
                n_forget = int(self.forget_size)
            else:
                n_forget = max(1, int(round(self.forget_size * n_samples)))
            if n_forget >= n_samples:
                raise ValueError(
                    f"forget_size={self.forget_size!r} asks to forget {n_forget} of "
                    f"n_samples={n_samples} rows; at least one row must remain."
                )
            rng = check_random_state(self.random_state)
            mask = np.zeros(n_samples, dtype=bool)
            mask[rng.choice(n_samples, size=n_forget, replace=False)] = True
        n_forget = int(mask.sum())
        if n_forget == 0 or n_forget == n_samples:
            raise ValueError(
                f"The forget set has {n_forget} of {n_samples} rows; at least one row "
                "must be forgotten and one must remain."
            )
        return mask

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit on all rows, forget the forget set, retrain without it, and compare.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights for fitting; the forget set is forgotten with its weights.
            With metadata routing enabled, they are used only when the
            estimator's fit request asks for them (and refused when it sets
            none), as scikit-learn's meta-estimators route them.

        Returns
        -------
        self : object
            Fitted audit.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if get_config()["enable_metadata_routing"]:
            # The audit fits, retrains and forgets with the estimator's own fit
            # request: weights it declines are not used anywhere.
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            routed = process_routing(self, "fit", **weights)
            sample_weight = routed.estimator.fit.get("sample_weight")
        X, y = indexable(X, y)
        mask = self._forget_mask(X, y)
        forget, keep = np.flatnonzero(mask), np.flatnonzero(~mask)
        if sample_weight is not None:
            sample_weight = check_weights(sample_weight, X)
        if is_classifier(self.estimator):
            _check_classes_remain(y, mask, sample_weight)

        def weights_of(rows):
            if sample_weight is None:
                return {}
            return {"sample_weight": sample_weight if rows is None else sample_weight[rows]}

        # Attributes are set only once everything succeeded, so a failing
        # estimator leaves a previous audit intact.
        unlearned = clone(self.estimator).fit(X, y, **weights_of(None))
        start = time.perf_counter()
        retrained = retraining_clone(unlearned).fit(
            _safe_indexing(X, keep), _safe_indexing(y, keep), **weights_of(keep)
        )
        retrain_time = time.perf_counter() - start
        kl_do_nothing = posterior_kl(unlearned, retrained)
        start = time.perf_counter()
        unlearned.partial_unfit(
            _safe_indexing(X, forget), _safe_indexing(y, forget), **weights_of(forget)
        )
        forget_time = time.perf_counter() - start

        kl_to_retrained = posterior_kl(unlearned, retrained)
        predictive_gap = predictive_kl(unlearned, retrained, X)

        self.retrain_time_ = retrain_time
        self.forget_time_ = forget_time
        self.kl_do_nothing_ = kl_do_nothing
        self.kl_to_retrained_ = kl_to_retrained
        self.predictive_kl_ = predictive_gap
        self.unlearned_estimator_ = unlearned
        self.retrained_estimator_ = retrained
        self.forget_mask_ = mask
        self.n_features_in_ = unlearned.n_features_in_
        if hasattr(unlearned, "feature_names_in_"):
            self.feature_names_in_ = unlearned.feature_names_in_
        return self

    def get_metadata_routing(self):
        """Metadata routing: ``fit``'s ``sample_weight`` goes to the estimator's ``fit``
        (and so to its retrain and its ``partial_unfit``) as its fit request says.

        Returns
        -------
        routing : MetadataRouter
            The routing information.
        """
        return MetadataRouter(owner=self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )

    def score(self, X=None, y=None, sample_weight=None):
        """Minus the posterior KL of the unlearned model to the retrained one.

        Higher is better; 0 means forgetting matched retraining exactly.
        ``X``, ``y`` and ``sample_weight`` are ignored (they are accepted so
        that model-selection tools can call it): the score reads the audit
        made during :meth:`fit`, where the weights of the training fold were
        used, not the rows given here.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            Ignored; its feature count and names are checked when given.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Ignored.

        Returns
        -------
        score : float
            ``-kl_to_retrained_``.
        """
        check_is_fitted(self)
        if X is not None:
            validate_data(self, X, reset=False, skip_check_array=True)
        return -self.kl_to_retrained_

    @available_if(_unlearned_has("predict"))
    def predict(self, X, **predict_params):
        """Predict with the unlearned model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        **predict_params : dict
            Passed to its ``predict`` (such as ``return_std``).

        Returns
        -------
        y_pred : ndarray, or tuple of ndarrays
            What the unlearned model's ``predict`` returns.
        """
        check_is_fitted(self)
        return self.unlearned_estimator_.predict(X, **predict_params)

    @available_if(_unlearned_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the unlearned model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.unlearned_estimator_.predict_proba(X)

    @available_if(_unlearned_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the unlearned model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.unlearned_estimator_.predict_log_proba(X)

    @available_if(_unlearned_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the unlearned model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.unlearned_estimator_.decision_function(X)

    @property
    def classes_(self):
        """Classes of the unlearned classifier."""
        check_is_fitted(self)
        return self.unlearned_estimator_.classes_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.target_tags.required = True
        tags.input_tags = inner.input_tags
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        return tags
