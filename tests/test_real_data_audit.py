"""Forgetting on real data sets, measured against retraining from scratch.

An independent tester's probes on scikit-learn's bundled data sets and the bundled
banknote data: exact methods must equal a refit on the remaining rows, approximate
ones must beat doing nothing or warn, and every refused call must leave the estimator
as it was (compared byte for byte through ``pickle.dumps``).
"""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_linnerud,
    load_wine,
)
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import StandardScaler

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.neural_network import BayesianMLPRegressor


def _regression(name):
    if name == "linnerud":
        data = load_linnerud()
        return data.data, data.target[:, 0]
    loader = {"diabetes": load_diabetes, "wine": load_wine, "digits": load_digits}[name]
    return loader(return_X_y=True)


def _standard_diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _classification(name):
    if name == "banknote":
        data = load_banknote()
        return data.data, data.target
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    return load_wine(return_X_y=True)  # unscaled, three classes


def _forget_set(X, kind, seed):
    """Rows to forget: a random 10%, the 10% nearest a random row, or one row."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    if kind == "random":
        forget = rng.choice(n, n // 10, replace=False)
    elif kind == "clustered":
        centre = X[rng.integers(n)]
        forget = np.argsort(((X - centre) ** 2).sum(axis=1))[: n // 10]
    else:
        forget = rng.choice(n, 1)
    return forget, np.setdiff1d(np.arange(n), forget)


def _kl(a, b):
    """KL between posteriors, summed over one-vs-rest classes when there are several."""
    pa, pb = a.posterior_, b.posterior_
    if isinstance(pa, list):
        return sum(p.kl_divergence(q) for p, q in zip(pa, pb, strict=True))
    return pa.kl_divergence(pb)


def _forget_recording(est, X, y, sample_weight=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X, y, sample_weight=sample_weight)
    return [w for w in caught if issubclass(w.category, UnlearningWarning)]


def _assert_same_linear(a, b, rtol=1e-9):
    for name in ("coef_", "intercept_", "alpha_", "lambda_", "sigma_"):
        expected = np.asarray(getattr(b, name))
        atol = rtol * np.abs(expected).max() + 1e-12  # entries that cancel to ~0
        np.testing.assert_allclose(
            getattr(a, name), expected, rtol=rtol, atol=atol, err_msg=name
        )


# Exact: BayesianLinearRegression ------------------------------------------------------


@pytest.mark.parametrize("data", ["diabetes", "wine", "digits", "linnerud"])
@pytest.mark.parametrize("kind", ["random", "clustered", "single"])
def test_linear_forget_equals_refit_on_unscaled_real_data(data, kind):
    X, y = _regression(data)
    forget, keep = _forget_set(X, kind, seed=0)
    est = BayesianLinearRegression().fit(X, y)
    assert not _forget_recording(est, X[forget], y[forget])
    assert est.forget_report_.exact
    _assert_same_linear(est, BayesianLinearRegression().fit(X[keep], y[keep]))
    peer = BayesianRidge().fit(X[keep], y[keep])
    np.testing.assert_allclose(est.coef_, peer.coef_, rtol=1e-7, atol=1e-9)


def test_linear_half_of_the_rows_and_constant_duplicate_columns():
    X, y = load_diabetes(return_X_y=True)
    X = np.hstack([X, np.ones((X.shape[0], 1)), X[:, :2]])
    forget, keep = np.arange(0, X.shape[0], 2), np.arange(1, X.shape[0], 2)
    est = BayesianLinearRegression().fit(X, y).partial_unfit(X[forget], y[forget])
    _assert_same_linear(est, BayesianLinearRegression().fit(X[keep], y[keep]))


def test_linear_all_rows_but_one_warns_and_compensated_stays_exact():
    X, y = load_wine(return_X_y=True)
    # Thirty rows kept: one row with an intercept leaves no centred Gram matrix,
    # which no round-off can disturb.
    est = BayesianLinearRegression().fit(X, y)
    caught = _forget_recording(est, X[30:], y[30:])
    assert any("round-off" in str(w.message) for w in caught)
    exact = BayesianLinearRegression(compensated=True).fit(X, y)
    assert not _forget_recording(exact, X[1:], y[1:])
    refit = BayesianLinearRegression().fit(X[:1], y[:1])
    np.testing.assert_array_equal(exact.predict(X[:5]), refit.predict(X[:5]))
    assert exact.alpha_ == pytest.approx(refit.alpha_, rel=1e-12)


def test_linear_weights_partial_weights_and_interleaved_learning():
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 3.0, X.shape[0])
    forget, keep = _forget_set(X, "random", seed=1)
    part = w[forget] * rng.uniform(0.1, 0.9, forget.size)
    reduced = w.copy()
    reduced[forget] -= part
    est = BayesianLinearRegression().fit(X, y, sample_weight=w)
    est.partial_unfit(X[forget], y[forget], sample_weight=part)
    _assert_same_linear(est, BayesianLinearRegression().fit(X, y, sample_weight=reduced))
    est.partial_unfit(X[forget], y[forget], sample_weight=w[forget] - part)
    zero = w.copy()
    zero[forget] = 0.0
    _assert_same_linear(est, BayesianLinearRegression().fit(X, y, sample_weight=zero))
    # forget, learn new rows, forget old and new ones
    X_new, y_new = X[:40] + 0.01, y[:40] + 1.0
    est.partial_fit(X_new, y_new, sample_weight=np.ones(40))
    est.partial_unfit(
        np.vstack([X[keep[:30]], X_new[:10]]),
        np.r_[y[keep[:30]], y_new[:10]],
        sample_weight=np.r_[w[keep[:30]], np.ones(10)],
    )
    left = keep[30:]
    refit = BayesianLinearRegression().fit(
        np.vstack([X[left], X_new[10:]]),
        np.r_[y[left], y_new[10:]],
        sample_weight=np.r_[w[left], np.ones(30)],
    )
    _assert_same_linear(est, refit)


def test_linear_duplicated_rows_are_forgotten_one_copy_at_a_time():
    X, y = load_diabetes(return_X_y=True)
    X2, y2 = np.vstack([X, X[:5]]), np.r_[y, y[:5]]
    est = BayesianLinearRegression().fit(X2, y2).partial_unfit(X[:5], y[:5])
    _assert_same_linear(est, BayesianLinearRegression().fit(X, y))
    est.partial_unfit(X[:5], y[:5])
    _assert_same_linear(est, BayesianLinearRegression().fit(X[5:], y[5:]))
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="Nothing was changed"):
        est.partial_unfit(X[:5], y[:5])
    assert pickle.dumps(est) == before


def test_linear_float32_and_named_dataframe():
    data = load_diabetes()
    forget, keep = _forget_set(data.data, "random", seed=2)
    X32, y32 = data.data.astype(np.float32), data.target.astype(np.float32)
    est = BayesianLinearRegression().fit(X32, y32).partial_unfit(X32[forget], y32[forget])
    _assert_same_linear(est, BayesianLinearRegression().fit(X32[keep], y32[keep]))
    frame = pd.DataFrame(data.data, columns=data.feature_names)
    est = BayesianLinearRegression().fit(frame, data.target)
    est.partial_unfit(frame.iloc[forget], data.target[forget])
    refit = BayesianLinearRegression().fit(frame.iloc[keep], data.target[keep])
    _assert_same_linear(est, refit)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="feature names"):
        est.partial_unfit(frame.iloc[keep[:3], ::-1], data.target[keep[:3]])
    assert pickle.dumps(est) == before


# Exact at fixed hyperparameters: SparseGPRegressor, last-layer MLP --------------------


def test_sparse_gp_regressor_forget_equals_refit_at_fixed_hyperparameters():
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    est = SparseGPRegressor(inducing_points=25, normalize_y=True, random_state=0)
    est.fit(X, y, sample_weight=w)
    forget, keep = _forget_set(X, "random", seed=3)
    reduced = w.copy()
    reduced[forget] *= 0.25
    caught = _forget_recording(est, X[forget], y[forget], w[forget] * 0.75)
    assert any("reoptimize" in str(c.message) for c in caught)
    refit = SparseGPRegressor(
        kernel=est.kernel_,
        inducing_points=est.inducing_points_,
        noise_variance=est.noise_variance_,
        optimizer=None,
        normalize_y=True,
    ).fit(X, y, sample_weight=reduced)
    mean, std = est.predict(X[:60], return_std=True)
    mean_r, std_r = refit.predict(X[:60], return_std=True)
    np.testing.assert_allclose(mean, mean_r, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(std, std_r, rtol=1e-9)


def test_last_layer_mlp_forget_equals_conjugate_output_layer_refit():
    X, y = _standard_diabetes()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(8,), max_iter=200, random_state=0, curvature="last_layer"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    forget, keep = _forget_set(X, "clustered", seed=0)
    caught = _forget_recording(est, X[forget], y[forget])
    assert any("hidden" in str(c.message) for c in caught)
    features = np.tanh(X[keep] @ est.coefs_[0] + est.intercepts_[0])
    Phi = np.hstack([features, np.ones((keep.size, 1))])
    beta = 1.0 / est.noise_variance_
    precision = est.alpha * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    mean = np.linalg.solve(precision, beta * Phi.T @ y[keep])
    np.testing.assert_allclose(est.posterior_.precision, precision, rtol=1e-10)
    np.testing.assert_allclose(est.posterior_.mean, mean, rtol=1e-9, atol=1e-12)


# Approximate: beat doing nothing, or warn ---------------------------------------------


@pytest.mark.parametrize("data", ["breast_cancer", "banknote", "wine_raw"])
@pytest.mark.parametrize("kind", ["random", "clustered", "single"])
@pytest.mark.parametrize("method", ["laplace", "uib"])
def test_logistic_default_methods_beat_doing_nothing(data, kind, method):
    X, y = _classification(data)
    forget, keep = _forget_set(X, kind, seed=0)
    full = BayesianLogisticRegression(unlearning=method).fit(X, y)
    retrained = BayesianLogisticRegression().fit(X[keep], y[keep])
    est = copy.deepcopy(full)
    _forget_recording(est, X[forget], y[forget])
    assert _kl(est, retrained) < 0.75 * _kl(full, retrained)
    np.testing.assert_array_equal(est.classes_, full.classes_)


@pytest.mark.parametrize("method", ["eubo", "rkl"])
@pytest.mark.parametrize("kind", ["random", "clustered", "single"])
def test_logistic_result_worse_than_doing_nothing_warns(method, kind):
    X, y = _classification("breast_cancer")
    forget, keep = _forget_set(X, kind, seed=0)
    full = BayesianLogisticRegression(unlearning=method, random_state=0).fit(X, y)
    retrained = BayesianLogisticRegression().fit(X[keep], y[keep])
    est = copy.deepcopy(full)
    caught = _forget_recording(est, X[forget], y[forget])
    if _kl(est, retrained) > _kl(full, retrained):
        assert caught
        assert est.forget_report_.warnings


@pytest.mark.parametrize("data", ["breast_cancer", "wine_raw"])
def test_logistic_sequential_requests_equal_their_union_and_interleave(data):
    X, y = _classification(data)
    forget, keep = _forget_set(X, "random", seed=5)
    first, second = forget[: forget.size // 2], forget[forget.size // 2 :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        steps = BayesianLogisticRegression().fit(X, y).partial_unfit(X[first], y[first])
        steps.partial_unfit(X[second], y[second])
        once = BayesianLogisticRegression().fit(X, y).partial_unfit(X[forget], y[forget])
        assert _kl(steps, once) < 1e-10
        # forget, learn new rows, forget more
        X_new = X[first] * 1.01
        est = BayesianLogisticRegression().fit(X, y).partial_unfit(X[first], y[first])
        est.partial_fit(X_new, y[first]).partial_unfit(X[second], y[second])
    retrained = BayesianLogisticRegression().fit(
        np.vstack([X[keep], X_new]), np.r_[y[keep], y[first]]
    )
    nothing = BayesianLogisticRegression().fit(np.vstack([X, X_new]), np.r_[y, y[first]])
    assert _kl(est, retrained) < 0.6 * _kl(nothing, retrained)


def test_logistic_forget_all_rows_of_one_class_keeps_classes():
    X, y = load_iris(return_X_y=True)
    est = BayesianLogisticRegression().fit(X, y)
    _forget_recording(est, X[y == 2], y[y == 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    np.testing.assert_array_equal(est.class_count_, [50, 50, 0])
    retrained = BayesianLogisticRegression().fit(X[y < 2], y[y < 2])
    np.testing.assert_array_equal(est.predict(X[y < 2]), retrained.predict(X[y < 2]))


def test_logistic_partial_weights_and_sparse_input():
    import scipy.sparse as sp

    X, y = _classification("breast_cancer")
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    forget, _ = _forget_set(X, "random", seed=4)
    reduced = w.copy()
    reduced[forget] *= 0.5
    full = BayesianLogisticRegression().fit(X, y, sample_weight=w)
    retrained = BayesianLogisticRegression().fit(X, y, sample_weight=reduced)
    est = copy.deepcopy(full).partial_unfit(X[forget], y[forget], w[forget] * 0.5)
    assert _kl(est, retrained) < 0.25 * _kl(full, retrained)
    Xs = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    sparse = BayesianLogisticRegression().fit(Xs, y)
    _forget_recording(sparse, Xs[forget], y[forget])
    dense = BayesianLogisticRegression().fit(Xs.toarray(), y)
    _forget_recording(dense, Xs.toarray()[forget], y[forget])
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10, atol=1e-12)


def test_sparse_gp_classifier_laplace_beats_doing_nothing():
    X, y = _classification("breast_cancer")
    forget, keep = _forget_set(X, "clustered", seed=0)
    full = SparseGPClassifier(inducing_points=15, random_state=0).fit(X, y)
    retrained = SparseGPClassifier(
        kernel=full.kernel_, inducing_points=full.inducing_points_
    ).fit(X[keep], y[keep])
    est = copy.deepcopy(full).partial_unfit(X[forget], y[forget])
    assert _kl(est, retrained) < 0.1 * _kl(full, retrained)


def test_grid_search_over_unlearning_method_prefers_laplace_on_breast_cancer():
    from sklearn.model_selection import GridSearchCV

    X, y = _classification("breast_cancer")
    search = GridSearchCV(
        UnlearningAudit(BayesianLogisticRegression(random_state=0), random_state=0),
        {"estimator__unlearning": ["laplace", "eubo"]},
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        search.fit(X, y)
    assert search.best_params_ == {"estimator__unlearning": "laplace"}


# Refused calls leave the estimator exactly as it was ----------------------------------


def _refusal_estimators():
    Xr, yr = _standard_diabetes()
    Xc, yc = _classification("breast_cancer")
    Xw, yw = _classification("wine_raw")
    return {
        "linear": (BayesianLinearRegression(), Xr, yr),
        "logistic": (BayesianLogisticRegression(), Xc, yc),
        "logistic_multiclass": (BayesianLogisticRegression(), Xw, yw),
        "certified": (BayesianLogisticRegression(removal_noise=1.0), Xc / 20, yc),
        "sgpr": (SparseGPRegressor(inducing_points=10, random_state=0), Xr, yr),
        "sgpc": (SparseGPClassifier(inducing_points=10, random_state=0), Xc, yc),
        "mlp": (BayesianMLPRegressor(hidden_layer_sizes=(4,), max_iter=50), Xr, yr),
    }


@pytest.mark.parametrize(
    "name",
    ["linear", "logistic", "logistic_multiclass", "certified", "sgpr", "sgpc", "mlp"],
)
def test_refused_requests_leave_estimator_byte_identical(name):
    est, X, y = _refusal_estimators()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "random_state" in est.get_params():
            est.set_params(random_state=0)
        est.fit(X[:-5], y[:-5]).partial_unfit(X[:2], y[:2])
    X_nan = X[5:7].copy()
    X_nan[0, 0] = np.nan
    y_other = y[5:7] + 1 if name in ("linear", "sgpr", "mlp") else (y[5:7] + 1) % 2
    requests = [
        (X[-3:], y[-3:], None),  # never learned
        (X[:2], y[:2], None),  # already forgotten
        (X[1:4], y[1:4], None),  # one forgotten among learned rows
        (X[5:7], y_other, None),  # learned rows with another target
        (X_nan, y[5:7], None),
        (X[5:8], y[5:7], None),
        (X[5:7, :-1], y[5:7], None),
        (X[5:7], y[5:7], np.array([2.0, 1.0])),  # more weight than learned
        (X[[5, 5]], y[[5, 5]], None),  # one learned row, twice
    ]
    before = pickle.dumps(est)
    for X_f, y_f, weight in requests:
        with pytest.raises(ValueError):
            est.partial_unfit(X_f, y_f, sample_weight=weight)
        assert pickle.dumps(est) == before


# Known defects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, kind, seed",
    [("breast_cancer", "clustered", 1), ("breast_cancer_raw", "single", 0)],
)
def test_lcodec_is_better_than_doing_nothing_or_warns(data, kind, seed):
    """Cases where the block-only precision downdate was silently worse than nothing."""
    if data == "breast_cancer_raw":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = _classification(data)
    forget, keep = _forget_set(X, kind, seed=seed)
    full = BayesianLogisticRegression(unlearning="lcodec", random_state=0).fit(X, y)
    retrained = BayesianLogisticRegression().fit(X[keep], y[keep])
    est = copy.deepcopy(full)
    caught = _forget_recording(est, X[forget], y[forget])
    assert _kl(est, retrained) < _kl(full, retrained) or caught


def test_mlp_lcodec_is_better_than_doing_nothing_or_warns():
    X, y = _standard_diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = BayesianMLPRegressor(hidden_layer_sizes=(8,), max_iter=500, random_state=0)
        full.fit(X, y)
    forget = np.random.default_rng(0).choice(X.shape[0], 4, replace=False)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = full._local_retrain(X[keep], y[keep], max_iter=2000, tol=1e-10)
    est = copy.deepcopy(full).set_params(unlearning="lcodec", random_state=0)
    caught = _forget_recording(est, X[forget], y[forget])
    specific = [c for c in caught if "noise_variance_" not in str(c.message)]
    assert _kl(est, local) < _kl(full, local) or specific


def test_posterior_kl_and_audit_accept_multiclass_models():
    X, y = load_iris(return_X_y=True)
    a = BayesianLogisticRegression().fit(X, y)
    b = BayesianLogisticRegression().fit(X[10:], y[10:])
    assert posterior_kl(a, b) == pytest.approx(_kl(a, b))
    audit = UnlearningAudit(BayesianLogisticRegression(), random_state=0).fit(X, y)
    assert audit.kl_to_retrained_ < audit.kl_do_nothing_


def test_sparse_gp_regressor_hyperparameter_at_bound_warns():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process.kernels import RBF

    # Unscaled targets and a unit-amplitude kernel whose length scale cannot
    # reach the features' scale (about 0.05): the optimum is at a bound.
    X, y = load_diabetes(return_X_y=True)
    kernel = RBF(1.0, length_scale_bounds=(1.0, 10.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = SparseGPRegressor(kernel=kernel, inducing_points=30, random_state=0)
        est.fit(X, y)
    assert est.score(X, y) < 0  # the probe still bites: worse than the mean
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_sparse_gp_regressor_default_fits_unscaled_targets():
    """From the default start the log path alone ends at a constant predictor on
    diabetes' unscaled targets (R^2 about -3.9, the length scale at its lower
    bound); the softplus path reaches the amplitude they need."""
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = SparseGPRegressor(inducing_points=30, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.4
    assert not [w for w in caught if "bound" in str(w.message)]


def test_disagreement_warning_text_has_a_finite_figure():
    X, y = _classification("breast_cancer")
    forget, _ = _forget_set(X, "single", seed=9)
    est = BayesianLogisticRegression(unlearning="eubo", random_state=0).fit(X, y)
    caught = _forget_recording(est, X[forget], y[forget])
    assert caught  # the result is worse than doing nothing: it must warn
    assert not any("inf times" in str(w.message) for w in caught)
