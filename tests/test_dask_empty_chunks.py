"""Dask collections with chunks (or all) of no rows, as filtering leaves them."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import StandardScaler

from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")


def with_an_empty_chunk(X):
    """``X`` as a dask array whose second chunk has no rows."""
    return da.from_array(X, chunks=((40, 0, X.shape[0] - 40), (X.shape[1],)))


@pytest.mark.parametrize(
    "make, data, method, kwargs",
    [
        (BayesianLinearRegression, load_diabetes, "predict", {"return_std": True}),
        (
            lambda: SparseGPRegressor(inducing_points=10, optimizer=None, random_state=0),
            load_diabetes,
            "predict",
            {"return_std": True},
        ),
        (BayesianLogisticRegression, load_breast_cancer, "predict_proba", {}),
        (BayesianLogisticRegression, load_breast_cancer, "decision_function", {}),
    ],
    ids=["linear", "sparse_gp", "logistic_proba", "logistic_decision"],
)
def test_predictions_skip_empty_chunks(client, make, data, method, kwargs):
    X, y = data(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:120]
    est = make().fit(X, y[:120])
    expected = getattr(est, method)(X, **kwargs)
    lazy = getattr(est, method)(with_an_empty_chunk(X), **kwargs)
    result = [part.compute() for part in lazy] if kwargs else lazy.compute()
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-14)


def test_a_classifier_fit_on_no_rows_says_so(client):
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        BayesianLogisticRegression().fit(
            da.zeros((0, 3), chunks=(0, 3)), da.zeros(0, chunks=0)
        )
