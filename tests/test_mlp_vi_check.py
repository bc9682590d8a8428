"""The self-check of the Laplace divide-out from a full-covariance variational posterior
(curvature='ggn', inference='vi'): a forget worse than doing nothing warns, an ordinary
one that beats doing nothing does not, and the check's expected terms against a dense
reference."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.metrics import predictive_kl
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.neural_network._variational_check import _ExpectedModel
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import laplace_divide_out
from sklunlearn.utils.estimator_checks import _make_data, _split

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
NOT_SUPPORTED = "not supported by the forgotten rows' likelihood"
# The checks' network (tests/test_unlearning_checks.py, FIXED_NOISE).
CHECKS_NETWORK = {"hidden_layer_sizes": (3,), "random_state": 0, "noise_variance": 0.25}


def _forget(est, X, y, rows):
    """A copy of ``est`` that forgot ``rows``, and the UnlearningWarning texts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned = copy.deepcopy(est).partial_unfit(X[rows], y[rows])
    texts = [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]
    return unlearned, texts


def test_the_checks_request_worse_than_doing_nothing_warns():
    """check_forget_improves_on_doing_nothing's request: forgetting 10 of 60 rows from
    the variational posterior ends further from the refit than doing nothing, so the
    step's check must warn, as the Laplace forget's does."""
    est = BayesianMLPRegressor(inference="vi", **CHECKS_NETWORK)
    X, y = _make_data(est)
    forget, keep = _split(X.shape[0])
    full = clone(est).fit(X, y)
    unlearned, texts = _forget(full, X, y, forget)
    refit = clone(est).fit(X[keep], y[keep])
    assert predictive_kl(unlearned, refit, X) > predictive_kl(full, refit, X)
    assert any(NOT_SUPPORTED in t and "variational posterior" in t for t in texts), texts
    report = unlearned.forget_report_
    assert report.diagnostics.mean_relinearisation > 1.0
    assert any(NOT_SUPPORTED in t for t in report.warnings)


def test_the_variational_check_measures_what_the_laplace_check_does_for_gaussian_noise():
    """With Gaussian noise the linearised expectations of the rows' gradient and
    curvature are their values at the mean, so the variational posterior is the
    Laplace one and the two checks must measure the same on the same request."""
    X, y = _make_data(BayesianMLPRegressor(**CHECKS_NETWORK))
    forget, _ = _split(X.shape[0])
    measures = {}
    for inference in ("laplace", "vi"):
        est = BayesianMLPRegressor(inference=inference, **CHECKS_NETWORK).fit(X, y)
        record = _forget(est, X, y, forget)[0].forget_report_.diagnostics
        measures[inference] = (
            record.mean_relinearisation,
            record.covariance_relinearisation,
        )
    np.testing.assert_allclose(measures["vi"], measures["laplace"], rtol=1e-8)


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def test_an_ordinary_small_forget_that_beats_doing_nothing_does_not_warn():
    """1% of standardised diabetes at random: the forget is closer to the local
    variational retrain than doing nothing, the check runs (finite measures) and it
    does not warn."""
    X, y = _diabetes()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), inference="vi", random_state=0, max_iter=3000, tol=1e-8
    ).fit(X, y)
    forget = np.sort(np.random.RandomState(0).choice(X.shape[0], 4, replace=False))
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    unlearned, texts = _forget(est, X, y, forget)
    local = est._local_retrain(X[keep], y[keep])
    nothing = est.posterior_.kl_divergence(local.posterior_)
    assert unlearned.posterior_.kl_divergence(local.posterior_) < 0.9 * nothing
    assert predictive_kl(unlearned, local, X) < predictive_kl(est, local, X)
    record = unlearned.forget_report_.diagnostics
    assert 0.0 <= record.mean_relinearisation < 1.0
    assert 0.0 <= record.covariance_relinearisation < 0.02
    # only the routine note that the learned noise still carries the rows
    assert all(t.startswith("noise_variance_ was learned") for t in texts), texts


def test_the_expected_terms_against_a_dense_reference():
    """The check's rows under ``N(theta, S)``: Gaussian noise adds ``-beta J S J' / 2``
    to the value and leaves the derivatives at ``theta``; the curvature applied to
    vectors is the dense curvature times them."""
    est = BayesianMLPRegressor(inference="vi", **CHECKS_NETWORK)
    X, y = _make_data(est)
    est.fit(X, y)
    model, posterior = est.model_, est.posterior_
    rows, weights = slice(0, 7), np.linspace(0.5, 2.0, 7)
    theta = posterior.mean + 0.1 * np.random.RandomState(0).randn(posterior.n_features)
    expected = _ExpectedModel(model.predictor, model.likelihood, model.prior, posterior)
    terms = expected.terms(X[rows], y[rows], weights, theta)
    J = model.predictor.jacobian(X[rows], theta)
    beta = model.likelihood.noise_precision
    residual = y[rows] - model.predictor.value(X[rows], theta)
    covariance = np.linalg.inv(posterior.precision)
    variance = np.einsum("ij,jk,ik->i", J, covariance, J)
    value = weights @ (
        0.5 * np.log(beta / (2 * np.pi)) - 0.5 * beta * (residual**2 + variance)
    )
    np.testing.assert_allclose(terms.log_likelihood, value, rtol=1e-10)
    np.testing.assert_allclose(
        terms.gradient, J.T @ (weights * beta * residual), rtol=1e-10
    )
    hessian = J.T @ (beta * weights[:, None] * J)
    np.testing.assert_allclose(terms.hessian, hessian, rtol=1e-10, atol=1e-12)
    vectors = np.random.RandomState(1).randn(posterior.n_features, 3)
    applied = expected.terms(X[rows], y[rows], weights, theta, vectors=vectors).hessian
    np.testing.assert_allclose(applied, hessian @ vectors, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("inference", ["laplace", "vi"])
def test_the_step_precision_share_is_checked_from_a_variational_posterior(inference):
    """A step along which the forgotten rows held 80% of the precision warns from
    either posterior; one where they held 20% does not."""
    est = BayesianMLPRegressor(inference=inference, **CHECKS_NETWORK)
    p = 4
    before = GaussianPosterior.from_precision(np.zeros(p), np.eye(p))
    step = np.ones(p)
    held = GaussianPosterior.from_precision(step, 0.2 * np.eye(p))
    message = est._step_share_message(laplace_divide_out, before, held)
    assert message is not None and "80%" in message
    light = GaussianPosterior.from_precision(step, 0.8 * np.eye(p))
    assert est._step_share_message(laplace_divide_out, before, light) is None
