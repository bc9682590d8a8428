"""Forgetting every row of a class says so: a refit would not know the class."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize(
    "estimator",
    [
        BayesianLogisticRegression(),
        SparseGPClassifier(inducing_points=20, optimizer=None, random_state=0),
    ],
    ids=["logistic", "sparse_gp"],
)
def test_forgetting_a_whole_class_warns_once(wine, estimator):
    X, y = wine
    est = estimator.fit(X, y)
    class_two = np.flatnonzero(y == 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        est.partial_unfit(X[class_two[:-1]], y[class_two[:-1]])
    assert not any("Every learned row of class" in str(w.message) for w in caught)
    with pytest.warns(UnlearningWarning, match=r"Every learned row of class\(es\) \[2\]"):
        est.partial_unfit(X[class_two[-1:]], y[class_two[-1:]])
    assert est.class_count_[2] == 0
    assert any("Every learned row" in m for m in est.forget_report_.warnings)
    # the next forget, of another class's rows, does not repeat it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        est.partial_unfit(X[y == 0][:3], y[y == 0][:3])
    assert not any("Every learned row of class" in str(w.message) for w in caught)
