"""BayesianMLPRegressor against MLPRegressor's behaviour: nearly constant targets, a
precision float64 cannot factorise, the forget warning's grammar, a batch_size above
the rows, MLPRegressor's structural attributes, and the units of loss_ and n_iter_."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from sklunlearn.exceptions import NotPositiveDefiniteError, UnlearningWarning
from sklunlearn.neural_network import BayesianMLPRegressor, _mlp


def rows(n=100, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, 2), rng.randn(n)


def fit_recording(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# ------------------------------------------------------------ nearly constant targets
@pytest.mark.parametrize("mean", [0.0, 3.0])
@pytest.mark.parametrize("scale", [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10])
def test_nearly_constant_targets_fit_with_a_noise_at_or_above_the_floor(mean, scale):
    # 1 / var(y) started the learned noise precision beyond what the posterior's
    # Cholesky factorisation holds against the prior: s <= 1e-7 raised
    # NotPositiveDefiniteError from inside fit.
    X, z = rows()
    y = mean + scale * z
    est = BayesianMLPRegressor(hidden_layer_sizes=(5,), random_state=0)
    messages = fit_recording(est, X, y)
    floor = X.shape[0] / (_mlp._MAX_PRECISION_RATIO * est.alpha_)
    assert est.noise_variance_ >= floor * (1 - 1e-12)
    at_floor = [m for m in messages if "A learned noise variance is kept at least" in m]
    reached = est.noise_variance_ <= floor * (1 + 1e-12) or np.var(y) < floor
    assert len(at_floor) == reached
    if scale <= 1e-7:  # the evidence's noise, about scale**2, is below the floor
        assert at_floor and "Standardise y" in at_floor[0]
        # the floor's own warning replaces the one that blames the prior's scale
        assert not any("explains none" in m for m in messages)
    if scale >= 1e-4:
        assert not at_floor
    mean_pred, std = est.predict(X, return_std=True)
    assert np.all(np.isfinite(std))
    # the predictive band, noise included, covers every training target
    assert np.all(np.abs(mean_pred - y) < 4 * std)


@pytest.mark.parametrize("curvature", ["diag", "last_layer"])
def test_nearly_constant_targets_fit_with_the_other_curvatures(curvature):
    X, z = rows()
    est = BayesianMLPRegressor(hidden_layer_sizes=(5,), curvature=curvature, random_state=0)
    messages = fit_recording(est, X, 3.0 + 1e-8 * z)
    assert any("A learned noise variance is kept at least" in m for m in messages)
    assert not any("explains none" in m for m in messages)
    assert np.all(np.isfinite(est.predict(X)))


def test_a_precision_float64_cannot_factorise_is_refused_with_a_clear_error(monkeypatch):
    X, z = rows()
    est = BayesianMLPRegressor(hidden_layer_sizes=(5,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, np.sin(X[:, 0]))
    before = dict(est.__dict__)
    prediction = est.predict(X[:5])

    def refuse(mean, precision):
        raise NotPositiveDefiniteError("11-th leading minor")

    monkeypatch.setattr(_mlp.GaussianPosterior, "from_precision", refuse)
    est.set_params(noise_variance=1e-14)
    with pytest.raises(ValueError, match="could not be factorised in float64") as info:
        est.fit(X, 3.0 + 1e-7 * z)
    message = str(info.value)
    assert "Standardise y" in message and "larger noise_variance" in message
    assert "Nothing was changed" in message
    assert "larger prior precision" not in message.split("): ")[-1]
    assert est.__dict__.keys() == before.keys()
    np.testing.assert_array_equal(est.predict(X[:5]), prediction)


# ------------------------------------------------------------ the forget warning
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"curvature": "last_layer", "noise_variance": 0.1},
            "The hidden layers' weights (kept at their MAP) were learned",
        ),
        (
            {"curvature": "last_layer"},
            "and noise_variance_ were learned",
        ),
        ({"curvature": "ggn"}, "noise_variance_ was learned"),
    ],
)
def test_the_leftover_warning_agrees_with_its_subject(params, expected):
    X, z = rows()
    y = np.sin(X[:, 0]) + 0.1 * z
    est = BayesianMLPRegressor(hidden_layer_sizes=(5,), random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.warns(UnlearningWarning) as caught:
        est.partial_unfit(X[:3], y[:3])
    leftover = [str(w.message) for w in caught if "still carr" in str(w.message)]
    assert len(leftover) == 1 and expected in leftover[0]
    plural = "were learned" in expected
    assert ("still carry" in leftover[0]) == plural
    assert ("still carries" in leftover[0]) == (not plural)


# ------------------------------------------------------------ batch_size above n
def test_a_batch_size_above_the_rows_warns_and_is_clipped_as_mlpregressor_does():
    X, z = rows(40)
    y = np.sin(X[:, 0]) + 0.1 * z
    params = dict(hidden_layer_sizes=(5,), solver="adam", max_iter=20, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPRegressor(batch_size=1000, **params).fit(X, y)
    assert any("batch_size" in str(w.message) for w in caught)
    messages = fit_recording(
        big := BayesianMLPRegressor(batch_size=1000, noise_variance=0.1, **params), X, y
    )
    assert [m for m in messages if "batch_size" in m] == [
        "Got `batch_size`=1000 larger than the sample size (40). It is going to be clipped."
    ]
    clipped = BayesianMLPRegressor(batch_size=40, noise_variance=0.1, **params)
    assert not any("batch_size" in m for m in fit_recording(clipped, X, y))
    np.testing.assert_array_equal(big.predict(X), clipped.predict(X))
    # partial_fit runs Adam on its own rows, and warns on them
    with pytest.warns(UserWarning, match=r"sample size \(10\)"):
        big.partial_fit(X[:10], y[:10])


def test_no_batch_size_warning_without_adam_or_without_a_map_fit():
    X, z = rows(40)
    y = np.sin(X[:, 0]) + 0.1 * z
    lbfgs = BayesianMLPRegressor(hidden_layer_sizes=(5,), batch_size=1000, random_state=0)
    assert not any("batch_size" in m for m in fit_recording(lbfgs, X, y))
    # partial_fit of 'last_layer' adds feature statistics: Adam does not run
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), solver="adam", batch_size=20, max_iter=20,
        curvature="last_layer", noise_variance=0.1, random_state=0,
    )  # fmt: skip
    fit_recording(est, X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_fit(X[:10], y[:10])
    assert not any("batch_size" in str(w.message) for w in caught)


# ------------------------------------------------------------ attributes and units
@pytest.mark.parametrize("hidden", [(5,), (4, 3)])
def test_structural_attributes_match_mlpregressor(hidden):
    X, z = rows(40)
    y = np.sin(X[:, 0]) + 0.1 * z
    ours = BayesianMLPRegressor(hidden_layer_sizes=hidden, max_iter=20, random_state=0)
    theirs = MLPRegressor(hidden_layer_sizes=hidden, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    for name in ("n_layers_", "n_outputs_", "out_activation_"):
        assert getattr(ours, name) == getattr(theirs, name), name


def test_loss_is_mlpregressors_divided_by_the_noise_variance():
    X, z = rows(40)
    y = np.sin(X[:, 0]) + 0.1 * z
    noise = 0.01
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), noise_variance=noise, random_state=0, max_iter=20
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # MLPRegressor's loss with alpha_sk = alpha * noise_variance, biases penalised too
    squares = sum(float((c**2).sum()) for c in est.coefs_ + est.intercepts_)
    mlp_loss = np.mean((est.predict(X) - y) ** 2) / 2 + noise * squares / (2 * len(y))
    np.testing.assert_allclose(est.loss_ * noise, mlp_loss, rtol=1e-10)


def test_n_iter_sums_the_evidence_rounds_and_can_exceed_max_iter():
    X, z = rows(40)
    y = np.sin(X[:, 0]) + 0.1 * z
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), solver="adam", max_iter=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert est.n_iter_ > est.max_iter
    fixed = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), solver="adam", max_iter=20, noise_variance=0.01,
        random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed.fit(X, y)
    assert fixed.n_iter_ <= fixed.max_iter


def _batches_learned(alpha, noise_sd, n_batches=10):
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, (100 * n_batches, 1))
    y = np.sin(2 * X[:, 0])
    y = (y - y.mean()) / y.std() + noise_sd * rng.randn(y.shape[0])
    model = BayesianMLPRegressor(hidden_layer_sizes=(10,), alpha=alpha, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(n_batches):
            model.partial_fit(X[100 * k : 100 * (k + 1)], y[100 * k : 100 * (k + 1)])
    messages = [str(w.message) for w in caught]
    return model, [m for m in messages if "now below the floor" in m]


def test_batches_learned_past_the_noise_floor_warn():
    # The noise is learned on the first batch within its floor for that batch's weight;
    # later batches add weight at that noise (30 batches ended 15 times past the floor).
    model, messages = _batches_learned(alpha=1e-4, noise_sd=1e-4)
    total = model._weight_seen[0]
    assert total / (model.noise_variance_ * 1e-4) > 1e12
    assert messages


def test_ordinary_batches_do_not_warn_of_the_noise_floor():
    _, messages = _batches_learned(alpha=1.0, noise_sd=0.1)
    assert not messages
