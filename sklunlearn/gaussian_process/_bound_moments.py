"""The collapsed bound and its gradient from sums that one sweep over the rows gives.

:func:`~sklunlearn.gaussian_process._bound.collapsed_bound` sweeps the rows
twice: its second sweep contracts each block's kernel derivatives with the
bound's partial derivatives, which need the solve of the first. The bound
depends on the rows only through ``Psi = K_uf W K_fu``, ``phi = K_uf W t``,
``sum w t^2``, ``sum w k_ii`` and ``sum w``, so its derivative in a kernel
hyperparameter ``theta_j`` needs only the derivatives of those sums, which are
sums over rows too:

- ``dPsi/dtheta_j = B_j + B_j'`` with ``B_j = dK_uf/dtheta_j W K_fu`` (m x m),
  kept as ``D_j = B_j L^-T`` (``K_uu = L L'``): with the whitened features, as
  the bound has them, because ``dF/dPsi``'s entries are huge where ``K_uu`` is
  ill-conditioned and ``B_j`` itself would lose the part that cancels the
  ``K_uu`` term,
- ``dphi/dtheta_j = e_j = dK_uf/dtheta_j W t`` (m,),
- ``d(sum w k_ii)/dtheta_j = c_j = sum w dk_ii/dtheta_j``.

With the partials of :func:`~sklunlearn.gaussian_process._bound.bound_partials`
(``dF/dPsi`` symmetric), ``dF/dtheta_j = dF/dK_uu : dK_uu/dtheta_j
+ 2 (dF/dPsi L) : D_j + dF/dphi . e_j - c_j / (2 s2)``. One sweep therefore
accumulates the bound's sums (whitened, as the two-sweep bound does) and
these moments, and the client does O(m^3 + p m^2) work. Derivatives in the
inducing locations would need ``Psi``'s derivative in each of the m p
coordinates of ``Z`` (m x m x m p numbers): they keep the two sweeps.
"""

import numpy as np

from .._numba.sgpr_moments import length_scale_derivatives
from ._bound import (
    _GRADIENT_BLOCK_ENTRIES,
    BoundEvaluation,
    _blocks,
    _GeneralCross,
    _StationaryCross,
    _whitened_sums,
    bound_partials,
)

__all__ = ["bound_moments", "moments_evaluation"]


def _stationary_derivatives(cross, X, K, weights):
    """``(dK, c)`` for a :class:`StationarySpec` kernel: ``dK[i, j, u] =
    dK[i, u] / dtheta_j`` and ``c_j = sum w dk_ii/dtheta_j``.

    ``k_ii = variance + white`` for every row; ``K`` excludes the white noise,
    which only the diagonal carries.
    """
    spec = cross.spec
    dK = np.zeros((X.shape[0], cross.n_theta, K.shape[1]))
    c = np.zeros(cross.n_theta)
    W = float(np.sum(weights))
    if spec.variance_index is not None:
        dK[:, spec.variance_index] = K
        c[spec.variance_index] = W * spec.variance
    if spec.length_index is not None:
        lengths = length_scale_derivatives(
            X, cross.Z, cross.inverse_length_scales, spec.kind, K, spec.isotropic
        )
        dK[:, spec.length_index : spec.length_index + lengths.shape[1]] = lengths
    if spec.white_index is not None:
        c[spec.white_index] = W * spec.white
    return dK, c


def _general_derivatives(cross, X, K, weights):
    """The same for any kernel, from its ``eval_gradient`` on the stacked
    ``[X_b; Z]`` (O((b + m)^2 p) per block)."""
    b = X.shape[0]
    _, gradient = cross.kernel(np.vstack([X, cross.Z]), eval_gradient=True)
    dK = np.ascontiguousarray(gradient[:b, b:, :].transpose(0, 2, 1))
    return dK, weights @ np.einsum("iij->ij", gradient[:b, :b, :])


_DERIVATIVES = {
    _StationaryCross: _stationary_derivatives,
    _GeneralCross: _general_derivatives,
}


def _block_rows(setup):
    """Rows per block: the bound's own, fewer when the b x p x m derivatives
    would pass the gradient's memory budget."""
    m, n_theta = setup.factor.cholesky.shape[0], setup.cross.n_theta
    return min(setup.block, max(16, _GRADIENT_BLOCK_ENTRIES // (m * (n_theta + 1))))


def bound_moments(setup, X, t, weights):
    """The one sweep over rows ``X`` (one chunk of them) for :func:`moments_evaluation`.

    Parameters
    ----------
    setup : BoundSetup
        From :func:`~sklunlearn.gaussian_process._bound.bound_setup` without
        derivatives in the inducing locations.
    X : ndarray of shape (n, p)
    t : ndarray of shape (n,)
        Model targets (normalised).
    weights : ndarray of shape (n,)

    Returns
    -------
    moments : tuple
        ``(A, b, yy, kdiag, W, D, e, c)``: the fields of
        :class:`~sklunlearn.gaussian_process._bound.BoundSums`, then ``D``
        (p, m, m), ``e`` (p, m) and ``c`` (p,) of the module docstring, for
        ``p = len(kernel.theta)``. A plain tuple, so that the chunks' moments
        add elementwise.
    """
    if setup.with_inducing:
        raise ValueError("Derivatives in the inducing locations need two sweeps.")
    cross, factor = setup.cross, setup.factor
    m, n_theta = factor.cholesky.shape[0], cross.n_theta
    derivatives = _DERIVATIVES[type(cross)]
    aa, b = np.zeros((m, m)), np.zeros(m)
    yy = kdiag = 0.0
    D, e, c = np.zeros((n_theta * m, m)), np.zeros(n_theta * m), np.zeros(n_theta)
    block = _block_rows(setup)
    for rows in _blocks(X.shape[0], block):
        w, t_block = weights[rows], t[rows]
        part_aa, part_b, part_yy, part_kdiag, (K, features) = _whitened_sums(
            cross, factor, X[rows], t_block, w, block, keep_features=True, keep_matrix=True
        )
        aa += part_aa
        b += part_b
        yy += part_yy
        kdiag += part_kdiag
        dK, part_c = derivatives(cross, X[rows], K, w)
        # Rows (j, u) of dK' are dK[:, u]/dtheta_j: one product gives every D_j, taken
        # with the whitened features (L^-1 K')', as the bound has them: with K itself,
        # dF/dPsi's huge entries lose the part that cancels the K_uu part where K_uu
        # is ill-conditioned. The kept features are sqrt(w_i) a_i: w_i a_i is their
        # columns times sqrt(w_i).
        dK = dK.reshape(K.shape[0], n_theta * m)
        D += dK.T @ (np.sqrt(w)[:, None] * features.T)
        e += dK.T @ (w * t_block)
        c += part_c
    W = float(np.sum(weights))
    return (aa, b, yy, kdiag, W, D.reshape(n_theta, m, m), e.reshape(n_theta, m), c)


def moments_evaluation(setup, moments, noise_variance):
    """The collapsed bound and its gradient from summed :func:`bound_moments`.

    Parameters
    ----------
    setup : BoundSetup
        The one the moments were computed with.
    moments : tuple
        The sum over all rows of :func:`bound_moments`.
    noise_variance : float

    Returns
    -------
    evaluation : BoundEvaluation
        Without an inducing-location gradient.
    """
    s2 = float(noise_variance)
    sums, (D, e, c) = moments[:5], moments[5:]
    posterior, partial, (theta, _) = bound_partials(setup, sums, s2)
    # dF/dtheta_j = dF/dK_uu : dK_uu/dtheta_j + 2 (dF/dPsi L) : D_j + dF/dphi . e_j
    #               - c_j / (2 s2)  (module docstring)
    theta = (
        theta
        + 2.0 * np.einsum("vu,juv->j", partial.d_Psi_whitened, D)
        + e @ partial.d_phi
        - 0.5 / s2 * c
    )
    return BoundEvaluation(posterior.bound, np.append(theta, s2 * partial.d_s2), None)
