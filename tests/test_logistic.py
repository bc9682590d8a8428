"""BayesianLogisticRegression: fitting, prediction, error handling, multiclass."""

import pickle
import warnings

import numpy as np
import pytest
from _reference import logistic_map
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_map_equals_sklearn_logistic_regression(breast_cancer):
    X, y = breast_cancer
    est = BayesianLogisticRegression(alpha=2.0, fit_intercept=False).fit(X, y)
    sk = LogisticRegression(C=0.5, fit_intercept=False, tol=1e-12, max_iter=10_000)
    sk.fit(X, y)
    np.testing.assert_allclose(est.coef_, sk.coef_, atol=1e-4)
    assert est.intercept_.tolist() == [0.0]


def test_precision_is_prior_plus_curvature_at_the_map(breast_cancer):
    X, y = breast_cancer
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    est = BayesianLogisticRegression(alpha=0.7).fit(X, y)
    theta, precision = logistic_map(design, y.astype(float), np.ones(len(y)), 0.7)
    np.testing.assert_allclose(est.posterior_.mean, theta, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(est.coef_[0], theta[:-1])
    np.testing.assert_allclose(est.intercept_[0], theta[-1])
    np.testing.assert_allclose(est.posterior_.precision, precision, rtol=1e-9)


def test_sample_weight_two_equals_duplicated_row(rng):
    X = rng.randn(40, 3)
    y = (X[:, 0] + rng.randn(40) > 0).astype(int)
    w = np.ones(40)
    w[:5] = 2.0
    a = BayesianLogisticRegression().fit(X, y, sample_weight=w)
    b = BayesianLogisticRegression().fit(np.vstack([X, X[:5]]), np.r_[y, y[:5]])
    np.testing.assert_allclose(a.posterior_.mean, b.posterior_.mean, rtol=1e-9)
    np.testing.assert_allclose(a.posterior_.precision, b.posterior_.precision, rtol=1e-9)


def test_moderated_probabilities(breast_cancer):
    X, y = breast_cancer
    est = BayesianLogisticRegression().fit(X[:100], y[:100])
    design = np.hstack([X, np.ones((len(X), 1))])
    mean = design @ est.posterior_.mean
    variance = np.einsum("ij,jk,ik->i", design, est.posterior_.covariance, design)
    moderated = 1.0 / (1.0 + np.exp(-mean / np.sqrt(1.0 + np.pi * variance / 8.0)))
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], moderated, rtol=1e-10)
    map_proba = est.predict_proba(X, moderated=False)[:, 1]
    np.testing.assert_allclose(map_proba, 1.0 / (1.0 + np.exp(-mean)), rtol=1e-10)
    # moderation pulls probabilities towards 1/2 and keeps the ranking
    assert np.all(np.abs(moderated - 0.5) <= np.abs(map_proba - 0.5) + 1e-15)
    np.testing.assert_array_equal(
        np.argsort(est.decision_function(X), kind="stable"),
        np.argsort(est.predict_proba(X)[:, 1], kind="stable"),
    )
    np.testing.assert_array_equal(est.predict(X), (moderated > 0.5).astype(int))


def test_partial_fit_in_one_batch_equals_fit(breast_cancer):
    X, y = breast_cancer
    a = BayesianLogisticRegression().fit(X, y)
    b = BayesianLogisticRegression().partial_fit(X, y, classes=[0, 1])
    np.testing.assert_allclose(a.posterior_.mean, b.posterior_.mean)
    np.testing.assert_allclose(a.posterior_.precision, b.posterior_.precision)


def test_partial_fit_in_batches_is_close_to_fit(breast_cancer):
    X, y = breast_cancer
    full = BayesianLogisticRegression().fit(X, y)
    online = BayesianLogisticRegression()
    for batch in np.array_split(np.arange(len(y)), 4):
        online.partial_fit(X[batch], y[batch], classes=[0, 1])
    # online Laplace is an approximation: close, not equal
    assert online.posterior_.kl_divergence(full.posterior_) < 2.0
    assert np.mean(online.predict(X) == full.predict(X)) > 0.98


def test_partial_fit_needs_classes_first():
    with pytest.raises(ValueError, match="classes must be passed"):
        BayesianLogisticRegression().partial_fit(np.ones((2, 1)), [0, 1])


def test_single_class_fit_raises():
    with pytest.raises(ValueError, match="at least 2 classes"):
        BayesianLogisticRegression().fit(np.ones((3, 1)), [1, 1, 1])


def test_multiclass_one_vs_rest_forgets_each_class():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = BayesianLogisticRegression().fit(X, y)
    assert isinstance(est.posterior_, list) and len(est.posterior_) == 3
    assert est.coef_.shape == (3, 4) and est.intercept_.shape == (3,)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert est.score(X, y) > 0.9
    mask = np.zeros(len(y), dtype=bool)
    mask[::10] = True
    full = est.posterior_
    est.partial_unfit(X[mask], y[mask])
    retrained = BayesianLogisticRegression().fit(X[~mask], y[~mask])
    pairs = zip(est.posterior_, full, retrained.posterior_, strict=True)
    for unlearned, before, after in pairs:
        assert unlearned.kl_divergence(after) < 0.5 * before.kl_divergence(after)
    np.testing.assert_allclose(est.class_count_, [45, 45, 45])


def test_multiclass_warning_names_the_class_whose_problem_went_wrong():
    # Raw iris, 10% forgotten by the plain EUBO: setosa-vs-rest is separable
    # and its EUBO result is worse than doing nothing; the other two are fine.
    X, y = load_iris(return_X_y=True)
    mask = np.zeros(len(y), dtype=bool)
    mask[np.random.RandomState(0).choice(len(y), 15, replace=False)] = True
    est = BayesianLogisticRegression(unlearning="eubo", random_state=0).fit(X, y)
    before = est.posterior_
    with pytest.warns(UnlearningWarning) as caught:
        est.partial_unfit(X[mask], y[mask])
    retrained = BayesianLogisticRegression().fit(X[~mask], y[~mask]).posterior_
    ratios = [
        a.kl_divergence(c) / b.kl_divergence(c)
        for a, b, c in zip(est.posterior_, before, retrained, strict=True)
    ]
    assert ratios[0] > 1 and max(ratios[1:]) < 0.1, ratios
    messages = [str(w.message) for w in caught if w.category is UnlearningWarning]
    assert messages and all(m.startswith("Class 0 (one-vs-rest): ") for m in messages)


def _bad_forget_requests(X, y):
    X_nan = X[:3].copy()
    X_nan[0, 0] = np.nan
    return [
        (X_nan, y[:3], None, ValueError, "NaN"),
        (X[:3, :-1], y[:3], None, ValueError, "features"),
        (X[:3], np.array([0, 1, 7]), None, ValueError, "not in classes_"),
        (np.vstack([X] * 2), np.r_[y, y], None, ValueError, "Cannot forget"),
        (X[:3], y[:3], np.array([1.0, 1e6, 1.0]), ValueError, "Cannot forget weight"),
        (X[:3], y[:3], np.array([1.0, -1.0, 1.0]), ValueError, "Negative"),
    ]


def test_bad_forget_requests_change_nothing(rng):
    X = rng.randn(30, 3)
    y = (X[:, 0] > 0).astype(int)
    est = BayesianLogisticRegression(ledger=False).fit(X, y)
    before = pickle.dumps(est)
    for X_bad, y_bad, w_bad, error, message in _bad_forget_requests(X, y):
        with pytest.raises(error, match=message):
            est.partial_unfit(X_bad, y_bad, sample_weight=w_bad)
        assert pickle.dumps(est) == before


def test_wrong_feature_names_change_nothing(rng):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.randn(20, 2), columns=["a", "b"])
    y = (X["a"] > 0).astype(int)
    est = BayesianLogisticRegression().fit(X, y)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="feature names"):
        est.partial_unfit(X.rename(columns={"a": "c"}), y)
    assert pickle.dumps(est) == before


def test_unfit_raises():
    with pytest.raises(NotFittedError):
        BayesianLogisticRegression().partial_unfit(np.ones((2, 1)), [0, 1])


def test_forgetting_zero_weight_is_a_no_op(breast_cancer):
    X, y = breast_cancer
    est = BayesianLogisticRegression().fit(X, y)
    before = est.posterior_
    est.partial_unfit(X[:10], y[:10], sample_weight=np.zeros(10))
    np.testing.assert_allclose(est.posterior_.mean, before.mean, rtol=1e-12)
    np.testing.assert_allclose(est.posterior_.precision, before.precision, rtol=1e-10)
    assert est.n_samples_seen_ == len(y)


@pytest.mark.parametrize("inference", ["laplace", "vi"])
def test_unconverged_fit_warns(inference):
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1"):
        BayesianLogisticRegression(inference=inference, max_iter=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        BayesianLogisticRegression(inference=inference).fit(X, y)


def test_newton_fit_makes_no_copy_of_the_data():
    # The fused kernel adds the intercept column itself: peak memory during fit
    # stays a small fraction of the data (a copy with the ones column would be 1.05x).
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.randn(50_000, 20)
    y = (X[:, 0] + rng.logistic(size=50_000) > 0).astype(int)
    est = BayesianLogisticRegression(ledger=False)
    est.fit(X[:100], y[:100])  # compile the kernels outside the measurement
    tracemalloc.start()
    try:
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * X.nbytes, peak / X.nbytes


def test_variational_fit_whitens_in_row_blocks():
    # inference='vi' needs each row's predictive variance on every pass; whitened
    # all at once that is a (d, n) temporary on top of the design (2.4x the data).
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.randn(50_000, 20)
    y = (X[:, 0] + rng.logistic(size=50_000) > 0).astype(int)
    est = BayesianLogisticRegression(inference="vi", ledger=False)
    est.fit(X[:100], y[:100])  # compile the kernels outside the measurement
    tracemalloc.start()
    try:
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the design with its ones column (1.05x) and per-row vectors remain
    assert peak < 1.8 * X.nbytes, peak / X.nbytes


@pytest.mark.parametrize("inference", ["laplace", "vi"])
def test_verbose_prints_the_fit_and_changes_nothing(inference, capsys):
    from sklunlearn.gaussian_process import SparseGPClassifier

    X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    for make in (
        lambda **kw: BayesianLogisticRegression(inference=inference, **kw),
        lambda **kw: SparseGPClassifier(inference=inference, inducing_points=X[:10], **kw),
    ):
        quiet = make().fit(X, y)
        assert capsys.readouterr().out == ""
        loud = make(verbose=1).fit(X, y)
        lines = capsys.readouterr().out.splitlines()
        assert sum(line.startswith("Newton iteration") for line in lines) >= 1
        variational = sum(line.startswith("Variational iteration") for line in lines)
        assert (variational >= 1) == (inference == "vi")
        assert len(lines) == loud.n_iter_
        np.testing.assert_array_equal(loud.predict_proba(X), quiet.predict_proba(X))
