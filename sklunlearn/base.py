"""Shared machinery of the estimators that forget."""

import weakref
from contextlib import contextmanager

import numpy as np
from sklearn import get_config
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

__all__ = ["UnlearningMixin", "check_weights", "validate_rows"]

# get_params() -> _get_param_names() inspects __init__'s signature on every call;
# partial_fit/partial_unfit validate their parameters on every call, so the
# names are cached per class (the signature of a class does not change).
_PARAM_NAMES = {}
_MISSING = object()
# The parameter values each live estimator was last validated with (see
# UnlearningMixin._validate_params). Kept outside the instances so that
# their state, pickles and clones are unaffected, and forgotten with them.
_VALIDATED = weakref.WeakKeyDictionary()


class UnlearningMixin:
    """Mixin for estimators with ``partial_unfit``.

    Provides :meth:`_atomic`, which restores the estimator's attributes when
    the body raises, so that any rejected call leaves the estimator exactly as
    it was. Estimators must therefore never mutate a fitted array in place:
    they compute new objects and assign them.
    """

    @classmethod
    def _get_param_names(cls):
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = tuple(super()._get_param_names())
        return list(names)

    def _validate_params(self):
        """Validate the parameters, unless these very values were validated last.

        ``partial_fit``/``partial_unfit`` validate on every call (a parameter such
        as ``unlearning`` may be changed between requests), which costs tens of
        microseconds: a sizeable share of forgetting a few rows. The values
        validated last are remembered by identity; when every parameter is the
        same object, the result cannot differ (the constraints are on types,
        ranges and options of immutable values, and a mutated container keeps
        its type) and the check is skipped. Any ``set_params`` or assignment
        makes it run again; copies start without the record.
        ``sklearn.set_config(skip_parameter_validation=True)`` is honoured as
        by scikit-learn's own methods.
        """
        if get_config()["skip_parameter_validation"]:
            return
        names = self._get_param_names()
        values = tuple(self.__dict__.get(name, _MISSING) for name in names)
        try:
            validated = _VALIDATED.get(self)
        except TypeError:  # a subclass made instances unhashable: no record
            super()._validate_params()
            return
        if validated is not None and len(validated) == len(values) and all(
            a is b for a, b in zip(validated, values, strict=True)
        ):
            return
        super()._validate_params()
        _VALIDATED[self] = values

    def _check_fitted(self, attribute):
        """``check_is_fitted(self)``, at the cost of a dictionary lookup when fitted."""
        if attribute not in self.__dict__:
            check_is_fitted(self)
            # fitted by scikit-learn's test but without the attribute read next
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "with appropriate arguments before using this estimator."
            )

    @contextmanager
    def _atomic(self):
        saved = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise


def check_weights(sample_weight, X, allow_all_zero=False):
    """Validate ``sample_weight``: finite, non-negative, one per row of ``X``.

    ``None`` gives ones. All-zero weights are refused unless ``allow_all_zero``
    (forgetting rows with zero weight is a valid no-op; fitting on them is not).
    """
    if sample_weight is None:
        return np.ones(X.shape[0])  # what _check_sample_weight returns, without its checks
    return _check_sample_weight(
        sample_weight,
        X,
        dtype=np.float64,
        ensure_non_negative=True,
        allow_all_zero_weights=allow_all_zero,
    )


def validate_rows(estimator, X, y, *, y_numeric=False):
    """``validate_data(estimator, X, y, reset=False, dtype=np.float64)``, faster.

    When ``X`` is already a non-empty 2-D float64 ndarray of finite values and
    ``y`` a 1-D boolean, integer or finite floating ndarray of the same
    length, ``check_X_y`` would return both unchanged; only the feature-count
    and feature-name checks against the fitted estimator remain, and
    ``validate_data(..., skip_check_array=True)`` still runs those. Any other
    input goes through the full validation, with its messages. This saves
    about 0.1 ms per call, most of a small ``partial_unfit``. For an ndarray
    and an estimator fitted without feature names (nothing to compare), the
    feature count is checked here with scikit-learn's message.
    """
    if (
        type(X) is np.ndarray
        and type(y) is np.ndarray
        and X.dtype == np.float64
        and X.ndim == 2
        and y.ndim == 1
        and X.shape[0] == y.shape[0] > 0
        and X.shape[1] > 0
        and y.dtype.kind in "biuf"
        # sklearn's own fast test: a finite sum means no NaN and no inf
        and np.isfinite(X.sum())
        and (y.dtype.kind != "f" or np.isfinite(y.sum()))
    ):
        if "feature_names_in_" not in estimator.__dict__:
            # An ndarray has no feature names and none were fitted: of
            # validate_data's checks only the feature count is left.
            expected = estimator.__dict__.get("n_features_in_")
            if expected is not None and X.shape[1] != expected:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(estimator).__name__} "
                    f"is expecting {expected} features as input."
                )
            return X, y
        return validate_data(estimator, X, y, reset=False, skip_check_array=True)
    return validate_data(
        estimator, X, y, reset=False, dtype=np.float64, y_numeric=y_numeric
    )
