"""Exact stays exact, or says it is not (issue 11, the exact estimators).

- a forget whose round-off the statistics cannot absorb warns, every time;
  ordinary forgets do not;
- ``compensated=True`` keeps the typo-row forget exact;
- refusals only for what is really wrong: any sequence of learning and
  forgetting learned rows equals a refit;
- clear errors, state unchanged, for input that cannot be learned.
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.linear_model import BayesianRidge

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression


def noisy_rows(seed, n=200, d=3):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, X @ rng.uniform(-3, 3, d) + 0.1 * rng.randn(n)


def with_typo(X, y, where, seed):
    """The issue's data-entry error: one extra row with y = 1e8, or a feature = 1e8."""
    rng = np.random.RandomState(seed + 100)
    row, target = rng.randn(1, X.shape[1]), rng.randn(1)
    if where == "y":
        target[0] = 1e8
    else:
        row[0, rng.randint(X.shape[1])] = 1e8
    return np.vstack([X, row]), np.r_[y, target]


def forget_last(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X[-1:], y[-1:])
    return [w for w in caught if issubclass(w.category, UnlearningWarning)]


# ----------------------------------------------------------- the typo row
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("where", ["y", "x"])
@pytest.mark.parametrize("ledger", [True, False])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_forgetting_a_typo_row_warns_every_time(seed, where, ledger, fit_intercept):
    X, y = noisy_rows(seed)
    X_typo, y_typo = with_typo(X, y, where, seed)
    est = BayesianLinearRegression(ledger=ledger, fit_intercept=fit_intercept)
    caught = forget_last(est.fit(X_typo, y_typo), X_typo, y_typo)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "digits lost" in message and "refit is needed for exactness" in message
    assert "compensated=True" in message
    report = est.forget_report_
    assert report.estimated_error > 1e-8 and report.warnings == (message,)
    assert est.n_samples_seen_ == len(y)  # the forget completed
    # the warning is not a false alarm: the model is far from a refit
    refit = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    assert abs(est.alpha_ / refit.alpha_ - 1) > 1e-8 or np.max(
        np.abs(est.coef_ - refit.coef_)
    ) > 1e-8 * np.max(np.abs(refit.coef_))


def test_a_typo_row_warns_after_more_learning_too():
    X, y = noisy_rows(0)
    X_typo, y_typo = with_typo(X, y, "y", 0)
    est = BayesianLinearRegression().fit(X_typo[:150], y_typo[:150])
    est.partial_fit(X_typo[150:], y_typo[150:])
    with pytest.warns(UnlearningWarning, match="digits lost"):
        est.partial_unfit(X_typo[[3, -1]], y_typo[[3, -1]])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("where", ["y", "x"])
def test_compensated_statistics_forget_the_typo_row_exactly(seed, where):
    X, y = noisy_rows(seed)
    X_typo, y_typo = with_typo(X, y, where, seed)
    est = BayesianLinearRegression(compensated=True).fit(X_typo, y_typo)
    assert forget_last(est, X_typo, y_typo) == []
    assert est.forget_report_.estimated_error < 1e-8
    refit = BayesianLinearRegression().fit(X, y)
    np.testing.assert_allclose(est.alpha_, refit.alpha_, rtol=1e-6)
    np.testing.assert_allclose(est.lambda_, refit.lambda_, rtol=1e-6)
    mean, std = est.predict(X, return_std=True)
    ref_mean, ref_std = refit.predict(X, return_std=True)
    np.testing.assert_allclose(std, ref_std, rtol=1e-6)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-9)


def test_compensated_can_be_switched_on_after_fitting():
    """Switching on continues from the float64 statistics, whose round-off stays counted."""
    X, y = noisy_rows(1)
    X_typo, y_typo = with_typo(X, y, "y", 1)
    est = BayesianLinearRegression().fit(X_typo, y_typo)
    est.set_params(compensated=True)
    assert len(forget_last(est, X_typo, y_typo)) == 1  # lost before it was switched on
    est = BayesianLinearRegression().fit(X, y).set_params(compensated=True)
    est.partial_fit(X_typo[-1:], y_typo[-1:])
    assert forget_last(est, X_typo, y_typo) == []
    refit = BayesianLinearRegression().fit(X, y)
    np.testing.assert_allclose(est.alpha_, refit.alpha_, rtol=1e-6)
    est.set_params(compensated=False).partial_unfit(X[:5], y[:5])
    assert "compensated_statistics_" not in est.__dict__
    np.testing.assert_allclose(
        est.coef_, BayesianLinearRegression().fit(X[5:], y[5:]).coef_, rtol=1e-6
    )


def test_sparse_gp_typo_row_warns_every_time():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (150, 1))
    y = np.sin(X[:, 0]) + 0.1 * rng.randn(150)
    X_typo, y_typo = np.vstack([X, [[0.5]]]), np.r_[y, 1e8]
    for normalize_y in (False, True):
        est = SparseGPRegressor(
            kernel=C(1.0) * RBF(1.0),
            inducing_points=X[:10] + 0.01,
            noise_variance=0.01,
            optimizer=None,
            normalize_y=normalize_y,
        )
        caught = forget_last(est.fit(X_typo, y_typo), X_typo, y_typo)
        assert any("digits lost" in str(w.message) for w in caught)
        assert est.forget_report_.estimated_error > 1e-8


# ------------------------------------------------------- ordinary forgets
def _badly_conditioned():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5) * [1.0, 1e3, 1e-3, 1.0, 1.0] + 1e4
    return X, X @ [1.0, 2.0, 3.0, 4.0, 5.0] * 1e-3 + rng.randn(300)


@pytest.mark.parametrize("data", ["diabetes", "badly conditioned", "noisy rows"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ordinary_forgets_do_not_warn(data, fit_intercept):
    X, y = {
        "diabetes": lambda: load_diabetes(return_X_y=True),
        "badly conditioned": _badly_conditioned,
        "noisy rows": lambda: noisy_rows(3),
    }[data]()
    est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    rng = np.random.RandomState(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        for rows in np.array_split(rng.permutation(len(y))[: len(y) // 2], 5):
            est.partial_unfit(X[rows], y[rows])
            assert est.forget_report_.estimated_error < 1e-8


def test_ordinary_sparse_gp_forgets_do_not_warn():
    X, y = load_diabetes(return_X_y=True)
    X = X / X.std(axis=0)
    Z = X[::20] + 0.01
    for normalize_y in (False, True):
        est = SparseGPRegressor(
            kernel=C(1.0) * RBF(3.0),
            inducing_points=Z,
            noise_variance=0.5 if normalize_y else 3000.0,
            optimizer=None,
            normalize_y=normalize_y,
        ).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnlearningWarning)
            for rows in np.array_split(np.arange(200), 4):
                est.partial_unfit(X[rows], y[rows])
                assert est.forget_report_.estimated_error < 1e-10


# ------------------------------------- refusals only for what is really wrong
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["partial_fit", "forget", "forget half", "keep one"]),
        st.integers(1, 2**12 - 1),
        st.sampled_from([0.5, 1.0, 0.1]),
    ),
    min_size=1,
    max_size=6,
)


def _run_sequence(est, seed, d, operations, identical):
    """Apply the operations; return the pool and the weight each row has left."""
    rng = np.random.RandomState(seed)
    n = 12
    X = rng.randn(n, d) * 2 + 1
    y = X @ rng.randn(d) + rng.randn(n)
    if identical:  # half the pool repeats one row, as real data does
        X[6:], y[6:] = X[6], y[6]
    left = np.ones(n)
    est.fit(X, y)
    for kind, mask, weight in operations:
        rows = np.flatnonzero([(mask >> i) & 1 for i in range(n)])
        if kind == "partial_fit":
            est.partial_fit(X[rows], y[rows], sample_weight=np.full(len(rows), weight))
            left[rows] += weight
            continue
        if kind == "keep one":  # forget everything but one row
            rows = np.delete(np.flatnonzero(left > 0), 0)
        rows = rows[left[rows] > 0]
        forget = left[rows] / 2 if kind == "forget half" else left[rows]
        if (
            not len(rows) or forget.sum() >= left.sum() - 1e-9
        ):  # forgetting everything is refused, rightly
            continue
        est.partial_unfit(X[rows], y[rows], sample_weight=forget)
        left[rows] -= forget
        left[np.abs(left) < 1e-12] = 0.0
    return X, y, left


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(1, 3),
    OPERATIONS,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_any_learn_forget_sequence_equals_bayesian_ridge(
    seed, d, operations, identical, fit_intercept, ledger
):
    # alpha_1 = 2 keeps the evidence well-defined however little weight is left
    # (alpha > 0 needs W - gamma + 2 alpha_1 > 0, and gamma < d <= 3)
    params = {"alpha_1": 2.0, "tol": 1e-10, "fit_intercept": fit_intercept}
    est = BayesianLinearRegression(ledger=ledger, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        X, y, left = _run_sequence(est, seed, d, operations, identical)
    keep = left > 0
    ref = BayesianRidge(**params).fit(X[keep], y[keep], sample_weight=left[keep])
    np.testing.assert_allclose(est.alpha_, ref.alpha_, rtol=1e-5)
    np.testing.assert_allclose(est.lambda_, ref.lambda_, rtol=1e-5)
    mean, std = est.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6 * np.abs(y).max())
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 2), OPERATIONS, st.booleans(), st.booleans())
def test_any_learn_forget_sequence_equals_a_sparse_gp_refit(
    seed, d, operations, identical, normalize_y
):
    Z = np.random.RandomState(seed + 1).randn(5, d) * 2 + 1
    model = {
        "kernel": C(1.3) * RBF(np.full(d, 1.5)),
        "inducing_points": Z,
        "noise_variance": 0.3,
        "optimizer": None,
        "normalize_y": normalize_y,
    }
    est = SparseGPRegressor(**model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        X, y, left = _run_sequence(est, seed, d, operations, identical)
    keep = left > 0
    ref = SparseGPRegressor(**model).fit(X[keep], y[keep], sample_weight=left[keep])
    mean, std = est.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    scale = max(np.abs(ref_mean).max(), 1.0)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_allclose(std, ref_std, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        est.log_marginal_likelihood_value_,
        ref.log_marginal_likelihood_value_,
        rtol=1e-8,
        atol=1e-6,
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_forgetting_down_to_one_row_or_identical_rows_is_not_refused(fit_intercept):
    X, y = noisy_rows(4, n=20)
    X[10:], y[10:] = X[10], y[10]
    for keep in ([0], slice(10, 20)):
        est = BayesianLinearRegression(fit_intercept=fit_intercept, ledger=False).fit(X, y)
        rest = np.setdiff1d(np.arange(20), np.arange(20)[keep])
        est.partial_unfit(X[rest], y[rest])
        ref = BayesianRidge(fit_intercept=fit_intercept).fit(X[keep], y[keep])
        np.testing.assert_allclose(
            est.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6 * np.abs(y).max()
        )
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-5, atol=1e-8)


# ----------------------------------------------------------- n_samples_seen_
def test_rows_forgotten_in_halves_stay_counted_until_their_weight_is_gone():
    X, y = noisy_rows(5, n=30)
    est = BayesianLinearRegression().fit(X, y)
    est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
    assert est.n_samples_seen_ == 30
    est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
    assert est.n_samples_seen_ == 20
    # without the ledger the statistics count each forgotten row as gone, but never
    # drop to zero while weight is left, so learned rows can still be forgotten
    blind = BayesianLinearRegression(ledger=False).fit(X[:10], y[:10])
    for _ in range(3):
        blind.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.25))
    assert blind.n_samples_seen_ == 1
    blind.partial_unfit(X[:5], y[:5], sample_weight=np.full(5, 0.1))
    np.testing.assert_allclose(blind.sufficient_statistics_.weight_sum, 2.0)


# ----------------------------------------------------------------- dtypes
def test_float32_data_gives_float32_results_like_bayesian_ridge():
    X, y = noisy_rows(6)
    X32 = X.astype(np.float32)
    ours, ref = BayesianLinearRegression().fit(X32, y), BayesianRidge().fit(X32, y)
    for name in ("coef_", "sigma_", "X_offset_"):
        assert getattr(ours, name).dtype == getattr(ref, name).dtype == np.float32, name
    assert np.asarray(ours.intercept_).dtype == np.float32
    mean, std = ours.predict(X32, return_std=True)
    assert mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(mean, ref.predict(X32), rtol=1e-4, atol=1e-4)
    ours.partial_unfit(X32[:10], y[:10])
    assert ours.coef_.dtype == np.float32
    assert ours.posterior_.mean.dtype == np.float64  # the statistics stay float64
    assert BayesianLinearRegression().fit(X, y).coef_.dtype == np.float64


# ------------------------------------------------------- clear errors, no change
def _fitted(name):
    X, y = noisy_rows(7, n=60)
    if name == "linear":
        return BayesianLinearRegression().fit(X, y), X, y
    est = SparseGPRegressor(
        kernel=RBF(1.0), inducing_points=X[:6] + 0.1, noise_variance=0.1, optimizer=None
    )
    return est.fit(X, y), X, y


BAD_INPUT = {
    "X = 1e300": (lambda X, y: (np.full_like(X[:5], 1e300), y[:5], None), "Rescale"),
    "y = 1e300": (lambda X, y: (X[:5], np.full(5, 1e300), None), "Rescale"),
    "y strings": (lambda X, y: (X[:5], y[:5].astype(str), None), "numbers"),
    "weight 1e300": (lambda X, y: (X[:5], y[:5], np.full(5, 1e300)), "weights"),
}


@pytest.mark.parametrize("name", ["linear", "sparse gp"])
@pytest.mark.parametrize("case", list(BAD_INPUT))
@pytest.mark.parametrize("method", ["fit", "partial_fit", "partial_unfit"])
def test_input_that_cannot_be_learned_is_refused_clearly(name, case, method):
    est, X, y = _fitted(name)
    make, advice = BAD_INPUT[case]
    X_bad, y_bad, weights = make(X, y)
    if method == "partial_unfit":  # the ledger may refuse first, as clearly
        advice += "|never learned|more weight than"
    before = pickle.dumps(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings on the way
        with pytest.raises(ValueError, match=advice) as info:
            getattr(est, method)(X_bad, y_bad, sample_weight=weights)
    assert type(info.value).__module__.startswith(("sklunlearn", "builtins"))
    assert pickle.dumps(est) == before


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_input_that_cannot_be_learned_is_refused_without_the_ledger(case):
    X, y = noisy_rows(7, n=60)
    est = BayesianLinearRegression(ledger=False).fit(X, y)
    X_bad, y_bad, weights = BAD_INPUT[case][0](X, y)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match=BAD_INPUT[case][1]):
        est.partial_unfit(X_bad, y_bad, sample_weight=weights)
    assert pickle.dumps(est) == before


def test_log_marginal_likelihood_with_a_theta_of_the_wrong_length():
    est, X, y = _fitted("sparse gp")
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match=r"length 2.*log\(noise_variance\)"):
        est.log_marginal_likelihood(np.zeros(1), X=X, y=y)
    with pytest.raises(ValueError, match="length 2"):
        est.log_marginal_likelihood(np.zeros((2, 1)), X=X, y=y)
    assert pickle.dumps(est) == before
    theta = np.append(est.kernel_.theta, np.log(est.noise_variance_))
    np.testing.assert_allclose(
        est.log_marginal_likelihood(theta, X=X, y=y),
        est.log_marginal_likelihood_value_,
        rtol=1e-10,
    )


def test_an_ill_conditioned_precision_is_factorised_without_linalg_errors():
    """The posterior factor comes from a QR of diag(sqrt(alpha s + lambda)) V', not
    from a Cholesky of a precision with a condition number near 1/u."""
    rng = np.random.RandomState(8)
    X = rng.randn(40, 3) * [1e-4, 1.0, 1e4]
    y = X @ [1e4, 1.0, 1e-4] + 1e-4 * rng.randn(40)
    est = BayesianLinearRegression(tol=1e-10).fit(X, y)
    ref = BayesianRidge(tol=1e-10).fit(X, y)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-5, atol=1e-5)
    est.partial_unfit(X[:5], y[:5])
    ref = BayesianRidge(tol=1e-10).fit(X[5:], y[5:])
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(est.predict(X, return_std=True)[1]))


def test_a_precision_no_cholesky_can_factorise_is_factorised_by_qr():
    from scipy import linalg

    from sklunlearn.linear_model._bayesian_linear import EvidenceSolution, _posterior

    V = np.linalg.qr(np.random.RandomState(0).randn(4, 4))[0]
    s = np.array([0.0, 1.0, 1e10, 1e22])
    solution = EvidenceSolution(np.ones(4), 1.0, 1e-8, 1, [], 1.0)
    scale = s + 1e-8
    with pytest.raises(linalg.LinAlgError, match="leading minor"):
        linalg.cholesky((V * scale) @ V.T)
    R = _posterior(solution, s, V).precision_cholesky
    # R'R = V diag(scale) V', checked in V's basis (backward stable: error u ||B||)
    norms = np.linalg.norm(R @ V, axis=0)
    np.testing.assert_allclose(norms, np.sqrt(scale), rtol=1e-6, atol=1e-15 * 1e11)


# ---------------------------------------------------- parameters after fitting
def test_linear_model_recomputes_from_its_statistics_after_set_params():
    X, y = noisy_rows(9, n=80)
    est = BayesianLinearRegression().fit(X, y).set_params(alpha_1=3.0, lambda_2=2.0)
    est.partial_unfit(X[:10], y[:10])
    ref = BayesianLinearRegression(alpha_1=3.0, lambda_2=2.0).fit(X[10:], y[10:])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(est.alpha_, ref.alpha_, rtol=1e-8)


def test_sparse_gp_refuses_to_update_a_model_whose_parameters_changed():
    est, X, y = _fitted("sparse gp")
    est.set_params(noise_variance=0.5)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="noise_variance"):
        est.partial_unfit(X[:3], y[:3])
    assert pickle.dumps(est) == before


def test_reoptimize_starts_a_new_ledger_like_fit():
    est, X, y = _fitted("sparse gp")
    est.set_params(optimizer="fmin_l_bfgs_b")
    est.reoptimize(X[20:], y[20:])
    assert len(est.ledger_) == est.n_samples_seen_ == 40
    assert not est.ledger_.contains(X[:20], y[:20]).any()
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="never learned"):
        est.partial_unfit(X[:3], y[:3])
    assert pickle.dumps(est) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[20:23], y[20:23])
    assert est.n_samples_seen_ == 37
