import copy
import pickle
import warnings

import numpy as np
import pytest
from scipy import linalg
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import predictive_kl


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def moons():
    """VBU's moon setting: data, fixed inducing inputs and kernel, erased mask."""
    X, y = make_moons(100, noise=0.2, random_state=0)
    Z = make_moons(20, noise=0.2, random_state=0)[0]
    kernel = C(4.7432, "fixed") * RBF(1 / np.sqrt([2.4232, 1.8230]), "fixed")
    erased = np.zeros(100, dtype=bool)
    erased[np.argsort(X[:, 0])[-20:]] = True
    return X, y, Z, kernel, erased


def whitened(kernel, Z, X):
    Kzz = kernel(Z)
    L = np.linalg.cholesky(Kzz + 1e-8 * np.mean(np.diag(Kzz)) * np.eye(len(Z)))
    return linalg.solve_triangular(L, kernel(Z, X), lower=True).T, L


@pytest.mark.parametrize("inference", ["laplace", "vi"])
def test_is_logistic_regression_on_whitened_features(inference):
    X, y, Z, kernel, _ = moons()
    est = SparseGPClassifier(kernel=kernel, inducing_points=Z, inference=inference)
    est.fit(X, y)
    A, L = whitened(kernel, Z, X)
    reference = BayesianLogisticRegression(
        alpha=1.0, fit_intercept=False, inference=inference
    ).fit(A, y)
    np.testing.assert_allclose(
        est.whitened_posterior_.mean, reference.posterior_.mean, rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(est.predict_proba(X), reference.predict_proba(A), atol=1e-8)
    # q(u) is q(v) mapped through u = L v
    np.testing.assert_allclose(
        est.posterior_.mean, L @ est.whitened_posterior_.mean, rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        est.posterior_.covariance,
        L @ est.whitened_posterior_.covariance @ L.T,
        rtol=1e-6,
        atol=1e-8,
    )


def test_posterior_kl_is_the_same_in_both_bases():
    X, y, Z, kernel, erased = moons()
    full = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X, y)
    retrained = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(
        X[~erased], y[~erased]
    )
    np.testing.assert_allclose(
        full.posterior_.kl_divergence(retrained.posterior_),
        full.whitened_posterior_.kl_divergence(retrained.whitened_posterior_),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "params, at_most",
    [
        (dict(unlearning="laplace"), 0.01),
        (dict(unlearning="eubo", unlearning_lambda=1e-9), 0.02),
        (dict(unlearning="rkl"), 0.9),
    ],
    ids=["laplace", "eubo-1e-9", "rkl-0"],
)
def test_forgetting_on_moons_beats_doing_nothing(params, at_most):
    """VBU's experiment: the methods move towards the retrained model.

    Measured (benchmarks/README.md): doing nothing 0.285 nats on the erased
    points, 'laplace' 0.0006, 'eubo' with lambda=1e-9 0.0017 (0.006x), 'rkl'
    0.16. Not EUBO with lambda = 0, which runs away here (catastrophic
    unlearning).
    """
    X, y, Z, kernel, erased = moons()
    model = SparseGPClassifier(
        kernel=kernel, inducing_points=Z, inference="vi", random_state=0, **params
    )
    full = model.fit(X, y)
    retrained = copy.deepcopy(model).fit(X[~erased], y[~erased])
    unlearned = copy.deepcopy(full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        unlearned.partial_unfit(X[erased], y[erased])
    nothing = predictive_kl(full, retrained, X[erased])
    assert nothing > 0.1  # the erased points matter
    assert predictive_kl(unlearned, retrained, X[erased]) < at_most * nothing


def test_monte_carlo_eubo_on_moons_reaches_its_fixed_point():
    """The adjusted-likelihood EUBO converges to a fixed point that does not
    depend on the number of draws beyond Monte Carlo error, silently.

    The fixed point straddles the region's boundary (a quarter of q outside):
    before the boundary was softened, the iterates cycled through it and ended
    anywhere between 0.002 and 0.16 nats depending on the draws.
    """
    X, y, Z, kernel, erased = moons()
    full = SparseGPClassifier(
        kernel=kernel,
        inducing_points=Z,
        inference="vi",
        unlearning="eubo",
        unlearning_lambda=1e-9,
        random_state=0,
    ).fit(X, y)
    results = []
    for n_samples in (1000, 4000):
        unlearned = copy.deepcopy(full).set_params(n_samples=n_samples)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnlearningWarning)
            unlearned.partial_unfit(X[erased], y[erased])
        diagnostics = unlearned.unlearning_diagnostics_
        assert diagnostics["residual"] < 1e-8 and not diagnostics["stalled"]
        assert 0.5 < diagnostics["final_region_mass"] < 0.9
        results.append(unlearned.whitened_posterior_)
    move = full.whitened_posterior_.kl_divergence(results[1])
    assert results[0].kl_divergence(results[1]) < 0.02 * move


def test_laplace_forgetting_on_banknote():
    X, y = load_banknote(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    kernel = C(2.0, "fixed") * RBF(1.5, "fixed")
    model = SparseGPClassifier(kernel=kernel, inducing_points=30, random_state=0)
    full = model.fit(X, y)
    forget = np.random.RandomState(0).rand(len(y)) < 0.1
    retrained = SparseGPClassifier(kernel=kernel, inducing_points=full.inducing_points_)
    retrained.fit(X[~forget], y[~forget])
    unlearned = copy.deepcopy(full).partial_unfit(X[forget], y[forget])
    after = unlearned.whitened_posterior_.kl_divergence(retrained.whitened_posterior_)
    before = full.whitened_posterior_.kl_divergence(retrained.whitened_posterior_)
    assert after < 0.2 * before


def test_set_params_after_fit_changes_the_forgetting_method():
    X, y, Z, kernel, erased = moons()
    full = SparseGPClassifier(kernel=kernel, inducing_points=Z, random_state=0).fit(X, y)
    laplace = copy.deepcopy(full).partial_unfit(X[erased], y[erased])
    rkl = copy.deepcopy(full).set_params(unlearning="rkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        rkl.partial_unfit(X[erased], y[erased])
    assert "effective_sample_size" in rkl.unlearning_diagnostics_.to_dict()  # rkl ran
    assert not np.allclose(rkl.whitened_posterior_.mean, laplace.whitened_posterior_.mean)


def test_partial_fit_needs_classes_then_accumulates():
    X, y, Z, kernel, _ = moons()
    est = SparseGPClassifier(kernel=kernel, inducing_points=Z)
    with pytest.raises(ValueError):
        est.partial_fit(X[:10], y[:10])
    est.partial_fit(X[:50], y[:50], classes=[0, 1]).partial_fit(X[50:], y[50:])
    assert est.n_samples_seen_ == 100
    assert est.score(X, y) > 0.9


def test_multiclass_is_refused():
    X = np.random.RandomState(0).randn(30, 2)
    with pytest.raises(ValueError, match="Only binary classification"):
        SparseGPClassifier().fit(X, np.arange(30) % 3)


def test_warns_when_a_forgotten_row_is_an_inducing_point():
    X, y, _, kernel, _ = moons()
    est = SparseGPClassifier(kernel=kernel, inducing_points=X[:10]).fit(X, y)
    with pytest.warns(UnlearningWarning, match=r"inducing_points_ \[2\]"):
        est.partial_unfit(X[2:3], y[2:3])


@pytest.mark.parametrize("case", ["nan", "features", "label", "too many", "weight"])
def test_rejected_forget_changes_nothing(case):
    X, y, Z, kernel, _ = moons()
    est = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X, y)
    before = pickle.dumps(est)
    X_bad, y_bad, w = X[:5].copy(), y[:5].copy(), None
    if case == "nan":
        X_bad[1, 0] = np.nan
    elif case == "features":
        X_bad = np.hstack([X_bad, X_bad])
    elif case == "label":
        y_bad[0] = 7
    elif case == "too many":
        X_bad, y_bad = np.vstack([X, X[:1]]), np.r_[y, y[:1]]
    else:
        w = np.full(5, 1000.0)
    with pytest.raises(ValueError):
        est.partial_unfit(X_bad, y_bad, sample_weight=w)
    assert pickle.dumps(est) == before


def test_unfitted_estimator_refuses_to_forget():
    with pytest.raises(NotFittedError):
        SparseGPClassifier().partial_unfit(np.zeros((2, 2)), [0, 1])
    assert not hasattr(SparseGPClassifier(), "posterior_")


@parametrize_with_checks(
    [SparseGPClassifier(), SparseGPClassifier(inference="vi", unlearning="eubo")]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
