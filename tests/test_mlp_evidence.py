"""BayesianMLPRegressor(alpha=None): the prior precision learned by the evidence."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.neural_network import ALPHA_RANGE, BayesianMLPRegressor, _mlp


def sine_data(n=150, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.1 * rng.randn(n)


def evidence_fixed_point(est):
    """MacKay's updates recomputed densely from the fitted posterior and weights."""
    posterior = est.posterior_
    theta = posterior.mean
    covariance_trace = np.trace(np.linalg.inv(posterior.precision))
    gamma = theta.size - est.alpha_ * covariance_trace
    return gamma / (theta @ theta), gamma


def test_learned_alpha_is_the_evidence_fixed_point():
    X, y = sine_data()
    settings = dict(hidden_layer_sizes=(8,), random_state=0)
    learned = BayesianMLPRegressor(alpha=None, **settings).fit(X, y)
    alpha, gamma = evidence_fixed_point(learned)
    assert 0 < gamma < learned.posterior_.n_features
    assert alpha == pytest.approx(learned.alpha_, rel=0.011)
    # the same check fails for a prior away from it: the test can tell the two apart
    fixed = BayesianMLPRegressor(alpha=10 * learned.alpha_, **settings).fit(X, y)
    assert fixed.alpha_ == 10 * learned.alpha_
    assert abs(evidence_fixed_point(fixed)[0] / fixed.alpha_ - 1.0) > 0.1
    # the learned prior is the one of the model and its posterior
    assert learned.model_.prior.precision == learned.alpha_


def test_learned_alpha_with_a_fixed_noise_learns_alpha_only():
    X, y = sine_data()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(8,), alpha=None, noise_variance=0.01, random_state=0
    ).fit(X, y)
    assert est.noise_variance_ == 0.01
    assert evidence_fixed_point(est)[0] == pytest.approx(est.alpha_, rel=0.011)


def test_learned_alpha_is_kept_by_forgetting_and_named_in_its_warning():
    X, y = sine_data()
    est = BayesianMLPRegressor(hidden_layer_sizes=(8,), alpha=None, random_state=0)
    est.fit(X, y)
    alpha = est.alpha_
    with pytest.warns(UnlearningWarning, match="alpha_ and noise_variance_ were learned"):
        est.partial_unfit(X[:5], y[:5])
    assert est.alpha_ == alpha
    assert est.model_.prior.precision == alpha
    est.partial_fit(X[:5], y[:5])
    assert est.alpha_ == alpha
    restored = pickle.loads(pickle.dumps(est))
    assert restored.alpha_ == alpha
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    assert clone(est).get_params()["alpha"] is None


@pytest.mark.parametrize("curvature", ["last_layer", "diag"])
def test_learned_alpha_refuses_other_curvatures_and_leaves_the_estimator_as_it_was(
    curvature,
):
    X, y = sine_data()
    est = BayesianMLPRegressor(hidden_layer_sizes=(8,), curvature=curvature)
    est.fit(X, y)
    state = {k: copy.deepcopy(v) for k, v in vars(est).items() if k != "_lock"}
    predictions = est.predict(X, return_std=True)
    est.set_params(alpha=None)
    with pytest.raises(ValueError, match="alpha=None learns the prior precision"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="alpha=None learns the prior precision"):
        clone(est).partial_fit(X, y)
    est.set_params(alpha=1.0)
    after = {k: v for k, v in vars(est).items() if k != "_lock"}
    assert pickle.dumps(after) == pickle.dumps(state)
    np.testing.assert_array_equal(est.predict(X, return_std=True), predictions)


def test_rows_that_determine_no_weight_send_alpha_to_its_bound_and_warn():
    # one distinct row: the evidence wants the weights at zero (alpha to infinity);
    # without the bound alpha's update lost its digits and the factorisation failed
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    X, y = np.repeat(X[:1], 2, axis=0), np.repeat(y[:1], 2)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), alpha=None, noise_variance=0.1, random_state=0
    )
    with pytest.warns(UserWarning, match="sends alpha to the end of its range"):
        est.fit(X, y)
    assert est.alpha_ == ALPHA_RANGE[1]
    assert np.all(np.isfinite(est.predict(X, return_std=True)))


def test_an_unsettled_fixed_point_warns(monkeypatch):
    monkeypatch.setattr(_mlp, "_MAX_EVIDENCE_ROUNDS", 1)
    X, y = sine_data()
    est = BayesianMLPRegressor(hidden_layer_sizes=(8,), alpha=None, random_state=0)
    with pytest.warns(ConvergenceWarning, match="fixed point for alpha did not settle"):
        est.fit(X, y)
    assert est.alpha_ == 1.0  # one round: the MAP at the starting alpha


@pytest.mark.parametrize("alpha", [1.0, None])
def test_constant_targets_fit_with_a_learned_noise(alpha):
    # the targets' variance is round-off here: its inverse started the noise precision
    # near 1e35 and the first posterior failed to factorise
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    X, y = np.repeat(X[:1], 50, axis=0), np.repeat(y[:1], 50)
    assert 0.0 < np.var(y) < 1e-30
    est = BayesianMLPRegressor(hidden_layer_sizes=(5,), alpha=alpha, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X, y)
    np.testing.assert_allclose(est.predict(X[:1]), y[:1], atol=1e-3)
