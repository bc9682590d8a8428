"""Learning rows: the Laplace fit and the Gaussian variational fit."""

from ._laplace import newton_fit
from ._variational import variational_update

__all__ = ["learn"]


def learn(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    max_iter=100,
    tol=1e-10,
    verbose=0,
):
    """Add rows' likelihood to ``posterior`` (the prior on a first fit).

    ``inference='laplace'`` runs Newton's method to the mode and takes the
    curvature there; ``'vi'`` fits a full-covariance Gaussian by maximising
    the evidence lower bound, started from the Laplace approximation (the
    natural-gradient fixed point of :func:`variational_update`; the iteration
    counts of both stages are added in ``n_iter``, each stage has ``max_iter``).

    Parameters
    ----------
    posterior : GaussianPosterior
        What is known before these rows: the prior on a first fit
        (``model.prior.posterior()``), or the posterior of rows learned
        before.
    model : Model
        Predictor, likelihood and prior.
    X : array-like of shape (n_samples, n_features)
        Rows, as the model's predictor takes them.
    y : array-like of shape (n_samples,)
        Targets, as the model's likelihood takes them.
    weights : array-like of shape (n_samples,)
        Non-negative weight of each row.
    inference : {'laplace', 'vi'}, default='laplace'
        Laplace approximation at the mode, or Gaussian variational fit.
    max_iter : int, default=100
        Iterations of each stage.
    tol : float, default=1e-10
        Convergence tolerance of each stage.
    verbose : int, default=0
        Print each iteration's objective and convergence measure when
        positive.

    Returns
    -------
    posterior : GaussianPosterior
        The posterior with the rows learned.
    diagnostics : Diagnostics
        ``n_iter`` and ``converged`` of the fit.
    """
    laplace, diagnostics = newton_fit(
        posterior, model, X, y, weights, max_iter=max_iter, tol=tol, verbose=verbose
    )
    if inference == "laplace":
        return laplace, diagnostics
    if inference != "vi":
        raise ValueError(f"inference must be 'laplace' or 'vi', got {inference!r}.")
    new, variational = variational_update(
        posterior,
        model,
        X,
        y,
        weights,
        sign=1.0,
        max_iter=max_iter,
        tol=tol,
        start=laplace,
        verbose=verbose,
    )
    return new, variational.replace(n_iter=diagnostics.n_iter + variational.n_iter)
