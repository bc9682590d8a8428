"""Gaussian variational posteriors fitted with reparameterised gradients.

``q = N(m, L L')`` (``L`` lower triangular, its diagonal through a log) or
``q = N(m, diag(sigma^2))`` (``log sigma``) maximises the evidence lower bound

    ELBO(q) = E_q[sum_i w_i log p(y_i | f(x_i; theta))] - KL(q || prior)

(Blei, Kucukelbir and McAuliffe 2017, sec. 2.2). The expectation is a sample
average over ``theta_s = m + L eps_s`` (the reparameterisation of Kingma and
Welling 2014, sec. 2.4; Titsias and Lazaro-Gredilla 2014, sec. 2), whose
gradients are the predictor's ``J' v`` at each ``theta_s`` (one batched pass
over all draws per block of rows):
``d/dm = mean_s g_s`` and ``d/dL = tril(mean_s g_s eps_s')``, with
``g_s = J(theta_s)' (w * d log p / df)``. The KL divergence between two
Gaussians is in closed form.

The draws ``eps_s`` are made once, from a fixed seed (common random numbers):
the objective is then a deterministic, smooth function of ``(m, L)`` (a sample
average approximation, Kleywegt, Shapiro and Homem-de-Mello 2002), so a
quasi-Newton method (L-BFGS-B) optimises it and reports convergence; its
optimum is that of the sampled objective, close to the exact one only when
the number of draws is large against the directions the data constrain.
"""

from typing import NamedTuple

import numpy as np
from scipy import linalg, optimize
from sklearn.utils import check_random_state

from .._diagonal_posterior import DiagonalGaussianPosterior
from ..posterior import GaussianPosterior

__all__ = [
    "ReparameterisedELBO",
    "ReparameterisedFit",
    "expected_log_likelihood",
    "maximise",
    "reparameterised_vi",
]

# Entries of one batched pass's activations (draws x rows x width): 16 MiB.
ACTIVATION_ENTRIES = 2**21
# L-BFGS-B's relative decrease test, as for the MAP (see _training.lbfgs_fit).
_SCIPY_FTOL = 2.220446049250313e-09


class ReparameterisedFit(NamedTuple):
    """Result of :func:`reparameterised_vi`.

    Attributes
    ----------
    posterior : GaussianPosterior or DiagonalGaussianPosterior
        The variational posterior ``q`` (full or diagonal covariance).
    n_iter : int
        L-BFGS-B iterations.
    converged : bool
        False when the iteration budget ran out before the tolerance was met.
    elbo : float
        The sampled ELBO at ``q`` (the objective that was maximised).
    """

    posterior: object
    n_iter: int
    converged: bool
    elbo: float


class _PriorTerms:
    """``KL(q || prior)`` pieces of a Gaussian prior with a full or diagonal precision.

    ``KL = (tr(P0 S) + (m - m0)' P0 (m - m0) - d + log|S0| - log|S|) / 2``
    (Rasmussen and Williams 2006, eq. A.23), ``P0 = S0^-1`` the prior precision.
    """

    def __init__(self, prior):
        self.mean = np.asarray(prior.mean, dtype=np.float64)
        self.precision = np.asarray(prior.precision, dtype=np.float64)
        self.log_det_covariance = float(prior.log_det_covariance())

    def times(self, matrix):
        """``P0 @ matrix`` for a vector or a matrix."""
        if self.precision.ndim == 2:
            return self.precision @ matrix
        return self.precision.reshape(-1, *([1] * (matrix.ndim - 1))) * matrix

    def diagonal(self):
        """The diagonal of ``P0``."""
        if self.precision.ndim == 2:
            return np.diag(self.precision).copy()
        return self.precision

    def kl(self, mean, trace, log_det_q):
        """``(KL, d KL / d m)`` given ``tr(P0 S)`` and ``log|S|``."""
        shift = mean - self.mean
        pulled = self.times(shift)
        value = 0.5 * (
            trace + shift @ pulled - mean.size + self.log_det_covariance - log_det_q
        )
        return value, pulled


def expected_log_likelihood(model, X, y, weights, thetas, block_rows=None):
    """Sample average of the rows' log-likelihood, and its gradient at each draw.

    Parameters
    ----------
    model : Model
        An :class:`MLPPredictor` (its passes take a batch of parameter vectors)
        and a likelihood (``row_terms``).
    X : ndarray of shape (n, n_features)
    y, weights : ndarrays of shape (n,)
    thetas : ndarray of shape (S, p)
        The parameter draws ``theta_s``.
    block_rows : int, default=None
        Rows per batched pass; None keeps every pass's activations, ``S x rows
        x width``, within ``ACTIVATION_ENTRIES``.

    Returns
    -------
    value : float
        ``mean_s sum_i w_i log p(y_i | f(x_i; theta_s))``.
    gradients : ndarray of shape (S, p)
        ``J(theta_s)' (w * d log p / df)`` per draw (not divided by ``S``).
    """
    predictor, likelihood = model.predictor, model.likelihood
    if block_rows is None:
        widest = max(predictor.layer_sizes)
        block_rows = max(16, ACTIVATION_ENTRIES // (thetas.shape[0] * widest))
    value, gradients = 0.0, np.zeros_like(thetas)
    for start in range(0, X.shape[0], block_rows):
        rows = slice(start, start + block_rows)
        inputs, f = predictor.forward(X[rows], thetas)  # f: (S, rows)
        log_p, derivative, _ = likelihood.row_terms(f, y[rows])
        value += np.sum(log_p @ weights[rows])
        deltas = predictor.backward(inputs, thetas, weights[rows] * derivative)
        gradients += predictor.gradient_from(inputs, deltas)
    return value / thetas.shape[0], gradients


class ReparameterisedELBO:
    """The sampled ELBO of a Gaussian family as a function of a flat vector.

    The vector is ``[m, the lower triangle of L row by row, its diagonal as
    log]`` (``covariance='full'``) or ``[m, log sigma]`` (``'diagonal'``).

    Parameters
    ----------
    prior : GaussianPosterior or DiagonalGaussianPosterior
        The prior of the rows (the current posterior when adding rows).
    model : Model
        An :class:`MLPPredictor` and a likelihood (whose parameters stay fixed).
    X : ndarray of shape (n, n_features)
    y, weights : ndarrays of shape (n,)
    draws : ndarray of shape (S, p)
        The standard normal ``eps_s``, fixed for every evaluation.
    covariance : {'full', 'diagonal'}, default='full'
    block_rows : int, default=None
        Rows per batched pass (see :func:`expected_log_likelihood`).
    """

    def __init__(self, prior, model, X, y, weights, draws, covariance="full", *,
                 block_rows=None):  # fmt: skip
        if covariance not in ("full", "diagonal"):
            raise ValueError(
                f"covariance must be 'full' or 'diagonal', got {covariance!r}."
            )
        self.prior = _PriorTerms(prior)
        self.model, self.X, self.y, self.weights = model, X, y, weights
        self.draws = np.asarray(draws, dtype=np.float64)
        if self.draws.ndim != 2 or self.draws.shape[1] != self.prior.mean.size:
            raise ValueError(
                f"draws must have shape (n_samples, {self.prior.mean.size}), got "
                f"{self.draws.shape}."
            )
        self.covariance = covariance
        self.block_rows = block_rows
        p = self.prior.mean.size
        self._lower = np.tril_indices(p)
        self._diagonal = np.flatnonzero(self._lower[0] == self._lower[1])

    # ---------------------------------------------------------------- layout
    def pack(self, mean, scale):
        """The flat vector of ``mean`` and ``L`` (full) or ``sigma`` (diagonal)."""
        if self.covariance == "diagonal":
            return np.concatenate([mean, np.log(scale)])
        entries = scale[self._lower]
        entries[self._diagonal] = np.log(entries[self._diagonal])
        return np.concatenate([mean, entries])

    def unpack(self, x):
        """``(m, L)`` (full, L lower triangular) or ``(m, sigma)`` (diagonal)."""
        p = self.prior.mean.size
        mean = x[:p]
        if self.covariance == "diagonal":
            return mean, np.exp(x[p:])
        entries = x[p:].copy()
        entries[self._diagonal] = np.exp(entries[self._diagonal])
        factor = np.zeros((p, p))
        factor[self._lower] = entries
        return mean, factor

    def start(self, posterior):
        """The vector of a Gaussian start (the Laplace posterior).

        Full: ``L`` the Cholesky factor of its covariance. Diagonal:
        ``sigma_j = P_jj^-1/2``, the variances of the diagonal Gaussian closest to
        it in ``KL(q || start)``.
        """
        precision = np.asarray(posterior.precision, dtype=np.float64)
        if self.covariance == "diagonal":
            diagonal = np.diag(precision) if precision.ndim == 2 else precision
            return self.pack(posterior.mean, 1.0 / np.sqrt(diagonal))
        covariance = posterior.covariance if precision.ndim == 2 else np.diag(1 / precision)
        return self.pack(posterior.mean, linalg.cholesky(covariance, lower=True))

    def posterior(self, x):
        """The Gaussian of the vector ``x``."""
        mean, scale = self.unpack(x)
        if self.covariance == "diagonal":
            return DiagonalGaussianPosterior(mean, 1.0 / scale**2)
        return GaussianPosterior.from_covariance(mean, scale @ scale.T)

    # ------------------------------------------------------------- objective
    def __call__(self, x):
        """``(ELBO, d ELBO / d x)`` at the vector ``x``."""
        mean, scale = self.unpack(x)
        S = self.draws.shape[0]
        if self.covariance == "diagonal":
            thetas = mean + self.draws * scale
        else:
            thetas = mean + self.draws @ scale.T
        expected, gradients = expected_log_likelihood(
            self.model, self.X, self.y, self.weights, thetas, self.block_rows
        )
        if self.covariance == "diagonal":
            kl, kl_mean, kl_scale = self._diagonal_kl(mean, scale)
            scale_gradient = (gradients * self.draws).sum(axis=0) / S - kl_scale
            log_gradient = scale_gradient * scale  # d sigma / d log sigma = sigma
        else:
            kl, kl_mean, kl_scale = self._full_kl(mean, scale)
            scale_gradient = (gradients.T @ self.draws / S - kl_scale)[self._lower]
            log_gradient = scale_gradient
            log_gradient[self._diagonal] *= np.diag(scale)  # d L_jj / d log L_jj
        mean_gradient = gradients.sum(axis=0) / S - kl_mean
        return expected - kl, np.concatenate([mean_gradient, log_gradient])

    def _full_kl(self, mean, factor):
        """``KL`` and its gradients in ``m`` and ``L``: ``P0 L - diag(1 / L_jj)``."""
        pulled = self.prior.times(factor)
        diagonal = np.diag(factor)
        kl, kl_mean = self.prior.kl(
            mean, np.sum(factor * pulled), 2.0 * np.sum(np.log(diagonal))
        )
        pulled[np.diag_indices_from(pulled)] -= 1.0 / diagonal
        return kl, kl_mean, pulled

    def _diagonal_kl(self, mean, sigma):
        """``KL`` and its gradients (in ``sigma``: ``P0_jj sigma_j - 1 / sigma_j``)."""
        precision = self.prior.diagonal()
        kl, kl_mean = self.prior.kl(mean, precision @ sigma**2, 2.0 * np.sum(np.log(sigma)))
        return kl, kl_mean, precision * sigma - 1.0 / sigma


def reparameterised_vi(prior, model, X, y, weights, *, start, covariance="full",
                       n_samples=100, random_state=0, max_iter=500, tol=1e-5):  # fmt: skip
    """Fit a Gaussian variational posterior by L-BFGS-B on the sampled ELBO.

    Parameters
    ----------
    prior : GaussianPosterior or DiagonalGaussianPosterior
        The prior of the rows: the isotropic prior at a fit, the current
        posterior when rows are added.
    model : Model
        An :class:`MLPPredictor` and a likelihood; the likelihood's parameters
        (a Gaussian's noise precision) stay fixed.
    X : ndarray of shape (n, n_features)
    y, weights : ndarrays of shape (n,)
    start : GaussianPosterior or DiagonalGaussianPosterior
        Where the optimisation starts, e.g. the Laplace posterior at the MAP.
    covariance : {'full', 'diagonal'}, default='full'
        ``N(m, L L')`` with ``p (p + 1) / 2`` parameters in ``L`` (small
        networks), or ``N(m, diag(sigma^2))``.
    n_samples : int, default=100
        Draws ``eps_s`` of the sampled expectation, made once.
    random_state : int, RandomState instance or None, default=0
        Seed of the draws: the same seed gives the same objective and result.
    max_iter : int, default=500
        L-BFGS-B iterations.
    tol : float, default=1e-5
        L-BFGS-B's tolerance on the largest entry of the projected gradient.

    Returns
    -------
    ReparameterisedFit
        The posterior, iterations, whether L-BFGS-B converged, and the ELBO.

    Notes
    -----
    The draws are common random numbers: each evaluation reuses them, so the
    objective is deterministic and smooth and L-BFGS-B's line searches and
    convergence test are valid (Kingma and Welling 2014; Titsias and
    Lazaro-Gredilla 2014, who use fresh draws with stochastic steps instead).
    The optimum is that of the sampled objective: with few draws, directions
    that no draw explores keep the prior's spread. For a model linear in its
    parameters the sampled ELBO is the exact one with the draws' sample mean
    and second moment in place of 0 and ``I`` (with a Gaussian likelihood).

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
    Titsias, M. and Lazaro-Gredilla, M. (2014). Doubly stochastic variational
    Bayes for non-conjugate inference. ICML.
    Kleywegt, A. J., Shapiro, A. and Homem-de-Mello, T. (2002). The sample
    average approximation method for stochastic discrete optimization. SIAM J.
    Optim. 12(2).
    """
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples!r}.")
    p = prior.mean.shape[0]
    draws = check_random_state(random_state).standard_normal((int(n_samples), p))
    elbo = ReparameterisedELBO(prior, model, X, y, weights, draws, covariance)
    return maximise(elbo, elbo.start(start), max_iter=max_iter, tol=tol)


def maximise(elbo, x0, *, max_iter, tol):
    """Run L-BFGS-B on ``-elbo`` from ``x0``; a :class:`ReparameterisedFit`.

    :func:`reparameterised_vi` with draws given instead of a seed.
    """

    def negative(x):
        value, gradient = elbo(x)
        return -value, -gradient

    result = optimize.minimize(
        negative,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": min(_SCIPY_FTOL, 1e-4 * tol)},
    )
    # status 1: the iteration or evaluation budget ran out
    return ReparameterisedFit(
        elbo.posterior(result.x), int(result.nit), result.status != 1, -float(result.fun)
    )
