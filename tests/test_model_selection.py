"""UnlearningAudit: what it measures, how it picks rows, and GridSearchCV over it."""

import pickle

import numpy as np
import pytest
from _unlearning_toys import ToyUnlearningClassifier
from numpy.testing import assert_allclose
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl, predictive_kl
from sklunlearn.model_selection import UnlearningAudit


def regression_data(n=80, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, X @ np.linspace(1, -1, d) + 0.3 * rng.randn(n)


def classification_data(n=120, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, (X @ np.linspace(1, -1, d) + rng.randn(n) > 0).astype(int)


def test_audit_measures_against_a_manual_forget_and_refit():
    X, y = regression_data()
    audit = UnlearningAudit(BayesianLinearRegression(), forget_size=0.25, random_state=0)
    assert audit.fit(X, y) is audit
    mask = audit.forget_mask_
    assert mask.dtype == bool and mask.sum() == 20
    manual = BayesianLinearRegression().fit(X, y).partial_unfit(X[mask], y[mask])
    retrained = BayesianLinearRegression().fit(X[~mask], y[~mask])
    full = BayesianLinearRegression().fit(X, y)
    assert_allclose(audit.unlearned_estimator_.coef_, manual.coef_)
    assert_allclose(audit.retrained_estimator_.coef_, retrained.coef_)
    assert_allclose(audit.kl_do_nothing_, posterior_kl(full, retrained))
    assert audit.kl_do_nothing_ > 1e-3
    # exact forgetting: both gaps vanish
    assert audit.kl_to_retrained_ < 1e-9
    assert audit.predictive_kl_ < 1e-9
    assert audit.score(X, y) == -audit.kl_to_retrained_
    assert audit.forget_time_ > 0 and audit.retrain_time_ > 0
    assert audit.n_features_in_ == 3
    assert_allclose(audit.predict(X), manual.predict(X))
    mean, std = audit.predict(X, return_std=True)
    assert_allclose(std, manual.predict(X, return_std=True)[1])
    assert is_regressor(audit)


def test_audit_of_approximate_forgetting_reports_the_gap():
    X, y = classification_data()
    audit = UnlearningAudit(ToyUnlearningClassifier(forget_fraction=0.5), random_state=0)
    audit.fit(X, y)
    mask = audit.forget_mask_
    unlearned, retrained = audit.unlearned_estimator_, audit.retrained_estimator_
    assert 0 < audit.kl_to_retrained_ < audit.kl_do_nothing_
    assert_allclose(audit.kl_to_retrained_, posterior_kl(unlearned, retrained))
    assert_allclose(audit.predictive_kl_, predictive_kl(unlearned, retrained, X))
    assert audit.predictive_kl_ > 0
    assert is_classifier(audit)
    assert_allclose(audit.predict_proba(X[:5]), unlearned.predict_proba(X[:5]))
    np.testing.assert_array_equal(audit.classes_, [0, 1])
    np.testing.assert_array_equal(audit.predict(X), unlearned.predict(X))
    assert mask.sum() == 12
    assert not hasattr(UnlearningAudit(BayesianLinearRegression()).fit(X, y), "classes_")


@pytest.mark.parametrize(
    "forget_size, expected_rows",
    [
        (0.1, 8),
        (0.01, 1),  # at least one row
        (5, 5),
        (lambda X, y: X[:, 0] > 1.0, None),
        (lambda X, y: np.flatnonzero(y > 1.0), None),
    ],
)
def test_forget_size_fraction_count_and_callable(forget_size, expected_rows):
    X, y = regression_data()
    audit = UnlearningAudit(
        BayesianLinearRegression(), forget_size=forget_size, random_state=1
    ).fit(X, y)
    if callable(forget_size):
        chosen = forget_size(X, y)
        expected = chosen if chosen.dtype == bool else np.isin(np.arange(80), chosen)
        np.testing.assert_array_equal(audit.forget_mask_, expected)
    else:
        assert audit.forget_mask_.sum() == expected_rows
    assert audit.kl_to_retrained_ < 1e-9


def test_random_state_makes_the_forget_set_reproducible():
    X, y = regression_data()
    audits = [
        UnlearningAudit(BayesianLinearRegression(), random_state=seed).fit(X, y)
        for seed in (3, 3, 4)
    ]
    masks = [audit.forget_mask_ for audit in audits]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


def test_sample_weight_is_used_for_fitting_and_forgetting():
    X, y = regression_data()
    weights = np.random.RandomState(0).uniform(0.5, 2, 80)
    audit = UnlearningAudit(BayesianLinearRegression(), random_state=0)
    audit.fit(X, y, sample_weight=weights)
    mask = audit.forget_mask_
    retrained = BayesianLinearRegression().fit(
        X[~mask], y[~mask], sample_weight=weights[~mask]
    )
    assert_allclose(audit.retrained_estimator_.coef_, retrained.coef_)
    assert audit.kl_to_retrained_ < 1e-9


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"forget_size": 0.0}, InvalidParameterError, "forget_size"),
        ({"forget_size": 1.5}, InvalidParameterError, "forget_size"),
        ({"forget_size": 80}, ValueError, "at least one row must remain"),
        ({"forget_size": lambda X, y: np.ones(80, bool)}, ValueError, "must remain"),
        ({"forget_size": lambda X, y: np.zeros(80, bool)}, ValueError, "forgotten"),
        ({"forget_size": lambda X, y: np.ones(3, bool)}, ValueError, "shape"),
        ({"forget_size": lambda X, y: np.array([0.5])}, ValueError, "integer"),
        ({"estimator": Ridge()}, InvalidParameterError, "estimator"),
    ],
)
def test_bad_parameters_are_rejected(params, error, match):
    X, y = regression_data()
    audit = UnlearningAudit(BayesianLinearRegression()).set_params(**params)
    with pytest.raises(error, match=match):
        audit.fit(X, y)


def test_unfitted_audit():
    audit = UnlearningAudit(BayesianLinearRegression())
    with pytest.raises(ValueError, match="not fitted"):
        audit.score(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y to be passed"):
        audit.fit(np.zeros((4, 3)), None)


def test_grid_search_picks_the_unlearning_hyperparameter_closest_to_retraining():
    X, y = classification_data()
    search = GridSearchCV(
        UnlearningAudit(ToyUnlearningClassifier(), random_state=0),
        {"estimator__forget_fraction": [0.3, 1.0, 0.7]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"estimator__forget_fraction": 1.0}
    assert abs(search.best_score_) < 1e-9
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[2] < scores[1]
    assert search.predict(X).shape == (120,)
    assert pickle.loads(pickle.dumps(search)).best_params_ == search.best_params_


def test_grid_search_over_bayesian_logistic_regression():
    # The pattern of the user guide, on the package's approximate estimator.
    X, y = classification_data(n=150)
    search = GridSearchCV(
        UnlearningAudit(BayesianLogisticRegression(), random_state=0),
        {"estimator__alpha": [0.1, 1.0, 10.0]},
        cv=2,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores <= 0) and np.all(np.isfinite(scores))
    assert search.best_score_ == scores.max()
    audit = search.best_estimator_
    assert 0 < audit.kl_to_retrained_ < audit.kl_do_nothing_


def test_audit_pickles_and_clones():
    X, y = regression_data()
    audit = UnlearningAudit(BayesianLinearRegression(), random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(audit))
    assert_allclose(restored.predict(X), audit.predict(X))
    assert restored.kl_to_retrained_ == audit.kl_to_retrained_
    assert clone(audit).get_params()["forget_size"] == 0.1


def _expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "the forget set is drawn by row: repeating rows instead of weighting them "
            "changes which rows are forgotten, hence the unlearned model"
        ),
        "check_regressors_train": (
            "score is minus the KL to the retrained model (at most 0), not R^2"
        ),
    }


@parametrize_with_checks(
    [UnlearningAudit(BayesianLinearRegression(), random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_a_failing_audit_leaves_the_previous_one_intact():
    class NoStd(BayesianLinearRegression):
        def predict(self, X):
            return super().predict(X)

    X, y = regression_data()
    audit = UnlearningAudit(BayesianLinearRegression(), random_state=0).fit(X, y)
    before = pickle.dumps(audit)
    # Fails at the very end: predictive_kl needs predict(X, return_std=True).
    audit.set_params(estimator=NoStd())
    with pytest.raises(TypeError, match="return_std"):
        audit.fit(X, y)
    audit.set_params(estimator=BayesianLinearRegression())
    assert pickle.dumps(audit) == before


def test_audit_retrains_a_sparse_gp_over_the_same_variables(recwarn):
    from sklunlearn.gaussian_process import SparseGPRegressor

    X, y = regression_data(n=150)
    sgpr = SparseGPRegressor(inducing_points=15, random_state=0)
    audit = UnlearningAudit(sgpr, forget_size=0.2, random_state=0).fit(X, y)
    full, retrained = audit.unlearned_estimator_, audit.retrained_estimator_
    # A refit from scratch would choose its own inducing points and hyperparameters.
    assert_allclose(retrained.inducing_points_, full.inducing_points_, rtol=0, atol=0)
    assert retrained.kernel_ == full.kernel_ and retrained.optimizer is None
    assert retrained.noise_variance_ == full.noise_variance_
    mask = audit.forget_mask_
    manual = SparseGPRegressor(
        inducing_points=full.inducing_points_,
        kernel=full.kernel_,
        noise_variance=full.noise_variance_,
        optimizer=None,
    ).fit(X[~mask], y[~mask])
    assert audit.kl_to_retrained_ < 1e-8 < audit.kl_do_nothing_
    assert posterior_kl(full, manual) < 1e-8
    assert not [w for w in recwarn if "different variables" in str(w.message)]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_an_audit_that_forgets_a_whole_class_is_refused_before_any_fit(n_classes):
    """The retrained model would not know the class: its posteriors are not comparable
    (the audit raised from inside posterior_kl, or the retrain had one class)."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    keep = y < n_classes
    X, y = StandardScaler().fit_transform(X[keep]), y[keep]
    audit = UnlearningAudit(BayesianLogisticRegression(), forget_size=lambda X, y: y == 0)
    with pytest.raises(ValueError, match=r"every row of class\(es\) \[0\]"):
        audit.fit(X, y)
    assert not hasattr(audit, "unlearned_estimator_")
    # One row of the class left: audited.
    audit.set_params(forget_size=lambda X, y: np.flatnonzero(y == 0)[1:]).fit(X, y)
    assert audit.kl_to_retrained_ < audit.kl_do_nothing_
