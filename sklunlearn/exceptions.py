"""Exceptions and warnings raised by sklunlearn."""

import numpy as np

__all__ = ["NotPositiveDefiniteError", "UnlearningWarning"]


class NotPositiveDefiniteError(np.linalg.LinAlgError, ValueError):
    """A precision (or Gram) matrix is not, or would no longer be, positive definite.

    Raised for instance when ``partial_unfit`` is asked to forget rows that were
    never learned, so that subtracting their contribution leaves an indefinite
    matrix. The estimator or posterior that raised it is left unchanged.
    """


class UnlearningWarning(UserWarning):
    """Forgetting may be inexact or may have left information behind."""
