"""Exceptions and warnings raised by sklunlearn.

``NumbaCacheWarning`` (a ``RuntimeWarning``, imported from here on first use): the on-disk
Numba cache could not be read or written, and the kernels were compiled instead.
"""

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


def __getattr__(name):
    # NumbaCacheWarning lives with the compile options; importing it here on
    # first use keeps ``import sklunlearn.exceptions`` from importing Numba.
    if name == "NumbaCacheWarning":
        from ._numba._config import NumbaCacheWarning

        return NumbaCacheWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
