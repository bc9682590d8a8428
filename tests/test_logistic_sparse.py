"""BayesianLogisticRegression on scipy.sparse input, and one-vs-rest with n_jobs."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.pipeline import make_unlearning_pipeline

TOL = 1e-10


def sparse_data(n_classes, n=300, d=12, seed=0):
    rng = np.random.RandomState(seed)
    X = sparse.random(n, d, density=0.3, random_state=rng, format="csr")
    X.data = rng.randn(X.data.shape[0])
    scores = X.toarray() @ rng.randn(d, n_classes) + 0.3 * rng.randn(n, n_classes)
    return X, np.argmax(scores, axis=1) if n_classes > 2 else (scores[:, 0] > 0) * 1


def assert_same_posteriors(a, b, tol=TOL):
    for p, q in zip(a._posterior_list(), b._posterior_list(), strict=True):
        assert_allclose(p.mean, q.mean, rtol=0, atol=tol)
        assert_allclose(p.precision, q.precision, rtol=tol, atol=tol)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sparse_fit_partial_fit_unfit_and_predictions_equal_dense(
    n_classes, fmt, fit_intercept
):
    X, y = sparse_data(n_classes)
    Xs, D = X.asformat(fmt), X.toarray()
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=y.shape[0])

    def run(X):
        est = BayesianLogisticRegression(fit_intercept=fit_intercept)
        est.fit(X[:200], y[:200], sample_weight=weights[:200])
        est.partial_fit(X[200:], y[200:])
        fitted = est._posterior_list()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)  # the step's self-check
            est.partial_unfit(X[:20], y[:20], sample_weight=weights[:20])
        return est, fitted

    a, a_fitted = run(Xs)
    b, b_fitted = run(D)
    for p, q in zip(a_fitted, b_fitted, strict=True):
        assert_allclose(p.mean, q.mean, rtol=0, atol=TOL)
    assert_same_posteriors(a, b)
    assert a.n_samples_seen_ == b.n_samples_seen_ == 280
    for moderated in (True, False):
        assert_allclose(
            a.predict_proba(Xs, moderated=moderated),
            b.predict_proba(D, moderated=moderated),
            rtol=0,
            atol=TOL,
        )
    assert_allclose(a.decision_function(Xs), b.decision_function(D), rtol=0, atol=TOL)
    assert_array_equal(a.predict(Xs), b.predict(D))


@pytest.mark.parametrize("unlearning", ["eubo", "rkl", "uib", "lcodec"])
def test_sparse_forget_equals_dense_for_every_method(unlearning):
    X, y = sparse_data(2, n=150, d=6)
    results = []
    for rows in (X, X.toarray()):
        est = BayesianLogisticRegression(
            unlearning=unlearning, n_samples=200, random_state=0
        ).fit(rows, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            results.append(est.partial_unfit(rows[:10], y[:10]))
    assert_same_posteriors(*results, tol=1e-8)


def test_variational_fit_on_sparse_equals_dense():
    X, y = sparse_data(2, n=120, d=5)
    a = BayesianLogisticRegression(inference="vi").fit(X, y)
    b = BayesianLogisticRegression(inference="vi").fit(X.toarray(), y)
    assert_same_posteriors(a, b, tol=1e-8)


def test_ledger_treats_sparse_and_dense_copies_of_a_row_as_one_row():
    X, y = sparse_data(3)
    D = X.toarray()
    learned_sparse = BayesianLogisticRegression().fit(X, y)
    learned_dense = BayesianLogisticRegression().fit(D, y)
    # Forget dense rows learned sparse, and sparse rows learned dense.
    learned_sparse.partial_unfit(D[:30], y[:30])
    learned_dense.partial_unfit(X[:30], y[:30])
    assert_same_posteriors(learned_sparse, learned_dense)
    for est in (learned_sparse, learned_dense):
        assert est.n_samples_seen_ == 270
        assert not est.ledger_.contains(D[:30], y[:30].astype(float)).any()
        assert est.ledger_.contains(X[30:], y[30:].astype(float)).all()
        # Forgotten already, in either form: refused.
        with pytest.raises(ValueError, match="never learned or already forgotten"):
            est.partial_unfit(X[:1], y[:1])
        with pytest.raises(ValueError, match="never learned or already forgotten"):
            est.partial_unfit(D[:1], y[:1])


def test_ledger_of_sparse_rows_is_the_ledger_of_dense_rows():
    from sklunlearn.ledger import Ledger

    X, _ = sparse_data(2, n=50, d=4)
    X.data[0] = 0.0  # an explicit stored zero is the implicit zero
    D = X.toarray()
    D[1][D[1] == 0.0] = -0.0
    ledger = Ledger(4)
    target = np.zeros(50)
    assert_array_equal(ledger.fingerprint(X, target), ledger.fingerprint(D, target))
    assert_array_equal(ledger.fingerprint(X.tocsc(), target), ledger.fingerprint(D, target))


def test_rejected_sparse_forget_leaves_the_estimator_unchanged():
    X, y = sparse_data(3)
    est = BayesianLogisticRegression().fit(X[:250], y[:250])
    before = {k: v for k, v in est.__dict__.items() if k != "_lock"}
    ledger_rows = est.ledger_.n_rows
    # Rows 240..259: the last ten were never learned.
    with pytest.raises(ValueError, match="never learned"):
        est.partial_unfit(X[240:260], y[240:260])
    with pytest.raises(ValueError, match="features"):
        est.partial_unfit(sparse.csr_matrix((2, 5)), y[:2])
    assert est.ledger_.n_rows == ledger_rows
    for key, value in before.items():
        assert est.__dict__[key] is value
    assert_same_posteriors(est, BayesianLogisticRegression().fit(X[:250], y[:250]))


def test_one_hot_column_transformer_pipeline_fits_and_forgets():
    rng = np.random.RandomState(0)
    n = 400
    X = np.column_stack([rng.randint(0, 8, n), rng.randint(0, 5, n), rng.randn(n)]).astype(
        float
    )
    y = ((X[:, 0] % 3 == 0) ^ (X[:, 2] > 0.5)).astype(int)
    encoder = ColumnTransformer(
        [
            ("onehot", OneHotEncoder(sparse_output=True), [0, 1]),
            ("scale", StandardScaler(), [2]),
        ],
        sparse_threshold=1.0,
    )
    pipe = make_unlearning_pipeline(encoder, BayesianLogisticRegression())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)  # the encoder's state
        pipe.fit(X, y)
        Z = pipe[0].transform(X)
        assert sparse.issparse(Z)
        pipe.partial_unfit(X[:40], y[:40])
    dense = BayesianLogisticRegression().fit(Z.toarray(), y)
    dense.partial_unfit(Z[:40].toarray(), y[:40])
    assert_same_posteriors(pipe[-1], dense)
    assert_allclose(pipe.predict_proba(X), dense.predict_proba(Z.toarray()), atol=TOL)


@pytest.mark.parametrize("unlearning", ["laplace", "eubo"])
def test_n_jobs_gives_the_results_of_one_job(unlearning):
    X, y = sparse_data(4, n=240)
    runs = []
    for n_jobs in (None, 2):
        est = BayesianLogisticRegression(unlearning=unlearning, n_jobs=n_jobs)
        est.fit(X[:160], y[:160]).partial_fit(X[160:], y[160:])
        est.partial_unfit(X[:15], y[:15]).partial_unfit(X[15:25], y[15:25])
        runs.append(est)
    for p, q in zip(runs[0].posterior_, runs[1].posterior_, strict=True):
        assert_array_equal(p.mean, q.mean)
        assert_array_equal(p.precision, q.precision)
    assert runs[0].forget_report_.moved == runs[1].forget_report_.moved


def test_n_jobs_with_a_shared_random_state_gives_the_results_of_one_job():
    X, y = sparse_data(3, n=150, d=5)
    runs = []
    for n_jobs in (None, 2):
        est = BayesianLogisticRegression(
            unlearning="rkl",
            n_samples=100,
            n_jobs=n_jobs,
            random_state=np.random.RandomState(0),
        ).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            runs.append(est.partial_unfit(X[:10], y[:10]))
    for p, q in zip(runs[0].posterior_, runs[1].posterior_, strict=True):
        assert_array_equal(p.mean, q.mean)


def test_n_jobs_is_not_a_model_parameter():
    X, y = sparse_data(3)
    est = BayesianLogisticRegression().fit(X, y)
    est.set_params(n_jobs=2).partial_unfit(X[:5], y[:5])  # no "changed since fit"
    with pytest.raises(ValueError, match="n_jobs"):
        BayesianLogisticRegression(n_jobs="two").fit(X, y)


def test_sparse_gp_classifier_still_refuses_sparse_input():
    X, y = sparse_data(2, n=40, d=3)
    with pytest.raises(TypeError, match="[Ss]parse"):
        SparseGPClassifier().fit(X, y)
