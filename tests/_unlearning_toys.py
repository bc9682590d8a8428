"""Small test-only estimators for the metrics, the audit and the unlearning checks.

- ``ColumnRegressor`` / ``ColumnClassifier``: predictions read off the input
  columns, so that metrics can be compared with closed forms.
- ``ToyUnlearningClassifier``: a Bayesian least-squares classifier (targets
  ``2y - 1``, Gaussian prior) whose ``partial_unfit`` removes only
  ``forget_fraction`` of each forgotten row's statistics: exact when it is 1,
  approximate otherwise. It validates like a real estimator and is atomic.
- Broken variants, each with one defect the unlearning checks must catch.
"""

from numbers import Real

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sklunlearn.base import UnlearningMixin, check_weights
from sklunlearn.posterior import GaussianPosterior


class ColumnRegressor(RegressorMixin, BaseEstimator):
    """Predictive mean ``X[:, first_column]`` and std ``X[:, first_column + 1]``."""

    def __init__(self, first_column=0):
        self.first_column = first_column

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X, return_std=False):
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        mean, std = X[:, self.first_column], X[:, self.first_column + 1]
        return (mean, std) if return_std else mean


class PointRegressor(ColumnRegressor):
    """Like ColumnRegressor, but ``predict`` has no ``return_std``."""

    def predict(self, X):
        return super().predict(X)


class ColumnClassifier(ClassifierMixin, BaseEstimator):
    """Probabilities: the ``len(classes)`` columns of ``X`` from ``first_column`` on."""

    def __init__(self, classes=(0, 1), first_column=0):
        self.classes = classes
        self.first_column = first_column

    def fit(self, X, y=None):
        self.classes_ = np.asarray(self.classes)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        start = self.first_column
        return np.asarray(X, dtype=np.float64)[:, start : start + len(self.classes_)]

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ToyUnlearningClassifier(UnlearningMixin, ClassifierMixin, BaseEstimator):
    """Bayesian least squares on targets ``2y - 1``; forgetting removes a fraction.

    Precision ``prior_precision I + X'WX``, mean ``precision^-1 X'W(2y - 1)``
    (with a constant feature for the intercept), ``P(y=1|x) = expit(x.mean)``.
    """

    _parameter_constraints: dict = {
        "forget_fraction": [Interval(Real, 0, 1, closed="both")],
        "prior_precision": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, forget_fraction=0.9, prior_precision=1.0):
        self.forget_fraction = forget_fraction
        self.prior_precision = prior_precision

    @property
    def _unlearning_is_exact(self):
        return self.forget_fraction == 1.0

    def fit(self, X, y, sample_weight=None):
        self._validate_params()
        return self._change(X, y, sample_weight, 1.0, reset=True)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        return self._change(X, y, sample_weight, 1.0, reset=not hasattr(self, "gram_"))

    def partial_unfit(self, X, y, sample_weight=None):
        check_is_fitted(self)
        return self._change(X, y, sample_weight, -self.forget_fraction, reset=False)

    def _validated(self, X, y, sample_weight, sign, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        check_classification_targets(y)
        if reset:
            self.classes_ = np.array([0, 1])
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"Unknown labels {unknown}.")
        weights = check_weights(sample_weight, X, allow_all_zero=sign <= 0)
        if sign <= 0:
            weights = self._forgotten_weights(weights)
        return X, y, weights

    def _forgotten_weights(self, weights):
        """Hook for a broken variant: the weights partial_unfit actually forgets."""
        return weights

    def _change(self, X, y, sample_weight, sign, reset):
        with self._atomic():
            X, y, weights = self._validated(X, y, sample_weight, sign, reset)
            features = np.hstack([X, np.ones((X.shape[0], 1))])
            d = features.shape[1]
            gram = 0.0 if reset else self.gram_
            moment = 0.0 if reset else self.moment_
            weight_sum = 0.0 if reset else self.weight_sum_
            n_rows = 0 if reset else self.n_rows_
            batch_rows = int(np.count_nonzero(weights))
            if sign <= 0 and (batch_rows > n_rows or weights.sum() > weight_sum + 1e-9):
                raise ValueError("Cannot forget more rows or weight than were learned.")
            self.gram_ = gram + sign * features.T @ (weights[:, None] * features)
            self.moment_ = moment + sign * features.T @ (weights * (2.0 * y - 1.0))
            self.weight_sum_ = weight_sum + sign * weights.sum()
            self.n_rows_ = n_rows + int(np.sign(sign)) * batch_rows
            precision = self.prior_precision * np.eye(d) + self.gram_
            prior_centred = GaussianPosterior.from_precision(np.zeros(d), precision)
            self.posterior_ = GaussianPosterior.from_cholesky(
                prior_centred.solve(self.moment_), prior_centred.precision_cholesky
            )
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        p = expit(np.hstack([X, np.ones((X.shape[0], 1))]) @ self.posterior_.mean)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ClaimsExactToy(ToyUnlearningClassifier):
    """Broken: approximate forgetting declared exact."""

    _unlearning_is_exact = True


class NonAtomicToy(ToyUnlearningClassifier):
    """Broken: counts calls to partial_unfit, even those it rejects."""

    def partial_unfit(self, X, y, sample_weight=None):
        self.n_unfit_calls_ = getattr(self, "n_unfit_calls_", 0) + 1
        return super().partial_unfit(X, y, sample_weight)


class WeightIgnoringToy(ToyUnlearningClassifier):
    """Broken: forgets every row with weight one, whatever ``sample_weight`` says.

    Otherwise exact (``forget_fraction=1`` by default).
    """

    def __init__(self, *, forget_fraction=1.0, prior_precision=1.0):
        super().__init__(forget_fraction=forget_fraction, prior_precision=prior_precision)

    def _forgotten_weights(self, weights):
        return np.ones_like(weights)


class AcceptsUnfittedToy(ToyUnlearningClassifier):
    """Broken: partial_unfit before fit silently fits."""

    def partial_unfit(self, X, y, sample_weight=None):
        first = not hasattr(self, "gram_")
        return self._change(
            X, y, sample_weight, 1.0 if first else -self.forget_fraction, reset=first
        )


class RelearnsClassesToy(ToyUnlearningClassifier):
    """Broken: partial_unfit re-learns classes_ from the forgotten labels."""

    def partial_unfit(self, X, y, sample_weight=None):
        super().partial_unfit(X, y, sample_weight)
        self.classes_ = np.unique(y)
        return self
