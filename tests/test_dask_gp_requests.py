"""Sparse GPs on dask: a forget says what a forget in memory says, and what would
compute the rows into the client is refused."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor  # noqa: E402


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _forget_messages(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.partial_unfit(X, y)
    issued = [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]
    return issued, estimator.forget_report_.warnings


def test_classifier_on_dask_warns_of_forgotten_rows_kept_as_inducing_points():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 2)
    y = (X[:, 0] > 0).astype(int)
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    reports = {}
    for name, (rows, labels) in {"memory": (X, y), "dask": (Xd, yd)}.items():
        est = SparseGPClassifier(kernel=RBF(1.0), inducing_points=X[:5]).fit(rows, labels)
        issued, reported = _forget_messages(est, rows[:3], labels[:3])
        assert any("inducing_points_ [0, 1, 2] are copies" in m for m in issued)
        reports[name] = reported
    assert reports["dask"] == reports["memory"]


def test_log_marginal_likelihood_refuses_dask_rows_and_changes_nothing():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 2)
    y = X[:, 0] + 0.1 * rng.randn(300)
    Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    est = SparseGPRegressor(
        kernel=RBF(1.0), inducing_points=X[:10], noise_variance=0.1, optimizer=None
    ).fit(Xd, yd)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="in memory"):
        est.log_marginal_likelihood(X=Xd, y=yd)
    assert pickle.dumps(est) == before
    assert np.isclose(est.log_marginal_likelihood(X=X, y=y), est.log_marginal_likelihood())
