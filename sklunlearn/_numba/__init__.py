"""Numba kernels, each behind a checked Python wrapper.

Only the wrappers are public to the rest of the package; kernels take
contiguous float64 arrays and return a status code.
"""

from .cholesky import CholeskyUpdateError, cholesky_rank_k_update
from .glm import expected_logistic_terms, logistic_terms, weighted_gram

__all__ = [
    "CholeskyUpdateError",
    "cholesky_rank_k_update",
    "expected_logistic_terms",
    "logistic_terms",
    "weighted_gram",
]
