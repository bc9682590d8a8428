import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.exceptions import NotPositiveDefiniteError, UnlearningWarning
from sklunlearn.linear_model import BayesianLinearRegression

FITTED = ["coef_", "intercept_", "alpha_", "lambda_", "sigma_", "X_offset_"]


def assert_same_model(a, b, rtol=1e-7, atol=1e-10, same_rows=True):
    for name in FITTED:
        np.testing.assert_allclose(
            getattr(a, name), getattr(b, name), rtol=rtol, atol=atol, err_msg=name
        )
    np.testing.assert_allclose(
        a.posterior_.precision,
        b.posterior_.precision,
        rtol=rtol,
        atol=atol * np.abs(b.posterior_.precision).max(),
    )
    if same_rows:
        assert a.n_samples_seen_ == b.n_samples_seen_


def diabetes():
    return load_diabetes(return_X_y=True)


def badly_conditioned(n=300, seed=0):
    """Large offsets, scales over 6 decades, two nearly collinear columns."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5) * [1.0, 1e3, 1e-3, 1.0, 1.0] + 1e4
    X[:, 3] = X[:, 0] + 1e-6 * rng.randn(n)
    y = X @ [1.0, 2.0, 3.0, 4.0, 5.0] * 1e-3 + rng.randn(n)
    return X, y


# ------------------------------------------------------------------ vs BayesianRidge
@pytest.mark.parametrize("data", [diabetes, badly_conditioned])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fit_intercept": False},
        {"alpha_init": 2.0, "lambda_init": 1e-3},
        {"alpha_1": 1.0, "lambda_2": 3.0},
    ],
)
def test_fit_matches_bayesian_ridge(data, params):
    X, y = data()
    ours = BayesianLinearRegression(tol=1e-12, **params).fit(X, y)
    ref = BayesianRidge(tol=1e-12, **params).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.alpha_, ref.alpha_, rtol=1e-5)
    np.testing.assert_allclose(ours.lambda_, ref.lambda_, rtol=1e-5)
    np.testing.assert_allclose(
        ours.sigma_, ref.sigma_, rtol=1e-5, atol=1e-12 * np.abs(ref.sigma_).max()
    )
    mean, std = ours.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5)
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)


def test_scores_match_bayesian_ridge():
    X, y = diabetes()
    ours = BayesianLinearRegression(compute_score=True, tol=1e-6).fit(X, y)
    ref = BayesianRidge(compute_score=True, tol=1e-6).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.scores_, ref.scores_, rtol=1e-9)


def test_weighted_fit_matches_bayesian_ridge():
    X, y = diabetes()
    w = np.random.RandomState(1).uniform(0.1, 3.0, size=len(y))
    ours = BayesianLinearRegression(tol=1e-12).fit(X, y, sample_weight=w)
    ref = BayesianRidge(tol=1e-12).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5)
    np.testing.assert_allclose(ours.alpha_, ref.alpha_, rtol=1e-5)
    np.testing.assert_allclose(ours.lambda_, ref.lambda_, rtol=1e-5)


def test_more_features_than_samples_matches_bayesian_ridge(rng):
    X = rng.randn(8, 20)
    y = rng.randn(8)
    ours = BayesianLinearRegression(tol=1e-12).fit(X, y)
    ref = BayesianRidge(tol=1e-12).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(ours.sigma_, ref.sigma_, rtol=1e-5, atol=1e-10)


# ------------------------------------------------------------------ forgetting == refit
@pytest.mark.parametrize("data", [diabetes, badly_conditioned])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("which", ["random", "clustered"])
def test_forget_equals_bayesian_ridge_on_remaining(data, fit_intercept, which):
    X, y = data()
    n = len(y)
    if which == "random":
        forget = np.random.RandomState(3).rand(n) < 0.2
    else:
        forget = X[:, 0] > np.quantile(X[:, 0], 0.8)
    est = BayesianLinearRegression(tol=1e-12, fit_intercept=fit_intercept).fit(X, y)
    est.partial_unfit(X[forget], y[forget])
    ref = BayesianRidge(tol=1e-12, fit_intercept=fit_intercept).fit(X[~forget], y[~forget])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-5)
    np.testing.assert_allclose(est.alpha_, ref.alpha_, rtol=1e-5)
    np.testing.assert_allclose(est.lambda_, ref.lambda_, rtol=1e-5)
    mean, std = est.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    np.testing.assert_allclose(
        mean, ref_mean, rtol=1e-5, atol=1e-8 * np.abs(ref_mean).max()
    )
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)
    assert est.n_samples_seen_ == (~forget).sum()


@pytest.mark.parametrize("compensated, kept", [(False, 30), (True, 1)])
def test_report_is_not_exact_when_the_forget_warns_of_round_off(compensated, kept):
    # Raw wine features (magnitudes up to 1e3): forgetting all rows but a few cancels
    # nearly all of the absorbed statistics unless they are compensated. (One row kept
    # with an intercept has no centred Gram left: that forget is exact either way.)
    X, y = load_wine(return_X_y=True)
    est = BayesianLinearRegression(compensated=compensated).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X[kept:], y[kept:])
    messages = [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]
    report = est.forget_report_
    refit = BayesianLinearRegression(compensated=compensated).fit(X[:kept], y[:kept])
    if compensated:
        assert messages == [] and report.exact
        np.testing.assert_allclose(est.alpha_, refit.alpha_, rtol=1e-12)
    else:
        assert len(messages) == 1 and "may differ from a refit" in messages[0]
        assert not report.exact and report.estimated_error > 1e-8
        # the flag is not a false alarm: the model is measurably not the refit
        assert abs(est.alpha_ / refit.alpha_ - 1) > 1e-9


def test_evidence_restarts_instead_of_warm_starting(rng):
    """Hyperparameters after forgetting come from a fresh run of the fixed point."""
    X, y = diabetes()
    est = BayesianLinearRegression(tol=1e-12, compute_score=True).fit(X, y)
    est.partial_unfit(X[:200], y[:200])
    ref = BayesianLinearRegression(tol=1e-12, compute_score=True).fit(X[200:], y[200:])
    assert est.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(est.scores_, ref.scores_, rtol=1e-8)


@given(
    st.integers(2, 6),
    st.integers(3, 30),
    st.integers(1, 30),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_fit_union_then_forget_equals_fit(d, extra, n_b, seed, fit_intercept):
    # A keeps at least d + 3 rows: in the interpolating regime (sse ~ 0) the noise
    # precision is set by round-off, see test_partial_fit_then_partial_unfit_is_identity.
    rng = np.random.RandomState(seed)
    n_a = d + extra
    X_a, X_b = rng.randn(n_a, d) * 3 + 1, rng.randn(n_b, d) + rng.randn(d)
    y_a, y_b = X_a @ rng.randn(d) + rng.randn(n_a), rng.randn(n_b) * 5
    params = {"tol": 1e-10, "fit_intercept": fit_intercept}
    forgotten = BayesianLinearRegression(**params).fit(
        np.vstack([X_a, X_b]), np.r_[y_a, y_b]
    )
    forgotten.partial_unfit(X_b, y_b)
    direct = BayesianLinearRegression(**params).fit(X_a, y_a)
    assert_same_model(forgotten, direct, rtol=1e-6, atol=1e-8)


@given(st.integers(1, 5), st.integers(3, 25), st.integers(1, 10), st.integers(0, 2**31 - 1))
def test_partial_fit_then_partial_unfit_is_identity(d, extra, k, seed):
    # extra >= 3 rows beyond d keep a residual: with an exact interpolation the
    # noise precision is set by sse ~ 0, where any round-off is a large relative change.
    rng = np.random.RandomState(seed)
    n = d + extra
    X, y = rng.randn(n, d), rng.randn(n)
    X_new, y_new = rng.randn(k, d) * 10, rng.randn(k) * 10
    w = rng.uniform(0.1, 4.0, size=k)
    est = BayesianLinearRegression(tol=1e-10).fit(X, y)
    before = BayesianLinearRegression(tol=1e-10).fit(X, y)
    est.partial_fit(X_new, y_new, sample_weight=w).partial_unfit(
        X_new, y_new, sample_weight=w
    )
    assert_same_model(est, before, rtol=1e-6, atol=1e-8)


@given(st.integers(1, 4), st.integers(3, 20), st.integers(0, 2**31 - 1))
def test_integer_weights_equal_repeated_rows(d, n, seed):
    rng = np.random.RandomState(seed)
    X, y = rng.randn(n, d), rng.randn(n)
    counts = rng.randint(1, 4, size=n)
    weighted = BayesianLinearRegression(tol=1e-10).fit(X, y, sample_weight=counts)
    repeated = BayesianLinearRegression(tol=1e-10).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    assert_same_model(weighted, repeated, rtol=1e-6, atol=1e-8, same_rows=False)
    assert weighted.sufficient_statistics_.weight_sum == counts.sum()


@given(st.integers(1, 4), st.integers(3, 20), st.integers(0, 2**31 - 1))
def test_weighted_forgetting_equals_reduced_weights(d, extra, seed):
    # remaining weights >= 1 on >= d + 3 rows: the evidence needs sum(w) > d (see
    # test_too_little_weight_for_the_evidence)
    rng = np.random.RandomState(seed)
    n = d + extra
    X, y = rng.randn(n, d), rng.randn(n)
    w = rng.uniform(2.0, 4.0, size=n)
    w_forget = w * rng.uniform(0.0, 0.5, size=n)
    forgotten = BayesianLinearRegression(tol=1e-10).fit(X, y, sample_weight=w)
    forgotten.partial_unfit(X, y, sample_weight=w_forget)
    reduced = BayesianLinearRegression(tol=1e-10).fit(X, y, sample_weight=w - w_forget)
    for name in ["coef_", "intercept_", "alpha_", "lambda_"]:
        np.testing.assert_allclose(
            getattr(forgotten, name), getattr(reduced, name), rtol=1e-6, atol=1e-8
        )


def test_too_little_weight_for_the_evidence(rng):
    """sum(w) below the effective number of parameters drives alpha negative."""
    X, y = rng.randn(10, 6), rng.randn(10)
    with pytest.raises(ValueError, match="total sample weight"):
        BayesianLinearRegression().fit(X, y, sample_weight=np.full(10, 0.05))
    est = BayesianLinearRegression().fit(X, y)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="total sample weight"):
        est.partial_unfit(X, y, sample_weight=np.full(10, 0.97))
    assert pickle.dumps(est) == before


def test_zero_weight_equals_absent_row(rng):
    X, y = rng.randn(30, 3), rng.randn(30)
    w = np.ones(30)
    w[:5] = 0.0
    assert_same_model(
        BayesianLinearRegression().fit(X, y, sample_weight=w),
        BayesianLinearRegression().fit(X[5:], y[5:]),
        rtol=1e-9,
    )
    est = BayesianLinearRegression().fit(X, y)
    before = pickle.dumps(est)
    est.partial_unfit(X[:3], y[:3], sample_weight=np.zeros(3))
    assert_same_model(est, pickle.loads(before), rtol=1e-12)


@given(
    st.integers(1, 5),
    st.lists(st.integers(1, 15), min_size=1, max_size=6),
    st.integers(0, 2**31 - 1),
)
def test_fit_equals_chunked_partial_fit(d, chunks, seed):
    rng = np.random.RandomState(seed)
    n = sum(chunks)
    X, y = rng.randn(n, d) + 5, rng.randn(n)
    chunked = BayesianLinearRegression(tol=1e-10)
    start = 0
    for size in chunks:
        chunked.partial_fit(X[start : start + size], y[start : start + size])
        start += size
    assert_same_model(
        chunked, BayesianLinearRegression(tol=1e-10).fit(X, y), rtol=1e-6, atol=1e-8
    )


def test_many_small_forget_requests_equal_one(rng):
    X, y = diabetes()
    order = rng.permutation(len(y))
    forget = order[:300]
    one = BayesianLinearRegression(tol=1e-12).fit(X, y).partial_unfit(X[forget], y[forget])
    many = BayesianLinearRegression(tol=1e-12).fit(X, y)
    for i in forget:
        many.partial_unfit(X[i : i + 1], y[i : i + 1])
    assert_same_model(many, one, rtol=1e-6, atol=1e-9)
    keep = order[300:]
    assert_same_model(
        many,
        BayesianLinearRegression(tol=1e-12).fit(X[keep], y[keep]),
        rtol=1e-6,
        atol=1e-9,
    )


def test_long_add_remove_sequence_does_not_drift():
    X, y = diabetes()
    rng = np.random.RandomState(7)
    est = BayesianLinearRegression(tol=1e-12)
    learned = np.zeros(len(y), dtype=bool)
    initial = rng.choice(len(y), 100, replace=False)
    est.fit(X[initial], y[initial])
    learned[initial] = True
    for _ in range(400):
        size = rng.randint(1, 8)
        if rng.rand() < 0.5 and learned.sum() > 50:
            rows = rng.choice(np.flatnonzero(learned), size, replace=False)
            est.partial_unfit(X[rows], y[rows])
            learned[rows] = False
        else:
            candidates = np.flatnonzero(~learned)
            rows = rng.choice(candidates, min(size, len(candidates)), replace=False)
            est.partial_fit(X[rows], y[rows])
            learned[rows] = True
    refit = BayesianLinearRegression(tol=1e-12).fit(X[learned], y[learned])
    for name in ["coef_", "intercept_", "alpha_", "lambda_"]:
        np.testing.assert_allclose(getattr(est, name), getattr(refit, name), rtol=1e-5)
    np.testing.assert_allclose(est.predict(X), refit.predict(X), rtol=1e-5)


def test_pickle_keeps_the_ability_to_forget():
    X, y = diabetes()
    est = pickle.loads(pickle.dumps(BayesianLinearRegression().fit(X, y)))
    est.partial_unfit(X[:50], y[:50])
    assert_same_model(est, BayesianLinearRegression().fit(X[50:], y[50:]), rtol=1e-6)


def test_statistics_store_no_rows():
    X, y = diabetes()
    stats = BayesianLinearRegression().fit(X, y).sufficient_statistics_
    sizes = [np.size(field) for field in stats]
    assert max(sizes) == X.shape[1] ** 2


def test_statistics_merge_like_a_group(rng):
    from sklunlearn.linear_model import LinearStatistics

    X, y, w = rng.randn(40, 3) * 100 + 1e5, rng.randn(40), rng.uniform(0.5, 2, 40)
    parts = [LinearStatistics.from_data(X[i::4], y[i::4], w[i::4]) for i in range(4)]
    total = LinearStatistics.from_data(X, y, w)
    merged = parts[0] + parts[1] + parts[2] + parts[3]
    for a, b in zip(merged, total, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
    back = merged - parts[3] - parts[1]
    for a, b in zip(back, parts[0] + parts[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-6)


# ------------------------------------------------------------------ rejected calls
def _fitted(**params):
    X, y = diabetes()
    return BayesianLinearRegression(**params).fit(X[:200], y[:200]), X, y


def _bad_calls(X, y):
    nan_X = X[:3].copy()
    nan_X[0, 0] = np.nan
    inf_y = y[:3].copy()
    inf_y[1] = np.inf
    return {
        "nan in X": lambda e: e.partial_unfit(nan_X, y[:3]),
        "inf in y": lambda e: e.partial_unfit(X[:3], inf_y),
        "wrong feature count": lambda e: e.partial_unfit(X[:3, :5], y[:3]),
        "more rows than learned": lambda e: e.partial_unfit(X, y),
        "more weight than learned": lambda e: e.partial_unfit(
            X[:2], y[:2], sample_weight=[1e6, 1.0]
        ),
        "negative weight": lambda e: e.partial_unfit(X[:2], y[:2], sample_weight=[-1.0, 1]),
        "rows never learned": lambda e: e.partial_unfit(X[300:330] * 50, y[300:330]),
        "forget everything": lambda e: e.partial_unfit(X[:200], y[:200]),
        "nan in partial_fit": lambda e: e.partial_fit(nan_X, y[:3]),
        "wrong features in partial_fit": lambda e: e.partial_fit(X[:3, :4], y[:3]),
        "nan in fit": lambda e: e.fit(nan_X, y[:3]),
        "bad parameter in fit": lambda e: e.set_params(max_iter=0).fit(X, y),
    }


@pytest.mark.parametrize("call", list(_bad_calls(np.zeros((400, 10)), np.zeros(400))))
def test_rejected_call_leaves_state_identical(call):
    est, X, y = _fitted()
    before = pickle.dumps(est)
    with pytest.raises((ValueError, NotPositiveDefiniteError)):
        _bad_calls(X, y)[call](est)
    if call == "bad parameter in fit":
        est.set_params(max_iter=300)
    assert pickle.dumps(est) == before


def test_rejection_messages_say_what_is_wrong():
    # the statistics' own refusals: without the ledger, which refuses first
    est, X, y = _fitted(ledger=False)
    with pytest.raises(ValueError, match="only 200 rows"):
        est.partial_unfit(X, y)
    with pytest.raises(ValueError, match="all of the training weight"):
        est.partial_unfit(X[:2], y[:2], sample_weight=[1e6, 1.0])
    with pytest.raises(NotPositiveDefiniteError, match="not all part of the training data"):
        est.partial_unfit(X[300:330] * 50, y[300:330])
    with pytest.raises(ValueError, match="features"):
        est.partial_unfit(X[:3, :5], y[:3])


def test_feature_names_must_match():
    pd = pytest.importorskip("pandas")
    X, y = diabetes()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = BayesianLinearRegression().fit(frame, y)
    before = pickle.dumps(est)
    renamed = frame.rename(columns={"f0": "other"})
    with pytest.raises(ValueError, match="feature names"):
        est.partial_unfit(renamed.iloc[:5], y[:5])
    assert pickle.dumps(est) == before
    est.partial_unfit(frame.iloc[:5], y[:5])


def test_unfit_before_fit_raises():
    est = BayesianLinearRegression()
    with pytest.raises(NotFittedError):
        est.partial_unfit(np.ones((2, 2)), np.ones(2))
    assert est.__dict__ == BayesianLinearRegression().__dict__


def test_partial_fit_first_call_fits():
    X, y = diabetes()
    assert_same_model(
        BayesianLinearRegression().partial_fit(X, y),
        BayesianLinearRegression().fit(X, y),
        rtol=1e-12,
    )


def test_refit_discards_previous_data():
    X, y = diabetes()
    est = BayesianLinearRegression().fit(X[:100], y[:100]).fit(X[100:], y[100:])
    assert_same_model(est, BayesianLinearRegression().fit(X[100:], y[100:]), rtol=1e-12)


@parametrize_with_checks([BayesianLinearRegression()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
