"""Derivatives of stationary cross-covariances in their log length scales, per block.

For ``K = cross_kernel(X, Z, 1 / l, s, kind)`` (see
:mod:`sklunlearn._numba.stationary`), with ``xs = x / l`` and
``h(r) = -g'(r) / r``,
``dK[i, u] / dlog l_q = K[i, u] (h / g)(r_iu) (xs_iq - zs_uq)^2``
(Rasmussen and Williams 2006, eqs. 4.9 and 4.17); an isotropic kernel's one
length scale has the sum over ``q``. :func:`length_scale_derivatives` fills
these b x m slices in one walk over the pairs, reusing ``K`` so that it
evaluates no exponential; the collapsed bound's moments contract them with
``K`` by BLAS (:mod:`sklunlearn.gaussian_process._bound_moments`). Compiled
without fastmath: the moments must equal, to round-off, the in-memory
gradient that they replace.
"""

import numpy as np

from ._config import jit
from .stationary import KIND_RBF, _checked, _scaled, _slope_ratio, _squared_distances

__all__ = ["length_scale_derivatives"]


@jit(fastmath=False)
def _length_scale_derivatives(Xs, Zst, kind, K, out):
    """``out[i, q, u] = dK[i, u] / dlog l_q`` (``q`` summed into slot 0 when
    ``out`` has one slot); ``out`` starts at zero."""
    m = Zst.shape[1]
    summed = out.shape[1] == 1
    squared = np.empty(m)
    factor = np.empty(m)
    for i in range(Xs.shape[0]):
        if kind != KIND_RBF:
            _squared_distances(Xs, i, Zst, squared)
        for u in range(m):
            factor[u] = (
                K[i, u] if kind == KIND_RBF else K[i, u] * _slope_ratio(squared[u], kind)
            )
        for q in range(Xs.shape[1]):
            slot = 0 if summed else q
            x = Xs[i, q]
            for u in range(m):
                difference = x - Zst[q, u]
                out[i, slot, u] += factor[u] * difference * difference


def length_scale_derivatives(X, Z, inverse_length_scales, kind, K, isotropic):
    """``dK / dlog l`` for ``K = cross_kernel(X, Z, inverse_length_scales, ., kind)``.

    Parameters
    ----------
    X : ndarray of shape (b, p)
    Z : ndarray of shape (m, p)
    inverse_length_scales : ndarray of shape (p,)
        ``1 / l`` per feature (one value repeated for an isotropic kernel).
    kind : int
        One of the ``KIND_*`` constants of :mod:`sklunlearn._numba.stationary`.
    K : ndarray of shape (b, m)
        The cross-covariance at these hyperparameters.
    isotropic : bool
        Differentiate w.r.t. one length scale shared by all features.

    Returns
    -------
    derivatives : ndarray of shape (b, 1 or p, m)
        ``derivatives[i, q, u] = dK[i, u] / dlog l_q`` (one slot when isotropic).
    """
    X, Z, inverse_length_scales = _checked(X, Z, inverse_length_scales, kind)
    K = np.ascontiguousarray(K, dtype=np.float64)
    if K.shape != (X.shape[0], Z.shape[0]):
        raise ValueError(f"K must have shape {(X.shape[0], Z.shape[0])}, got {K.shape}.")
    out = np.zeros((X.shape[0], 1 if isotropic else X.shape[1], Z.shape[0]))
    Xs, Zst = _scaled(X, Z, inverse_length_scales)
    _length_scale_derivatives(Xs, Zst, kind, K, out)
    return out
