"""The shared forgetting path: ledger refusals, the forget report, the lock, the guard.

Every estimator goes through ``UnlearningMixin._learn``/``_forget``; these
tests run the same requests against each of them.
"""

import copy
import dataclasses
import json
import pickle
import threading
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process.kernels import RBF

from sklunlearn import ForgetReport
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

rng = np.random.RandomState(0)
X = rng.randn(120, 3)
y_reg = X @ [1.0, -2.0, 0.5] + 0.3 * rng.randn(120)
y_clf = (y_reg + 0.5 * rng.randn(120) > 0).astype(int)
Z = rng.randn(8, 3)

ESTIMATORS = {
    "linear": (BayesianLinearRegression(), y_reg),
    "logistic": (BayesianLogisticRegression(), y_clf),
    "sgpr": (
        SparseGPRegressor(
            kernel=RBF(1.5), inducing_points=Z, optimizer=None, noise_variance=0.1
        ),
        y_reg,
    ),
    "sgpc": (SparseGPClassifier(kernel=RBF(1.5), inducing_points=Z), y_clf),
}
# A parameter that defines each fitted model, with another valid value.
MODEL_PARAMETER = {
    "logistic": {"alpha": 100.0},
    "sgpr": {"noise_variance": 0.5},
    "sgpc": {"kernel": RBF(0.3)},
}
EXACT = {"linear", "sgpr"}


def _fitted(name, **params):
    estimator, y = ESTIMATORS[name]
    return clone(estimator).set_params(**params).fit(X, y), y


def _state(estimator):
    return pickle.dumps(estimator)


def _refused(estimator, X_forget, y_forget, sample_weight=None, match="Cannot forget"):
    before = _state(estimator)
    with pytest.raises(ValueError, match=match) as info:
        estimator.partial_unfit(X_forget, y_forget, sample_weight=sample_weight)
    assert _state(estimator) == before
    assert "Nothing was changed" in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_rows_never_learned_are_refused(name):
    est, y = _fitted(name)
    fake = X[:5] + 0.01
    message = _refused(est, np.vstack([X[:2], fake]), np.r_[y[:2], y[:5]])
    assert "Cannot forget 5 of the 7 rows" in message and "2, 3, 4, 5, 6" in message


@pytest.mark.parametrize("name", ESTIMATORS)
def test_rows_forgotten_twice_or_listed_twice_are_refused(name):
    est, y = _fitted(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:5], y[:5])
    _refused(est, X[:5], y[:5])
    _refused(est, X[[10, 11, 10]], y[[10, 11, 10]])
    _refused(est, X[10:13], y[10:13], sample_weight=[1.0, 3.0, 1.0])
    assert est.n_samples_seen_ == len(y) - 5


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_row_forgotten_in_halves_stays_counted_until_its_weight_is_gone(name):
    est, y = _fitted(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
        assert est.n_samples_seen_ == len(y)
        assert len(est.ledger_) == len(y)
        est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
    assert est.n_samples_seen_ == len(y) - 10
    assert len(est.ledger_) == len(y) - 10
    assert not est.ledger_.contains(X[:10], y[:10].astype(float)).any()
    _refused(est, X[:1], y[:1], sample_weight=[0.5])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_ledger_false_trusts_the_caller(name):
    est, y = _fitted(name, ledger=False)
    assert not hasattr(est, "ledger_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:5] + 0.01, y[:5])  # not learned, but not checked either


@pytest.mark.parametrize("name", ESTIMATORS)
def test_forget_report(name):
    est, y = _fitted(name)
    assert not hasattr(est, "forget_report_")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X[:6], y[:6], sample_weight=[1, 1, 1, 1, 0.5, 0])
    report = est.forget_report_
    assert isinstance(report, ForgetReport)
    assert report.exact == (name in EXACT)
    assert report.n_rows == 5 and report.weight == 4.5
    assert report.seconds > 0 and report.moved > 0
    issued = [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]
    assert list(report.warnings) == list(dict.fromkeys(issued))
    text = json.dumps(report.to_dict())
    assert json.loads(text)["n_rows"] == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.n_rows = 0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_moved_is_the_mahalanobis_distance_of_the_mean(name):
    est, y = _fitted(name)
    before = est._posterior_list()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:20], y[:20])
    after = est._posterior_list()[0]
    r = np.linalg.cholesky(before.precision).T @ (after.mean - before.mean)
    assert est.forget_report_.moved == pytest.approx(np.linalg.norm(r), rel=1e-8)


@pytest.mark.parametrize("name", sorted(MODEL_PARAMETER))
@pytest.mark.parametrize("method", ["partial_unfit", "partial_fit"])
def test_model_parameters_changed_after_fit_are_refused(name, method):
    est, y = _fitted(name)
    ((param, value),) = MODEL_PARAMETER[name].items()
    old = est.get_params()[param]
    before = _state(est)
    est.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param} changed since the model was fitted"):
        getattr(est, method)(X[:3], y[:3])
    est.set_params(**{param: old})
    assert _state(est) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        getattr(est, method)(X[:3], y[:3])  # set back: accepted


def test_fit_intercept_changed_after_fit_is_refused_clearly():
    est, y = _fitted("logistic")
    est.set_params(fit_intercept=False)
    with pytest.raises(ValueError, match="fit_intercept changed since"):
        est.partial_unfit(X[:3], y[:3])


@pytest.mark.parametrize("name", ["logistic", "sgpc"])
def test_forgetting_method_parameters_may_change_between_requests(name):
    est, y = _fitted(name)
    est.set_params(unlearning="eubo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:3], y[:3])
    assert est.forget_report_.method == "eubo"


def test_linear_regression_recomputes_after_set_params():
    est, y = _fitted("linear")
    est.set_params(fit_intercept=False)
    est.partial_unfit(X[:10], y[:10])
    refit = BayesianLinearRegression(fit_intercept=False).fit(X[10:], y[10:])
    np.testing.assert_allclose(est.coef_, refit.coef_, rtol=1e-9)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_copies_and_pickles_have_their_own_lock(name):
    est, y = _fitted(name)
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est), copy.copy(est)):
        assert other.__dict__.get("_lock") is None or other._lock is not est._lock
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            other.partial_unfit(X[:2], y[:2])
    assert "_lock" not in clone(est).__dict__


def _requests(n_threads, n_requests, rows):
    order = rng.permutation(n_threads * n_requests * rows)
    return order.reshape(n_threads, n_requests, rows)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_threads_lose_no_deletion(name):
    n_threads, n_requests, rows, kept = 8, 50, 2, 800
    X_big = np.random.RandomState(1).randn(n_threads * n_requests * rows + kept, 3)
    if name in ("linear", "sgpr"):
        y_big = X_big @ [1.0, -2.0, 0.5] + 0.3 * np.random.RandomState(2).randn(len(X_big))
    else:
        y_big = (X_big[:, 0] + X_big[:, 1] > 0).astype(int)
    estimator = clone(ESTIMATORS[name][0]).fit(X_big, y_big)
    sequential = copy.deepcopy(estimator)
    requests = _requests(n_threads, n_requests, rows)
    errors = []

    def serve(batches):
        try:
            for rows_ in batches:
                estimator.partial_unfit(X_big[rows_], y_big[rows_])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        threads = [threading.Thread(target=serve, args=(r,)) for r in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for rows_ in requests.reshape(-1, rows):
            sequential.partial_unfit(X_big[rows_], y_big[rows_])
    assert errors == []
    assert estimator.n_samples_seen_ == kept == sequential.n_samples_seen_
    assert len(estimator.ledger_) == kept
    a, b = estimator._posterior_list()[0], sequential._posterior_list()[0]
    # Exact forgetting does not depend on the order; approximate forgetting does,
    # a little, so the approximate estimators are compared more loosely.
    rtol = 1e-7 if name in EXACT else 0.05
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=rtol)


def test_pipeline_ledger_keys_the_input_rows():
    from sklearn.preprocessing import FunctionTransformer

    from sklunlearn.pipeline import make_unlearning_pipeline

    X_pos = np.abs(X) + 0.1
    pipe = make_unlearning_pipeline(
        FunctionTransformer(np.log1p), BayesianLinearRegression()
    ).fit(X_pos, y_reg)
    assert pipe.ledger_.contains(X_pos[:3], y_reg[:3]).all()
    assert not pipe.ledger_.contains(np.log1p(X_pos[:3]), y_reg[:3]).any()
    pipe.partial_unfit(X_pos[:3], y_reg[:3])  # the rows as they were fitted
    assert pipe.forget_report_.n_rows == 3
    before = pickle.dumps(pipe)
    with pytest.raises(ValueError, match="Cannot forget"):
        pipe.partial_unfit(X_pos[:3], y_reg[:3])
    assert pickle.dumps(pipe) == before


@pytest.mark.parametrize("method", ["eubo", "rkl"])
def test_a_method_that_gives_up_is_refused_and_the_retry_accepted(method):
    # With unlearning_lambda near 1 the adjusted likelihood's region holds none of the
    # posterior, so VBU returns it as it was (and warns): recording the rows as
    # forgotten would refuse the retry with a method that forgets them.
    from sklearn.datasets import load_breast_cancer

    X_bc, y_bc = load_breast_cancer(return_X_y=True)
    X_bc = (X_bc - X_bc.mean(axis=0)) / X_bc.std(axis=0)
    est = BayesianLogisticRegression(unlearning=method, unlearning_lambda=0.999)
    est.fit(X_bc, y_bc)
    before = pickle.dumps(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        with pytest.raises(ValueError, match="left the posterior exactly as it was"):
            est.partial_unfit(X_bc[:6], y_bc[:6])
    assert pickle.dumps(est) == before
    est.set_params(unlearning="laplace").partial_unfit(X_bc[:6], y_bc[:6])
    assert est.forget_report_.moved > 0.01
    assert est.n_samples_seen_ == X_bc.shape[0] - 6


def test_a_forget_that_changes_nothing_without_a_warning_is_accepted():
    # Rows the model is certain about carry no gradient and no curvature: dividing
    # them out leaves the posterior as it was, which is what a refit gives too.
    X_sep = np.vstack([np.full((20, 1), -1.0), np.full((20, 1), 1.0), [[60.0]]])
    y_sep = np.array([0] * 20 + [1] * 21)
    est = BayesianLogisticRegression(alpha=1e-3).fit(X_sep, y_sep)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        est.partial_unfit(X_sep[-1:], y_sep[-1:])
    assert est.forget_report_.moved < 1e-9
    assert est.n_samples_seen_ == 40


def test_only_the_methods_own_warning_makes_an_unchanged_forget_a_refusal():
    # The estimator's routine warnings (what its hyperparameters still carry) come with
    # a forget of rows the model was certain about too: that forget is accepted.
    from types import SimpleNamespace

    from sklunlearn.base import UpdateOutcome, _did_nothing

    posterior = _fitted("logistic")[0].posterior_
    routine = ("the kernel was learned from data that included the forgotten rows",)
    quiet = UpdateOutcome("laplace", False, diagnostics=SimpleNamespace(warnings=()))
    gave_up = UpdateOutcome("eubo", False, diagnostics=SimpleNamespace(warnings=routine))
    assert not _did_nothing(quiet._replace(warnings=routine), [posterior], [posterior], 0.0)
    assert _did_nothing(gave_up._replace(warnings=routine), [posterior], [posterior], 0.0)
    assert not _did_nothing(gave_up, [posterior], [posterior], 1e-6)  # it moved
