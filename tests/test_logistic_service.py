"""BayesianLogisticRegression as a deletion service: forgets interleaved with partial_fit.

Requests of a few rows are divided out, as their union, of an anchor that learns
every row ``partial_fit`` adds; each step is compared with a refit on the rows
that remain and with doing nothing (the model fitted on every row ever learned).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _service(X, y, seed, n_steps):
    """Yield ``(estimator, remaining rows, rows ever learned)`` after every forget."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(y.shape[0])
    remaining, pool = list(order[:340]), list(order[340:])
    estimator = BayesianLogisticRegression().fit(X[remaining], y[remaining])
    seen = list(remaining)
    for _ in range(n_steps):
        if rng.rand() < 0.25:
            new = [pool.pop() for _ in range(rng.randint(1, 6))]
            estimator.partial_fit(X[new], y[new])
            remaining += new
            seen += new
        picked = set(rng.choice(len(remaining), rng.randint(1, 6), replace=False))
        request = [row for i, row in enumerate(remaining) if i in picked]
        remaining = [row for i, row in enumerate(remaining) if i not in picked]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.partial_unfit(X[request], y[request])
        yield estimator, remaining, seen


def _distances(X, y, estimator, remaining, seen):
    """KL to the refit on ``remaining``: of the service, and of doing nothing."""
    refit = BayesianLogisticRegression().fit(X[remaining], y[remaining]).posterior_
    nothing = BayesianLogisticRegression().fit(X[seen], y[seen]).posterior_
    return estimator.posterior_.kl_divergence(refit), nothing.kl_divergence(refit)


@pytest.mark.parametrize("seed", [2, 3])
def test_interleaved_service_ends_near_the_refit(cancer, seed):
    X, y = cancer
    *_, (estimator, remaining, seen) = _service(X, y, seed, 80)
    service, nothing = _distances(X, y, estimator, remaining, seen)
    assert service < 0.5 * nothing


def test_interleaved_forgets_worse_than_doing_nothing_warn(cancer):
    X, y = cancer
    silent = []
    for step, (estimator, remaining, seen) in enumerate(_service(X, y, 2, 80)):
        service, nothing = _distances(X, y, estimator, remaining, seen)
        if service > nothing and not estimator.forget_report_.warnings:
            silent.append((step, service, nothing))
    assert not silent


def test_partial_fit_keeps_the_pending_anchor(cancer):
    """After a learn, a request divides the union out of the anchor that learned it too.

    The anchor is the fitted posterior with the new rows learned, and the
    union's site is the one taken at the fit's mean: the precision is the
    anchor's less the forgotten rows' curvature at the fit's mean, exactly.
    """
    X, y = cancer
    first, new, second = np.arange(0, 3), np.arange(300, 304), np.arange(3, 6)
    rows = np.arange(6, 300)
    estimator = BayesianLogisticRegression().fit(
        X[np.r_[first, second, rows]], y[np.r_[first, second, rows]]
    )
    fitted = estimator.posterior_
    estimator.partial_unfit(X[first], y[first])
    estimator.partial_fit(X[new], y[new])
    estimator.partial_unfit(X[second], y[second])
    anchor = BayesianLogisticRegression().fit(
        X[np.r_[first, second, rows]], y[np.r_[first, second, rows]]
    )
    anchor.partial_fit(X[new], y[new])
    forgotten = np.r_[first, second]
    model = estimator.model_
    curvature = model.terms(
        X[forgotten], y[forgotten].astype(float), np.ones(6), fitted.mean, with_value=False
    ).hessian
    np.testing.assert_allclose(
        estimator.posterior_.precision,
        anchor.posterior_.precision - curvature,
        rtol=1e-9,
        atol=1e-9,
    )
