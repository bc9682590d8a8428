"""A saved or copied model keeps nothing of the forgotten rows but the forgotten posterior.

Requests one after another are divided out of an anchor (the posterior before the first
of them) as their union, which needs the anchor and the rows' summed terms; one row's
gradient is a multiple of the row. Those stay in the process: a pickled, deep-copied or
copied model drops them, and its next forget starts from the posterior it holds.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl


@pytest.fixture(scope="module")
def forgotten():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = BayesianLogisticRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        model.partial_unfit(X[:1], y[:1])
    return model, X, y


def test_the_process_keeps_the_pending_state_to_divide_out_the_union(forgotten):
    model, X, _ = forgotten
    gradient = model._pending_forgets[0][1].gradient
    # What a saved model must not hold: the forgotten row, read off its gradient.
    np.testing.assert_allclose(gradient[:-1] / gradient[-1], X[0], rtol=1e-10)


@pytest.mark.parametrize(
    "duplicate",
    [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy, copy.copy],
    ids=["pickle", "deepcopy", "copy"],
)
def test_a_saved_or_copied_model_does_not_keep_the_forgotten_rows_terms(
    forgotten, duplicate
):
    model, X, y = forgotten
    saved = duplicate(model)
    assert "_pending_forgets" not in saved.__dict__
    assert "_pending_origins" not in saved.__dict__
    np.testing.assert_array_equal(saved.posterior_.mean, model.posterior_.mean)
    # Its next forget starts from the posterior it holds, and still forgets.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        saved.partial_unfit(X[1:3], y[1:3])
    retrained = BayesianLogisticRegression().fit(X[3:], y[3:])
    assert posterior_kl(saved, retrained) < 0.5 * posterior_kl(model, retrained)
