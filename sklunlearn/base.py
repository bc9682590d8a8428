"""Shared machinery of the estimators that forget."""

from contextlib import contextmanager

import numpy as np
from sklearn.utils.validation import _check_sample_weight

__all__ = ["UnlearningMixin"]


class UnlearningMixin:
    """Mixin for estimators with ``partial_unfit``.

    Provides :meth:`_atomic`, which restores the estimator's attributes when
    the body raises, so that any rejected call leaves the estimator exactly as
    it was. Estimators must therefore never mutate a fitted array in place:
    they compute new objects and assign them.
    """

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
    return _check_sample_weight(
        sample_weight,
        X,
        dtype=np.float64,
        ensure_non_negative=True,
        allow_all_zero_weights=allow_all_zero,
    )
