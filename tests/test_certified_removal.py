"""Certified removal (Guo et al. 2020): perturbed fit, residual bound, certificate."""

import json
import pickle
import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.preprocessing import normalize

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import (
    LOGISTIC_GAMMA,
    CertifiedDiagnostics,
    RemovalCertificate,
    certificate_constant,
)


@pytest.fixture(scope="module")
def digits_3_8():
    """Digits 3 and 8, rows scaled to unit norm (Guo et al.'s ||x|| <= 1)."""
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    return normalize(X[keep]), (y[keep] == 8).astype(int)


def _gradient(X, y, theta, alpha, b=None):
    """Gradient of ``sum_i loss_i + alpha/2 ||theta||^2 (+ b' theta)``, no intercept."""
    gradient = X.T @ (expit(X @ theta) - y) + alpha * theta
    return gradient if b is None else gradient + b


def _b(seed, noise, p):
    """The ``b`` a fit with ``random_state=seed`` draws (binary: one problem)."""
    return np.random.RandomState(seed).normal(0.0, noise, size=(1, p))[0]


def test_residual_bound_covers_the_true_residual(digits_3_8):
    # 3-vs-8 has 357 rows, so the 500 single-row removals cannot be made;
    # after 90 (a quarter) the stored precision still needs no flooring, which
    # would make the step something other than Newton's (and void the bound).
    X, y = digits_3_8
    n = X.shape[0]
    alpha = 1e-2 * n
    est = BayesianLogisticRegression(
        alpha=alpha, fit_intercept=False, removal_noise=0.0, ledger=False
    ).fit(X, y)
    assert est.certificate_.residual_bound < 1e-10 and not est.certificate_.valid
    assert est.certificate_.epsilon == np.inf
    keep = np.ones(n, dtype=bool)
    newton = 0.0
    for count, i in enumerate(np.random.RandomState(0).permutation(n)[:90]):
        est.partial_unfit(X[i : i + 1], y[i : i + 1])
        keep[i] = False
        certificate = est.certificate_
        assert certificate.reason.startswith("removal_noise=0")  # nothing else voided it
        assert certificate.n_removals == count + 1
        residual = np.linalg.norm(_gradient(X[keep], y[keep], est.coef_[0], alpha))
        assert residual <= certificate.residual_bound
        # Guo et al.'s Theorem 1 for one removal from n_left rows, C = 1,
        # lambda = alpha / n_left per row: never below the data-dependent term.
        n_left = keep.sum() + 1
        worst = 4 * LOGISTIC_GAMMA / ((alpha / n_left) ** 2 * (n_left - 1))
        assert certificate.newton_bound - newton <= worst
        newton = certificate.newton_bound
    assert 0.0 < certificate.newton_bound < certificate.residual_bound


def test_perturbed_fit_minimises_the_perturbed_objective(digits_3_8):
    X, y = digits_3_8
    alpha, noise = 5.0, 0.5
    est = BayesianLogisticRegression(
        alpha=alpha, fit_intercept=False, removal_noise=noise, random_state=3
    ).fit(X, y)
    b = _b(3, noise, X.shape[1])
    assert np.linalg.norm(_gradient(X, y, est.coef_[0], alpha, b)) < 1e-8
    # ... and not the unperturbed one.
    assert np.linalg.norm(_gradient(X, y, est.coef_[0], alpha)) > 0.1 * noise


def test_perturbed_fit_moves_by_the_expected_amount(digits_3_8):
    # theta_b - theta_0 ~ -H^-1 b, so E||theta_b - theta_0||^2 ~ sigma^2 tr(H^-2).
    X, y = digits_3_8
    alpha, noise = 5.0, 0.05
    plain = BayesianLogisticRegression(alpha=alpha, fit_intercept=False).fit(X, y)
    H = plain.posterior_.precision
    expected = noise**2 * np.trace(np.linalg.inv(H @ H))
    shifts = [
        np.sum(
            (
                BayesianLogisticRegression(
                    alpha=alpha, fit_intercept=False, removal_noise=noise, random_state=s
                )
                .fit(X, y)
                .coef_[0]
                - plain.coef_[0]
            )
            ** 2
        )
        for s in range(20)
    ]
    assert 0.7 < np.mean(shifts) / expected < 1.3


def test_b_is_stored_nowhere(digits_3_8):
    X, y = digits_3_8
    alpha, noise = 5.0, 0.5
    est = BayesianLogisticRegression(
        alpha=alpha, fit_intercept=False, removal_noise=noise, random_state=7
    ).fit(X, y)
    est.partial_unfit(X[:3], y[:3])
    b = _b(7, noise, X.shape[1])
    # On a pixel that is 0 in every row the data say nothing, and the minimiser
    # of the perturbed objective is -b_j / alpha there: released by design.
    touched = np.any(X != 0, axis=0)
    assert np.allclose(est.coef_[0, ~touched], -b[~touched] / alpha)
    blob = pickle.dumps(est)
    for vector in (b, -b, -b / alpha):
        for value in vector[touched]:
            assert np.float64(value).tobytes() not in blob
    for name, value in vars(est).items():
        if isinstance(value, np.ndarray) and value.shape[-1] == b.shape[0]:
            value = value.reshape(-1, b.shape[0])[:, touched]
            assert not np.any(np.isclose(np.abs(value), np.abs(b[touched]))), name
            assert not np.any(np.isclose(np.abs(value), np.abs(b[touched] / alpha))), name


def test_budget_runs_out_with_a_warning(digits_3_8):
    X, y = digits_3_8
    n = X.shape[0]
    est = BayesianLogisticRegression(
        alpha=0.1 * n, fit_intercept=False, removal_noise=1.0, random_state=0
    ).fit(X, y)
    certificate = est.certificate_
    assert certificate.valid and certificate.reason is None and certificate.epsilon < 1e-9
    assert certificate.budget == pytest.approx(1.0 / certificate_constant(1e-4))
    crossed = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        for count in range(n // 2):
            before = est.coef_.copy()
            try:
                est.partial_unfit(X[count : count + 1], y[count : count + 1])
            except UnlearningWarning as warning:
                crossed = count, str(warning)
                break
            assert est.certificate_.valid
            assert est.certificate_.epsilon <= 1.0
    assert crossed is not None, "the budget never ran out"
    # The forget that crossed is refused only because the warning was an error:
    # forget it again with the warning recorded, and check it happened.
    count, message = crossed
    assert "refit" in message
    with pytest.warns(UnlearningWarning, match="refit from the remaining rows"):
        est.partial_unfit(X[count : count + 1], y[count : count + 1])
    assert not np.array_equal(est.coef_, before)
    certificate = est.certificate_
    assert not certificate.valid and certificate.remaining == 0.0
    assert certificate.epsilon > 1.0 and certificate.n_removals == count + 1
    report = est.forget_report_
    assert isinstance(report.diagnostics, CertifiedDiagnostics)
    assert report.diagnostics.certificate == certificate
    assert report.diagnostics.move == report.diagnostics.record.move
    assert json.loads(report.to_json())["diagnostics"]["certificate"]["valid"] is False
    # A larger epsilon only moves the budget: the guarantee holds again.
    est.set_params(removal_epsilon=10.0)
    est.partial_unfit(X[n - 1 :], y[n - 1 :])
    assert est.certificate_.valid


def test_rejected_call_leaves_state_byte_identical(digits_3_8):
    X, y = digits_3_8
    est = BayesianLogisticRegression(
        alpha=5.0, fit_intercept=False, removal_noise=0.5, random_state=0
    ).fit(X, y)
    est.partial_unfit(X[:2], y[:2])
    state = pickle.dumps(est)
    with pytest.raises(ValueError):
        est.partial_unfit(X[:1], y[:1])  # already forgotten: the ledger refuses
    with pytest.raises(ValueError):
        est.partial_unfit(X[2:3], [5])  # unknown label
    assert pickle.dumps(est) == state
    est.set_params(removal_noise=1.0)  # defines the fitted model
    with pytest.raises(ValueError, match="removal_noise"):
        est.partial_unfit(X[2:3], y[2:3])
    est.set_params(removal_noise=0.5)
    assert pickle.dumps(est) == state


@pytest.mark.parametrize("how", ["partial_fit", "eubo"])
def test_what_voids_the_guarantee(digits_3_8, how):
    X, y = digits_3_8
    est = BayesianLogisticRegression(
        alpha=5.0, fit_intercept=False, removal_noise=0.5, random_state=0
    ).fit(X[:300], y[:300])
    est.partial_unfit(X[:2], y[:2])
    assert est.certificate_.valid
    bound = est.certificate_.residual_bound
    if how == "partial_fit":
        est.partial_fit(X[300:], y[300:])
        match = "partial_fit"
    else:
        est.set_params(unlearning="eubo").partial_unfit(X[2:4], y[2:4])
        match = "eubo"
        assert est.forget_report_.diagnostics.certificate == est.certificate_
    assert not est.certificate_.valid and match in est.certificate_.reason
    # Later Laplace forgets still accumulate, but cannot restore it.
    est.set_params(unlearning="laplace").partial_unfit(X[4:6], y[4:6])
    assert est.certificate_.residual_bound > bound
    assert not est.certificate_.valid and match in est.certificate_.reason


def test_multiclass_composes_the_problems():
    X, y = load_digits(n_class=3, return_X_y=True)
    X = normalize(X)
    with pytest.warns(UserWarning, match="norm at most 1"):  # the intercept's column
        est = BayesianLogisticRegression(
            alpha=20.0, removal_noise=1.0, removal_delta=1e-5, random_state=0
        ).fit(X, y)
    assert est.certificate_.delta == pytest.approx(3e-5)
    est.partial_unfit(X[:2], y[:2])
    diagnostics = est.forget_report_.diagnostics
    assert len(diagnostics) == 3
    assert all(record.certificate == est.certificate_ for record in diagnostics)
    # Each problem's b is different: the means moved differently from a plain fit.
    plain = BayesianLogisticRegression(alpha=20.0).fit(X, y)
    moved = np.linalg.norm(est.coef_ - plain.coef_, axis=1)
    assert np.all(moved > 0) and len(set(np.round(moved, 12))) == 3
    certificate = est.certificate_
    assert certificate.valid and 0.0 < certificate.residual_bound < certificate.budget
    assert certificate.epsilon == pytest.approx(
        certificate_constant(1e-5) * certificate.residual_bound
    )
    # The intercept's column makes the design rows longer than 1: scaled by it.
    assert certificate.row_norm == pytest.approx(np.sqrt(2.0))


def test_rows_longer_than_one_are_reported(digits_3_8):
    X, y = digits_3_8
    with pytest.warns(UserWarning, match="norm at most 1"):
        est = BayesianLogisticRegression(removal_noise=1.0, random_state=0).fit(3 * X, y)
    assert est.certificate_.row_norm == pytest.approx(np.sqrt(10.0))


def test_sparse_gp_classifier_is_certified_too():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    est = SparseGPClassifier(
        inducing_points=15, removal_noise=0.0, random_state=0, ledger=False
    ).fit(X, y)
    features = est.model_.predictor.features(X)
    # k(x, x) = 1: the whitened features have norm at most 1 (Nystroem).
    assert est.certificate_.row_norm <= 1.0 + 1e-9
    keep = np.ones(200, dtype=bool)
    for i in range(40):
        est.partial_unfit(X[i : i + 1], y[i : i + 1])
        keep[i] = False
        v = est.whitened_posterior_.mean
        residual = np.linalg.norm(_gradient(features[keep], y[keep], v, 1.0))
        assert residual <= est.certificate_.residual_bound
    noisy = SparseGPClassifier(inducing_points=15, removal_noise=2.0, random_state=0).fit(
        X, y
    )
    assert noisy.certificate_.valid
    b = np.random.RandomState(0).normal(0.0, 2.0, size=(1, 15))[0]
    gradient = _gradient(features, y, noisy.whitened_posterior_.mean, 1.0, b)
    assert np.linalg.norm(gradient) < 1e-8
    noisy.partial_unfit(X[:1], y[:1])
    assert noisy.certificate_.valid and noisy.certificate_.residual_bound > 0
    assert isinstance(noisy.forget_report_.diagnostics, CertifiedDiagnostics)
    assert isinstance(noisy.certificate_, RemovalCertificate)


def test_no_certificate_by_default(digits_3_8):
    X, y = digits_3_8
    est = BayesianLogisticRegression(alpha=5.0).fit(X, y)
    zero = BayesianLogisticRegression(alpha=5.0, removal_noise=0.0).fit(X, y)
    np.testing.assert_array_equal(est.coef_, zero.coef_)  # 0 does not perturb
    est.partial_unfit(X[:2], y[:2])
    zero.partial_unfit(X[:2], y[:2])
    np.testing.assert_array_equal(est.coef_, zero.coef_)
    assert not hasattr(est, "certificate_")
    assert not isinstance(est.forget_report_.diagnostics, CertifiedDiagnostics)
    assert zero.certificate_.n_removals == 1
    # A refit without certified removal drops the certificate.
    zero.set_params(removal_noise=None).fit(X, y)
    assert not hasattr(zero, "certificate_")
