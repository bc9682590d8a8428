import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, Matern, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklunlearn._demo import forget_masks
from sklunlearn.exceptions import NotPositiveDefiniteError, UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._bound import (
    AbsoluteJitters,
    SparseStatistics,
    collapsed_bound,
    inducing_cholesky,
)
from sklunlearn.utils.estimator_checks import (
    is_exact_unlearner,
    parametrize_with_unlearning_checks,
)


def titsias_bound(Kuu, Kuf, kff_diag, y, weights, noise_variance):
    """Weighted collapsed SGPR bound (Titsias 2009) with dense n x n matrices.

    A weight w_i multiplies row i's log-likelihood, i.e. row i has noise
    variance s2 / w_i up to the constant ``-(w_i - 1)/2 log(2 pi s2) - log(w_i)/2``.
    """
    Qff = Kuf.T @ np.linalg.solve(Kuu, Kuf)
    s2 = noise_variance
    cov = Qff + np.diag(s2 / weights)
    sign, logdet = np.linalg.slogdet(cov)
    n = len(y)
    log_normal = -0.5 * (y @ np.linalg.solve(cov, y) + logdet + n * np.log(2 * np.pi))
    constant = np.sum(-0.5 * (weights - 1) * np.log(2 * np.pi * s2) - 0.5 * np.log(weights))
    trace = np.sum(weights * (kff_diag - np.diag(Qff))) / (2 * s2)
    return log_normal + constant - trace


@pytest.fixture(autouse=True)
def one_blas_thread():
    # Small triangular solves are much slower with threads on a busy machine.
    with threadpool_limits(1):
        yield


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X / X.std(axis=0), y


def fixed(est, **params):
    """The estimator the contract compares forgetting with."""
    return SparseGPRegressor(
        kernel=est.kernel_,
        inducing_points=est.inducing_points_,
        noise_variance=est.noise_variance_,
        optimizer=None,
        normalize_y=est.normalize_y,
        **params,
    )


def auto_jitter(mean_diagonal, noise_variance):
    """The jitter ``jitter='auto'`` adds to the diagonal of ``K_ZZ``: ``1e-12`` of its
    mean diagonal ``D``, times ``1 + (D / (1e6 s2))^2``."""
    return 1e-12 * mean_diagonal * (1 + (mean_diagonal / (1e6 * noise_variance)) ** 2)


def assert_same_model(a, b, X, atol=1e-6, same_count=True):
    mean_a, std_a = a.predict(X, return_std=True)
    mean_b, std_b = b.predict(X, return_std=True)
    scale = max(np.abs(mean_b).max(), 1.0)
    np.testing.assert_allclose(mean_a, mean_b, atol=atol * scale)
    np.testing.assert_allclose(std_a, std_b, atol=atol * max(std_b.max(), 1.0))
    np.testing.assert_allclose(
        a.log_marginal_likelihood_value_,
        b.log_marginal_likelihood_value_,
        rtol=1e-8,
        atol=1e-6,
    )
    if same_count:  # not after forgetting part of a row's weight
        assert a.n_samples_seen_ == b.n_samples_seen_


@pytest.fixture(scope="module")
def fitted_diabetes():
    X, y = diabetes()
    with threadpool_limits(1):
        est = SparseGPRegressor(inducing_points=25, normalize_y=True, random_state=0)
        return est.fit(X, y), X, y


# --------------------------------------------------------------- the bound
@pytest.mark.parametrize("normalize_y", [False, True])
def test_bound_matches_dense_reference(rng, normalize_y):
    X, y = rng.randn(40, 2), rng.randn(40) * 3 + 2
    w = rng.uniform(0.5, 2.0, size=40)
    Z = rng.randn(7, 2)
    kernel = C(1.5) * RBF([0.7, 1.3])
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=Z,
        noise_variance=0.3,
        optimizer=None,
        normalize_y=normalize_y,
        jitter=1e-8,
    ).fit(X, y, w)
    t = (y - est.y_train_mean_) / est.y_train_std_
    Kuu = kernel(Z) + np.eye(7) * 1e-8 * kernel.diag(Z).mean()
    expected = titsias_bound(Kuu, kernel(Z, X), kernel.diag(X), t, w, 0.3)
    np.testing.assert_allclose(est.log_marginal_likelihood_value_, expected, rtol=1e-10)


@pytest.mark.parametrize(
    "kernel",
    [C(2.0) * RBF([0.5, 2.0, 1.0]), C(0.5) * Matern(1.3, nu=1.5) + WhiteKernel(0.1)],
    ids=["ard-rbf", "matern+white"],
)
@pytest.mark.parametrize("normalize_y", [False, True])
def test_bound_gradient_matches_finite_differences(rng, kernel, normalize_y):
    X, y = rng.randn(150, 3), rng.randn(150) + 1.0
    w = rng.uniform(0.2, 2.0, size=150)
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=rng.randn(12, 3),
        noise_variance=0.2,
        optimizer=None,
        normalize_y=normalize_y,
    ).fit(X, y, w)
    theta = np.append(est.kernel_.theta, np.log(est.noise_variance_)) + 0.1
    value, gradient = est.log_marginal_likelihood(
        theta, eval_gradient=True, X=X, y=y, sample_weight=w
    )
    eps = 1e-6
    numeric = [
        (
            est.log_marginal_likelihood(theta + eps * e, X=X, y=y, sample_weight=w)
            - est.log_marginal_likelihood(theta - eps * e, X=X, y=y, sample_weight=w)
        )
        / (2 * eps)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-5)
    assert value == pytest.approx(
        est.log_marginal_likelihood(theta, X=X, y=y, sample_weight=w)
    )


def test_log_marginal_likelihood_at_fitted_values(fitted_diabetes):
    est, X, y = fitted_diabetes
    assert est.log_marginal_likelihood() == est.log_marginal_likelihood_value_
    assert est.log_marginal_likelihood(X=X, y=y) == pytest.approx(
        est.log_marginal_likelihood_value_, rel=1e-10
    )
    with pytest.raises(ValueError, match="keeps no training rows"):
        est.log_marginal_likelihood(np.zeros(3))


def test_optimizer_improves_the_bound(fitted_diabetes):
    est, X, y = fitted_diabetes
    start = SparseGPRegressor(
        inducing_points=est.inducing_points_, optimizer=None, normalize_y=True
    ).fit(X, y)
    assert est.log_marginal_likelihood_value_ > start.log_marginal_likelihood_value_ + 10
    theta = np.append(est.kernel_.theta, np.log(est.noise_variance_))
    _, gradient = est.log_marginal_likelihood(theta, eval_gradient=True, X=X, y=y)
    assert np.abs(gradient).max() < 1e-2 * abs(est.log_marginal_likelihood_value_)


# ----------------------------------------------------------- exact GP limit
@pytest.mark.parametrize("normalize_y", [False, True])
def test_inducing_points_at_the_data_give_the_exact_gp(rng, normalize_y):
    X, y = rng.randn(60, 3), rng.randn(60) * 2 + 5
    X_test = rng.randn(25, 3)
    kernel = C(2.0) * RBF([1.0, 2.0, 0.5])
    ours = SparseGPRegressor(
        kernel=kernel,
        inducing_points=X,
        noise_variance=0.05,
        optimizer=None,
        normalize_y=normalize_y,
    ).fit(X, y)
    exact = GaussianProcessRegressor(
        kernel, alpha=0.05, optimizer=None, normalize_y=normalize_y
    ).fit(X, y)
    mean, std = ours.predict(X_test, return_std=True)
    mean_ref, std_ref = exact.predict(X_test, return_std=True)
    np.testing.assert_allclose(mean, mean_ref, atol=1e-4)
    np.testing.assert_allclose(std, std_ref, atol=1e-4)
    _, cov = ours.predict(X_test, return_cov=True)
    _, cov_ref = exact.predict(X_test, return_cov=True)
    np.testing.assert_allclose(cov, cov_ref, atol=1e-4)
    np.testing.assert_allclose(
        ours.log_marginal_likelihood_value_, exact.log_marginal_likelihood_value_, rtol=1e-3
    )


def test_default_selection_uses_all_distinct_rows_when_few(rng):
    X = rng.randn(30, 2)
    est = SparseGPRegressor(optimizer=None).fit(np.vstack([X, X[:5]]), rng.randn(35))
    assert est.inducing_points_.shape == (30, 2)


# ------------------------------------------------------ forgetting == refit
@pytest.mark.parametrize("normalize_y", [False, True])
@pytest.mark.parametrize("which", ["random 10%", "clustered 10%"])
def test_forgetting_equals_refit_on_diabetes(which, normalize_y):
    X, y = diabetes()
    mask = forget_masks(X, 0.1, random_state=0)[which]
    est = SparseGPRegressor(
        inducing_points=30,
        normalize_y=normalize_y,
        noise_variance=0.5 if normalize_y else 3000.0,
        optimizer=None,
        random_state=0,
    ).fit(X, y)
    est.partial_unfit(X[mask], y[mask])
    retrained = fixed(est).fit(X[~mask], y[~mask])
    assert_same_model(est, retrained, X)
    assert est.posterior_.kl_divergence(retrained.posterior_) < 1e-8
    assert est.whitened_posterior_.kl_divergence(retrained.whitened_posterior_) < 1e-10


def test_forgetting_after_optimisation_equals_refit_at_learned_values(fitted_diabetes):
    est, X, y = fitted_diabetes
    est = copy.deepcopy(est)
    mask = forget_masks(X, 0.1, random_state=1)["clustered 10%"]
    with pytest.warns(UnlearningWarning, match="reoptimize"):
        est.partial_unfit(X[mask], y[mask])
    assert_same_model(est, fixed(est).fit(X[~mask], y[~mask]), X)
    np.testing.assert_allclose(est.y_train_mean_, y[~mask].mean())
    np.testing.assert_allclose(est.y_train_std_, y[~mask].std())


def test_forgetting_changes_the_model(fitted_diabetes):
    """The comparison above is not vacuous: doing nothing is far from retraining."""
    est, X, y = fitted_diabetes
    mask = forget_masks(X, 0.1, random_state=1)["clustered 10%"]
    retrained = fixed(est).fit(X[~mask], y[~mask])
    assert est.posterior_.kl_divergence(retrained.posterior_) > 1.0
    assert np.abs(est.predict(X) - retrained.predict(X)).max() > 1.0


def test_many_small_forget_requests_equal_one(fitted_diabetes):
    est, X, y = fitted_diabetes
    one, many = copy.deepcopy(est), copy.deepcopy(est)
    forget = np.random.RandomState(3).permutation(len(y))[:120]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        one.partial_unfit(X[forget], y[forget])
        for chunk in np.array_split(forget, 12):
            many.partial_unfit(X[chunk], y[chunk])
    assert_same_model(one, many, X, atol=1e-9)


def test_long_add_remove_sequence_does_not_drift(fitted_diabetes):
    est, X, y = fitted_diabetes
    model = fixed(est).fit(X[:100], y[:100])
    rng = np.random.RandomState(5)
    for _ in range(20):
        rows = rng.choice(np.arange(100, len(y)), size=30, replace=False)
        model.partial_fit(X[rows], y[rows]).partial_unfit(X[rows], y[rows])
    assert_same_model(model, fixed(est).fit(X[:100], y[:100]), X, atol=1e-8)


# ------------------------------------------------------- algebra (hypothesis)
def _fixed_model(d, seed, normalize_y):
    rng = np.random.RandomState(seed + 1)  # not the data's seed: Z is not a data row
    return SparseGPRegressor(
        kernel=C(1.3) * RBF(np.full(d, 1.1)),
        inducing_points=rng.randn(6, d),
        noise_variance=0.4,
        optimizer=None,
        normalize_y=normalize_y,
    )


@given(
    d=st.integers(1, 3),
    n_a=st.integers(2, 25),
    n_b=st.integers(1, 25),
    seed=st.integers(0, 2**16),
    normalize_y=st.booleans(),
)
def test_fit_union_then_forget_equals_fit(d, n_a, n_b, seed, normalize_y):
    rng = np.random.RandomState(seed)
    X_a, X_b = rng.randn(n_a, d), rng.randn(n_b, d) * 2 + 1
    y_a, y_b = rng.randn(n_a), rng.randn(n_b) * 5 + 3
    model = _fixed_model(d, seed, normalize_y)
    union = clone_fit(model, np.vstack([X_a, X_b]), np.r_[y_a, y_b])
    union.partial_unfit(X_b, y_b)
    assert_same_model(union, clone_fit(model, X_a, y_a), np.vstack([X_a, X_b]), 1e-7)


def clone_fit(model, X, y, sample_weight=None):
    return copy.deepcopy(model).fit(X, y, sample_weight)


@given(
    d=st.integers(1, 3),
    n=st.integers(3, 25),
    seed=st.integers(0, 2**16),
    normalize_y=st.booleans(),
)
def test_integer_weights_equal_repeated_rows(d, n, seed, normalize_y):
    rng = np.random.RandomState(seed)
    X, y = rng.randn(n, d), rng.randn(n)
    counts = rng.randint(1, 4, size=n)
    model = _fixed_model(d, seed, normalize_y)
    weighted = clone_fit(model, X, y, counts.astype(float))
    repeated = clone_fit(model, np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), atol=1e-8)
    np.testing.assert_allclose(
        weighted.log_marginal_likelihood_value_,
        repeated.log_marginal_likelihood_value_,
        rtol=1e-9,
    )


@given(
    d=st.integers(1, 3),
    n=st.integers(3, 25),
    seed=st.integers(0, 2**16),
    normalize_y=st.booleans(),
)
def test_weighted_forgetting_equals_reduced_weights(d, n, seed, normalize_y):
    rng = np.random.RandomState(seed)
    X, y = rng.randn(n, d), rng.randn(n)
    w = rng.uniform(1.0, 3.0, size=n)
    forget = rng.uniform(0.0, 0.9, size=n)
    model = _fixed_model(d, seed, normalize_y)
    est = clone_fit(model, X, y, w).partial_unfit(X, y, sample_weight=forget)
    assert_same_model(est, clone_fit(model, X, y, w - forget), X, 1e-7, same_count=False)


def test_zero_weight_equals_absent_row(rng):
    X, y = rng.randn(30, 2), rng.randn(30)
    w = np.ones(30)
    w[:5] = 0.0
    model = _fixed_model(2, 0, True)
    assert_same_model(clone_fit(model, X, y, w), clone_fit(model, X[5:], y[5:]), X, 1e-10)
    # the default inducing points ignore rows of zero weight, too
    a = SparseGPRegressor(inducing_points=10, optimizer=None, random_state=0)
    np.testing.assert_array_equal(
        clone_fit(a, X, y, w).inducing_points_, clone_fit(a, X[5:], y[5:]).inducing_points_
    )


@given(
    chunks=st.lists(st.integers(1, 15), min_size=1, max_size=5), seed=st.integers(0, 2**16)
)
def test_fit_equals_chunked_partial_fit(chunks, seed):
    rng = np.random.RandomState(seed)
    n = sum(chunks)
    X, y = rng.randn(n, 2), rng.randn(n) + 10
    model = _fixed_model(2, seed, True)
    chunked = copy.deepcopy(model)
    for part in np.array_split(np.arange(n), np.cumsum(chunks)[:-1]):
        chunked.partial_fit(X[part], y[part])
    assert_same_model(chunked, clone_fit(model, X, y), X, 1e-8)


def test_statistics_merge_is_invertible(rng):
    kernel, Z = RBF(1.0), rng.randn(5, 2)
    factor = inducing_cholesky(kernel, Z)
    parts = [
        SparseStatistics.from_data(
            kernel, Z, factor, rng.randn(k, 2), rng.randn(k) * 4 + 7, rng.uniform(0.5, 2, k)
        )
        for k in (10, 7)
    ]
    back = parts[0].merge(parts[1]).merge(parts[1], -1.0)
    for got, want in zip(back.linear, parts[0].linear, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert back.kdiag == pytest.approx(parts[0].kdiag, rel=1e-12)


# --------------------------------------------------- warnings, reoptimize
def test_warns_once_about_learned_hyperparameters(fitted_diabetes):
    est, X, y = fitted_diabetes
    est = copy.deepcopy(est)
    with pytest.warns(UnlearningWarning, match="kernel_ and noise_variance_"):
        est.partial_unfit(X[:5], y[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        est.partial_unfit(X[5:10], y[5:10])


def test_no_warning_when_nothing_was_learned_from_the_data(fitted_diabetes):
    est, X, y = fitted_diabetes
    model = fixed(est).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        model.partial_unfit(X[:10], y[:10])


def test_warns_when_a_forgotten_row_is_an_inducing_point(rng):
    X, y = rng.randn(20, 2), rng.randn(20)
    est = SparseGPRegressor(inducing_points=X, optimizer=None, noise_variance=0.1).fit(X, y)
    with pytest.warns(UnlearningWarning, match=r"inducing_points_ \[3, 4\].*set_params"):
        est.partial_unfit(X[3:5], y[3:5])
    picked = SparseGPRegressor(optimizer=None).fit(X, y)  # 20 distinct rows <= 100
    with pytest.warns(UnlearningWarning, match="keep_inducing_points=False"):
        picked.partial_unfit(X[:1], y[:1])


def test_reoptimize_equals_fit_on_remaining_rows(fitted_diabetes):
    est, X, y = fitted_diabetes
    est = copy.deepcopy(est)
    keep = np.arange(len(y)) >= 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[~keep], y[~keep])
    est.reoptimize(X[keep], y[keep])
    fresh = SparseGPRegressor(
        inducing_points=est.inducing_points_, normalize_y=True, random_state=0
    ).fit(X[keep], y[keep])
    assert_same_model(est, fresh, X, 1e-8)
    est.reoptimize(X[keep], y[keep], keep_inducing_points=False)
    refit = SparseGPRegressor(inducing_points=25, normalize_y=True, random_state=0).fit(
        X[keep], y[keep]
    )
    np.testing.assert_array_equal(est.inducing_points_, refit.inducing_points_)


# ------------------------------------------------- rejected calls change nothing
def _bad_calls(X, y):
    nan = X[:3].copy()
    nan[0, 0] = np.nan
    inf = X[:3].copy()
    inf[1, 1] = np.inf
    too_many = np.ones(len(y)) * 2.0
    return {
        "nan": (nan, y[:3], None, ValueError),
        "inf": (inf, y[:3], None, ValueError),
        "nan target": (X[:3], np.r_[np.nan, y[1:3]], None, ValueError),
        "wrong features": (X[:3, :-1], y[:3], None, ValueError),
        "negative weight": (X[:3], y[:3], np.array([1.0, -1.0, 1.0]), ValueError),
        "more weight than learned": (X, y, too_many, ValueError),
        "more rows than learned": (
            np.vstack([X, X[:1]]),
            np.r_[y, y[:1]],
            None,
            ValueError,
        ),
        "never learned": (X[:20] * 40.0, y[:20], None, NotPositiveDefiniteError),
    }


@pytest.mark.parametrize("case", list(_bad_calls(np.zeros((3, 2)), np.zeros(3))))
def test_rejected_forget_changes_nothing(case, fitted_diabetes):
    est, X, y = fitted_diabetes
    est = copy.deepcopy(est)
    if case == "never learned":  # the statistics' own refusal: the ledger refuses first
        est = fixed(est, ledger=False).fit(X, y)
    X_bad, y_bad, w, error = _bad_calls(X, y)[case]
    before = pickle.dumps(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        with pytest.raises(error):
            est.partial_unfit(X_bad, y_bad, sample_weight=w)
    assert pickle.dumps(est) == before


def test_rejected_partial_fit_and_reoptimize_change_nothing(fitted_diabetes):
    est, X, y = fitted_diabetes
    est = copy.deepcopy(est)
    before = pickle.dumps(est)
    bad = X[:5].copy()
    bad[2, 3] = np.nan
    for call in (est.partial_fit, est.reoptimize):
        with pytest.raises(ValueError):
            call(bad, y[:5])
        with pytest.raises(ValueError):
            call(X[:5, :3], y[:5])
    assert pickle.dumps(est) == before


def test_feature_names_are_checked(rng):
    X = pd.DataFrame(rng.randn(20, 2), columns=["a", "b"])
    y = rng.randn(20)
    est = SparseGPRegressor(inducing_points=5, optimizer=None, random_state=0).fit(X, y)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="feature names"):
        est.partial_unfit(X.rename(columns={"a": "c"})[:3], y[:3])
    assert pickle.dumps(est) == before


def test_unfitted_estimator_refuses_to_forget(rng):
    with pytest.raises(NotFittedError):
        SparseGPRegressor().partial_unfit(rng.randn(3, 2), rng.randn(3))


def test_pickle_keeps_the_ability_to_forget(fitted_diabetes):
    est, X, y = fitted_diabetes
    est = pickle.loads(pickle.dumps(est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:50], y[:50])
    assert_same_model(est, fixed(est).fit(X[50:], y[50:]), X)


def test_predict_options(fitted_diabetes):
    est, X, y = fitted_diabetes
    mean, std = est.predict(X[:10], return_std=True)
    _, cov = est.predict(X[:10], return_cov=True)
    np.testing.assert_allclose(std, np.sqrt(np.diag(cov)), rtol=1e-8)
    with pytest.raises(RuntimeError):
        est.predict(X[:3], return_std=True, return_cov=True)
    samples = est.sample_y(X[:10], n_samples=3000, random_state=0)
    assert samples.shape == (10, 3000)
    tolerance = 5 * std.max() / np.sqrt(3000)
    np.testing.assert_allclose(samples.mean(axis=1), mean, atol=tolerance)


# ------------------------------------------------------------ estimator checks
@parametrize_with_checks(
    [SparseGPRegressor(), SparseGPRegressor(optimizer=None, noise_variance=0.1)]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_memory_stays_linear_in_the_number_of_rows():
    """Fitting, forgetting and the bound's gradient never build an n x n matrix."""
    import tracemalloc

    rng = np.random.RandomState(0)
    n = 20_000
    X, y = rng.randn(n, 2), rng.randn(n)
    est = SparseGPRegressor(
        kernel=C(1.0) * RBF([1.0, 1.0]),
        inducing_points=rng.randn(20, 2),
        noise_variance=0.5,
        optimizer=None,
    )
    tracemalloc.start()
    try:
        est.fit(X, y).partial_unfit(X[:100], y[:100])
        est.log_marginal_likelihood(eval_gradient=True, X=X, y=y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.02 * n * n * 8  # an n x n float64 matrix would be 3.2 GB


def test_declares_exactness_only_when_nothing_is_learned_from_the_data():
    assert is_exact_unlearner(
        SparseGPRegressor(inducing_points=np.zeros((2, 1)), optimizer=None)
    )
    assert not is_exact_unlearner(SparseGPRegressor(optimizer=None))
    assert not is_exact_unlearner(SparseGPRegressor(inducing_points=np.zeros((2, 1))))


@parametrize_with_unlearning_checks(
    [
        SparseGPRegressor(
            kernel=RBF(1.5),
            inducing_points=np.random.RandomState(5).randn(8, 3),
            noise_variance=0.3,
            optimizer=None,
            normalize_y=True,
        ),
    ]
)
def test_package_unlearning_checks(estimator, check):
    check(estimator)


# ------------------------------------- fast bound, inducing locations, progress
def collapsed_bound_reference(Kuu, Kuf, kff_diag, y, noise_variance):
    """Titsias (2009), eq. 9, term by term with dense n x n matrices:
    ``log N(y | 0, Q + s2 I) - tr(K - Q) / (2 s2)``, ``Q = K_fu K_uu^-1 K_uf``."""
    Q = Kuf.T @ np.linalg.solve(Kuu, Kuf)
    cov = Q + noise_variance * np.eye(len(y))
    _, logdet = np.linalg.slogdet(cov)
    log_normal = -0.5 * (y @ np.linalg.solve(cov, y) + logdet + len(y) * np.log(2 * np.pi))
    return log_normal - np.sum(kff_diag - np.diag(Q)) / (2 * noise_variance)


@pytest.mark.parametrize(
    "kernel, noise_variance, jitter",
    [
        (C(1.5) * RBF([0.7, 1.3]), 0.3, 1e-8),
        (C(4.0) * RBF([20.0, 50.0]), 1e-4, 1e-6),
        (C(0.8) * Matern([6.0, 9.0], nu=2.5) + WhiteKernel(0.05), 1e-3, 1e-8),
        (C(2.0) * Matern(0.4, nu=0.5), 0.01, 1e-8),
    ],
    ids=["rbf", "long-rbf-small-noise", "matern52+white", "matern12"],
)
def test_collapsed_bound_matches_the_formula(rng, kernel, noise_variance, jitter):
    X, y = rng.uniform(-2, 2, size=(60, 2)), rng.randn(60)
    Z = rng.uniform(-2, 2, size=(8, 2))
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=Z,
        noise_variance=noise_variance,
        optimizer=None,
        jitter=jitter,
    ).fit(X, y)
    assert est._inducing_factor.jitter == jitter
    Kuu = kernel(Z) + jitter * kernel.diag(Z).mean() * np.eye(8)
    expected = collapsed_bound_reference(
        Kuu, kernel(Z, X), kernel.diag(X), y, noise_variance
    )
    np.testing.assert_allclose(est.log_marginal_likelihood_value_, expected, rtol=1e-10)
    theta = np.append(kernel.theta, np.log(noise_variance))
    value = est.log_marginal_likelihood(theta, eval_gradient=True, X=X, y=y)[0]
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_inducing_gradient_matches_finite_differences(rng):
    X, t, w = rng.randn(80, 3), rng.randn(80), rng.uniform(0.2, 2.0, size=80)
    Z = rng.randn(6, 3)
    kernel = C(1.3) * Matern([0.8, 1.5, 1.1], nu=2.5) + WhiteKernel(0.05)
    gradient = collapsed_bound(
        kernel, Z, X, t, w, 0.2, with_inducing=True
    ).inducing_gradient
    eps = 1e-6
    numeric = np.zeros_like(Z)
    for index in np.ndindex(*Z.shape):
        step = np.zeros_like(Z)
        step[index] = eps
        numeric[index] = (
            collapsed_bound(kernel, Z + step, X, t, w, 0.2).bound
            - collapsed_bound(kernel, Z - step, X, t, w, 0.2).bound
        ) / (2 * eps)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-6)


def test_optimising_inducing_points_raises_the_bound_and_forgets_exactly(rng):
    X = rng.uniform(-3, 3, size=(300, 2))
    y = np.sin(X).sum(axis=1) + 0.1 * rng.randn(300)
    common = dict(kernel=C(1.0) * RBF([1.0, 1.0]), inducing_points=8, random_state=0)
    kept = SparseGPRegressor(**common).fit(X, y)
    moved = SparseGPRegressor(**common, optimize_inducing=True).fit(X, y)
    assert moved.log_marginal_likelihood_value_ > kept.log_marginal_likelihood_value_ + 1
    assert not np.allclose(moved.inducing_points_, kept.inducing_points_)
    with pytest.warns(UnlearningWarning, match="inducing_points_"):
        moved.partial_unfit(X[:30], y[:30])
    assert_same_model(moved, fixed(moved).fit(X[30:], y[30:]), X, atol=1e-9)


def test_optimising_inducing_points_needs_a_supported_kernel(rng):
    X, y = rng.randn(40, 2), rng.randn(40)
    est = SparseGPRegressor(
        kernel=C(1.0) * RBF(1.0) + C(1.0) * RBF(3.0),
        inducing_points=5,
        optimize_inducing=True,
    )
    with pytest.raises(ValueError, match="optimize_inducing=True needs"):
        est.fit(X, y)


def test_declares_learned_inducing_points_not_exact():
    Z = np.zeros((2, 1))
    assert not is_exact_unlearner(
        SparseGPRegressor(inducing_points=Z, optimize_inducing=True)
    )
    assert is_exact_unlearner(
        SparseGPRegressor(inducing_points=Z, optimize_inducing=True, optimizer=None)
    )


def test_verbose_prints_the_optimiser_progress(rng, capsys):
    X, y = rng.randn(60, 2), rng.randn(60)
    common = dict(inducing_points=6, random_state=0)
    SparseGPRegressor(**common).fit(X, y)
    assert capsys.readouterr().out == ""
    SparseGPRegressor(**common, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Maximising the collapsed bound over 3 parameters (60 rows")
    assert lines[1].startswith("Iteration 1, bound = ")
    assert "gradient norm = " in lines[1]
    assert lines[-1].startswith("L-BFGS-B stopped after")
    iterations = [line for line in lines if line.startswith("Iteration")]
    assert int(lines[-1].split()[3]) == len(iterations)


def test_verbose_with_a_callable_optimizer(rng, capsys):
    X, y = rng.randn(60, 2), rng.randn(60)

    def two_evaluations(obj_func, initial_theta, bounds):
        value = obj_func(initial_theta)[0]
        obj_func(initial_theta + 0.1)
        return initial_theta, value

    SparseGPRegressor(inducing_points=6, optimizer=two_evaluations, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["Evaluation 1", "Evaluation 2"]


def test_the_optimiser_keeps_its_starting_jitter(rng):
    """Where K_ZZ needs a larger jitter than at the start the objective is infinite
    (a wall the line search backs off from), not a bound that jumps down."""
    X, y = rng.randn(50, 2), rng.randn(50)
    Z = rng.uniform(-1, 1, size=(40, 2))
    est = SparseGPRegressor(kernel=RBF(0.3), inducing_points=Z, optimizer=None).fit(X, y)
    # without jitter K_ZZ factorises at the start but not at longer length scales
    objective = est._objective(X, y, np.ones(50), Z, est.kernel_, jitters=(0.0,))
    assert np.isfinite(objective(np.log([0.3, 0.1]))[0])
    assert objective(np.log([3.0, 0.1]))[0] == np.inf


def test_absolute_jitter_is_added_as_it_is(rng):
    X, y = rng.uniform(-2, 2, size=(60, 2)), rng.randn(60)
    Z = rng.uniform(-2, 2, size=(8, 2))
    kernel = C(40.0) * RBF([3.0, 20.0])
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=Z,
        noise_variance=0.01,
        optimizer=None,
        jitter=1e-6,
        relative_jitter=False,
    ).fit(X, y)
    factor = est._inducing_factor
    assert (factor.jitter, factor.relative) == (1e-6, False)
    Kuu = kernel(Z) + 1e-6 * np.eye(8)
    np.testing.assert_allclose(factor.cholesky @ factor.cholesky.T, Kuu, rtol=1e-12)
    expected = collapsed_bound_reference(Kuu, kernel(Z, X), kernel.diag(X), y, 0.01)
    np.testing.assert_allclose(est.log_marginal_likelihood_value_, expected, rtol=1e-10)


def test_auto_jitter_grows_above_a_signal_to_noise_ratio_of_1e6():
    """jitter='auto' adds 1e-12 D (1 + (D / (1e6 s2))^2) to K_ZZ's diagonal, D its
    mean: the bound, its gradient (also through the jitter's dependence on D and
    s2) and forgetting at a signal-to-noise ratio of 4e6, where it is 17x 1e-12 D."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(300, 2))
    y = 20 * np.sin(0.6 * X).sum(axis=1) + 0.01 * rng.randn(300)
    Z = rng.uniform(-2, 2, size=(15, 2))
    kernel, noise_variance = C(400.0) * RBF([2.0, 3.0]), 1e-4
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=Z,
        noise_variance=noise_variance,
        optimizer=None,
        jitter="auto",
    ).fit(X, y)
    assert est._inducing_factor.growth == pytest.approx(16.0)
    Kuu = kernel(Z) + auto_jitter(400.0, noise_variance) * np.eye(15)
    expected = collapsed_bound_reference(
        Kuu, kernel(Z, X), kernel.diag(X), y, noise_variance
    )
    # K_ZZ's condition number is about 1e12 here: two float64 evaluations in different
    # orders agree to its round-off, not to 1e-10.
    np.testing.assert_allclose(est.log_marginal_likelihood_value_, expected, rtol=1e-9)
    theta, step = np.append(kernel.theta, np.log(noise_variance)), 1e-4
    gradient = est.log_marginal_likelihood(theta, eval_gradient=True, X=X, y=y)[1]
    numeric = [
        (
            est.log_marginal_likelihood(theta + e, X=X, y=y)
            - est.log_marginal_likelihood(theta - e, X=X, y=y)
        )
        / (2 * step)
        for e in step * np.eye(4)
    ]
    # the jitter's parts of the derivatives in log D and log s2 are about 6.5 (of
    # about 1.6e6); finite differences agree to 0.2
    np.testing.assert_allclose(gradient, numeric, rtol=0, atol=1.0)
    est.partial_unfit(X[:30], y[:30])
    refit = fixed(est, jitter="auto").fit(X[30:], y[30:])
    assert_same_model(est, refit, X, atol=1e-9)


def test_auto_jitter_is_relative():
    X, y = np.random.RandomState(0).randn(20, 2), np.zeros(20)
    with pytest.raises(ValueError, match="relative_jitter=False needs a number"):
        SparseGPRegressor(inducing_points=5, jitter="auto", relative_jitter=False).fit(X, y)


@pytest.mark.parametrize(
    "jitters", [(1e-8,), AbsoluteJitters((1e-6,))], ids=["relative", "absolute"]
)
def test_bound_gradient_is_accurate_where_K_ZZ_is_ill_conditioned(jitters):
    """Near a large signal variance with a long length scale (as on data that are
    nearly linear in a feature) the K_uu part and the rows' part of the gradient are
    large and cancel; the rows' part must go through the bound's whitened features."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(1000, 2))
    y = np.sin(0.6 * X).sum(axis=1) / np.sqrt(2) + 0.1 * rng.randn(1000)
    Z = X[rng.choice(1000, 20, replace=False)]
    kernel, noise_variance = C(4000.0) * RBF([10.0, 1000.0]), 0.01
    weights = np.ones(1000)

    def bound(theta):
        candidate = kernel.clone_with_theta(theta[:-1])
        return collapsed_bound(
            candidate, Z, X, y, weights, np.exp(theta[-1]), jitters=jitters
        ).bound

    gradient = collapsed_bound(
        kernel, Z, X, y, weights, noise_variance, jitters=jitters
    ).gradient
    theta, step = np.append(kernel.theta, np.log(noise_variance)), 1e-4
    numeric = [(bound(theta + e) - bound(theta - e)) / (2 * step) for e in step * np.eye(4)]
    # the derivatives are up to ~30 and the bound ~1,000: 0.02 is under 1e-3 of them
    np.testing.assert_allclose(gradient, numeric, rtol=0, atol=0.02)
