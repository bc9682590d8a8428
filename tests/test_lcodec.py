"""L-CODEC ('lcodec'): FOCI-selected block Newton step, against dense references."""

import json
import pickle
import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import (
    BernoulliLogit,
    GaussianPrior,
    LinearPredictor,
    Model,
    Predictor,
    laplace_divide_out,
    learn,
    register_method,
)
from sklunlearn.unlearning._lcodec import (
    LCodecDiagnostics,
    _warnings,
    block_newton_step,
    divide_out_rows,
    lcodec_forget,
)

register_method("lcodec", lcodec_forget, replace=True)


@pytest.fixture(scope="module")
def digits_odd():
    """Digits, odd against even, standardised (62 parameters with the intercept)."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, X.std(axis=0) > 0])
    return X, y % 2


@pytest.fixture(scope="module")
def fitted(digits_odd):
    X, y = digits_odd
    return BayesianLogisticRegression(ledger=False).fit(X, y)


def _rows(digits_odd, seed, k=10):
    X, y = digits_odd
    forget = np.random.RandomState(seed).choice(y.shape[0], k, replace=False)
    keep = np.setdiff1d(np.arange(y.shape[0]), forget)
    return forget, keep


def _moderated(posterior, model, X):
    mean, variance = model.predictor.moments(X, posterior)
    return expit(mean / np.sqrt(1.0 + np.pi * variance / 8.0))


def _bernoulli_kl(p, q):
    return float(np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))))


def _residual(theta, X, y, alpha):
    """Gradient of the remaining rows' negative log posterior, from the data."""
    r = y - expit(X @ theta[:-1] + theta[-1])
    return float(np.linalg.norm(np.append(X.T @ r, r.sum()) - alpha * theta))


def test_block_step_is_the_laplace_step_when_every_group_is_selected(fitted, digits_odd):
    X, y = digits_odd
    forget, _ = _rows(digits_odd, 0)
    posterior, model = fitted.posterior_, fitted.model_
    args = (posterior, model, X[forget], y[forget].astype(float), np.ones(forget.size))
    block = np.arange(posterior.n_features)
    new, before, after, clipped, distance = block_newton_step(*args, block)
    reference, _ = laplace_divide_out(*args)
    np.testing.assert_allclose(new.mean, reference.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(new.precision, reference.precision, rtol=1e-10, atol=1e-10)
    assert clipped == 0.0
    assert after < 1e-8 * before  # the full Newton step zeroes its quadratic model
    assert distance < 1e-12  # ... and is the full step


def test_block_step_matches_dense_reference(rng):
    n, d, k = 200, 8, 5
    X = rng.randn(n, d)
    y = (X @ rng.randn(d) + rng.randn(n) > 0).astype(float)
    model = Model(LinearPredictor(), BernoulliLogit(), GaussianPrior(2.0, n_features=d + 1))
    posterior, _ = learn(model.prior.posterior(), model, X, y, np.ones(n))
    w = rng.uniform(0.5, 2.0, size=k)
    block = np.array([1, 4, 6, d])
    new, *_ = block_newton_step(posterior, model, X[:k], y[:k], w, block)
    # dense reference: g and H of the rows, the Newton step on the block only
    J = np.hstack([X[:k], np.ones((k, 1))])
    p = expit(J @ posterior.mean)
    g = J.T @ (w * (y[:k] - p))
    H = J.T @ np.diag(w * p * (1 - p)) @ J
    Lam = posterior.precision.copy()
    S = np.ix_(block, block)
    mean = posterior.mean.copy()
    mean[block] -= np.linalg.solve(Lam[S] - H[S], g[block])
    Lam -= H  # the rows' whole curvature leaves the precision, as in 'laplace'
    np.testing.assert_allclose(new.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.precision, Lam, rtol=1e-10, atol=1e-10)
    untouched = np.setdiff1d(np.arange(d + 1), block)
    np.testing.assert_array_equal(new.mean[untouched], posterior.mean[untouched])


def test_record_distances_match_their_definitions(fitted, digits_odd):
    """``move`` and ``full_step_distance`` against the dense full Newton step."""
    X, y = digits_odd
    forget, _ = _rows(digits_odd, 4)
    posterior, model = fitted.posterior_, fitted.model_
    args = (posterior, model, X[forget], y[forget].astype(float), np.ones(forget.size))
    new, record = lcodec_forget(*args, random_state=1)
    J = np.hstack([X[forget], np.ones((forget.size, 1))])
    p = expit(J @ posterior.mean)
    precision = posterior.precision - J.T @ ((p * (1 - p))[:, None] * J)
    full = posterior.mean - np.linalg.solve(precision, J.T @ (y[forget] - p))

    def squared(v, A):
        return v @ A @ v

    assert record.move == pytest.approx(
        np.sqrt(squared(new.mean - posterior.mean, posterior.precision)), rel=1e-10
    )
    expected = squared(new.mean - full, precision) / squared(
        posterior.mean - full, precision
    )
    assert record.full_step_distance == pytest.approx(expected, rel=1e-8)
    # the divide-out computed beforehand (as during the selection) gives the same step
    block = np.array(record.parameters)
    again = block_newton_step(*args, block, divided=divide_out_rows(*args))
    np.testing.assert_array_equal(again[0].mean, new.mean)
    np.testing.assert_array_equal(again[0].precision, new.precision)


def test_lcodec_beats_a_random_subset_of_the_same_size(fitted, digits_odd):
    """Summed over forgets, on the remaining rows' residual and the forgotten rows' KL."""
    X, y = digits_odd
    posterior, model = fitted.posterior_, fitted.model_
    p = posterior.n_features
    totals = np.zeros((2, 2))  # (lcodec, random) x (residual, predictive KL)
    for seed in range(5):
        forget, keep = _rows(digits_odd, seed)
        args = (posterior, model, X[forget], y[forget].astype(float), np.ones(forget.size))
        retrained = BayesianLogisticRegression(ledger=False).fit(X[keep], y[keep])
        target = _moderated(retrained.posterior_, model, X[forget])
        new, record = lcodec_forget(*args, random_state=seed)
        assert 1 < len(record.parameters) < p and record.parameters[-1] == p - 1
        rng = np.random.RandomState(seed)
        draws = []
        for _ in range(10):  # the intercept and as many random weights
            block = np.append(
                np.sort(rng.choice(p - 1, len(record.selected), False)), p - 1
            )
            draws.append(block_newton_step(*args, block)[0])
        for row, results in enumerate([[new], draws]):
            totals[row] += np.mean(
                [
                    (
                        _residual(r.mean, X[keep], y[keep], fitted.alpha),
                        _bernoulli_kl(target, _moderated(r, model, X[forget])),
                    )
                    for r in results
                ],
                axis=0,
            )
    assert totals[0, 0] < totals[1, 0]
    assert totals[0, 1] < totals[1, 1]


def test_record_and_reproducibility(fitted, digits_odd):
    X, y = digits_odd
    forget, _ = _rows(digits_odd, 1)
    args = (fitted.posterior_, fitted.model_, X[forget], y[forget].astype(float))
    new, record = lcodec_forget(*args, np.ones(forget.size), random_state=3)
    again, same = lcodec_forget(*args, np.ones(forget.size), random_state=3)
    np.testing.assert_array_equal(new.mean, again.mean)
    assert isinstance(record, LCodecDiagnostics) and record == same
    assert len(record.dependence) == len(record.selected) > 0
    assert all(c > 0 for c in record.dependence)
    # a linear model's group j is w_j; the intercept is always updated
    assert record.parameters == tuple(sorted((*record.selected, X.shape[1])))
    assert record.n_candidates == X.shape[1] and record.n_iter == 1
    assert (record.predicted_residual >= record.gradient_norm) == bool(record.warnings)
    json.dumps(record.to_dict())
    capped = lcodec_forget(
        *args, np.ones(forget.size), random_state=3, lcodec_max_features=2
    )
    assert capped[1].selected == record.selected[:2]
    # a zero weight equals an absent row
    weights = np.ones(forget.size)
    weights[0] = 0.0
    a = lcodec_forget(*args, weights, random_state=3)
    b = lcodec_forget(
        fitted.posterior_,
        fitted.model_,
        X[forget[1:]],
        y[forget[1:]].astype(float),
        np.ones(forget.size - 1),
        random_state=3,
    )
    np.testing.assert_allclose(a[0].mean, b[0].mean, rtol=1e-12, atol=1e-14)


def test_warns_when_the_step_is_no_better_than_nothing():
    (message,) = _warnings(1.0, 1.2, 0.0, 0.5, 3)
    assert "likely worse than not forgetting" in message
    assert _warnings(1.0, 0.5, 0.0, 0.5, 3) == ()
    # a step ending further from the full Newton step than not moving
    (message,) = _warnings(1.0, 0.5, 0.0, 1.5, 3)
    assert "further from the full Newton removal step" in message
    assert _warnings(1.0, 0.5, 0.0, float("nan"), 3) == ()


def test_base_predictor_names_itself():
    class Bare(Predictor):
        pass

    with pytest.raises(NotImplementedError, match="Bare defines no candidate"):
        Bare().candidate_indices(np.zeros(2))
    with pytest.raises(NotImplementedError, match="Bare defines no candidate"):
        Bare().candidate_values(np.zeros((1, 2)), np.zeros(2))


def test_through_the_estimator(digits_odd):
    X, y = digits_odd
    forget, _ = _rows(digits_odd, 4)
    est = BayesianLogisticRegression(unlearning="lcodec", random_state=0).fit(X, y)
    before = est.posterior_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a step that does not help warns; not the point
        est.partial_unfit(X[forget], y[forget])
    direct, record = lcodec_forget(
        before,
        est.model_,
        X[forget],
        y[forget].astype(float),
        np.ones(forget.size),
        random_state=0,
    )
    np.testing.assert_allclose(est.posterior_.mean, direct.mean, rtol=1e-12, atol=1e-14)
    report = est.forget_report_
    assert report.method == "lcodec"
    assert report.diagnostics.selected == record.selected
    assert report.diagnostics.dependence == record.dependence
    assert report.to_dict()["diagnostics"]["selected"] == list(record.selected)


def test_multiclass_one_record_per_problem(digits_odd):
    X = digits_odd[0][:500]
    y = load_digits().target[:500] % 3
    est = BayesianLogisticRegression(unlearning="lcodec", random_state=0, ledger=False)
    est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_unfit(X[:5], y[:5])
    assert len(est.forget_report_.diagnostics) == 3
    assert all(record.selected for record in est.forget_report_.diagnostics)


@pytest.mark.parametrize("params", [{"lcodec_n_perturbations": 1}, {"lcodec_scale": -1.0}])
def test_rejected_calls_leave_the_estimator_unchanged(digits_odd, params):
    X, y = digits_odd
    est = BayesianLogisticRegression(unlearning="lcodec", random_state=0).fit(X, y)
    state = pickle.dumps(est.set_params(**params))
    with pytest.raises(ValueError):  # by the method, or by the parameter validation
        est.partial_unfit(X[:3], y[:3])
    assert pickle.dumps(est) == state


def test_sparse_gp_classifier_selects_inducing_values(digits_odd):
    """The inducing-point predictor's groups are the whitened inducing values."""
    from sklunlearn.gaussian_process import SparseGPClassifier

    X, y = digits_odd[0][:200, :10], digits_odd[1][:200]
    est = SparseGPClassifier(unlearning="lcodec", random_state=0, ledger=False)
    est.fit(X, y)
    m = est.model_.prior.n_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inducing points copied from rows are reported
        est.partial_unfit(X[:5], y[:5])
    record = est.forget_report_.diagnostics
    # no parameter outside the groups: the block is the selected inducing values
    assert record.n_candidates == m and record.parameters == tuple(sorted(record.selected))
    assert 0 < len(record.selected) < m
    assert record.predicted_residual < record.gradient_norm
