"""Requests one after another, and rows the model has no information about.

A method's checks judge their own step; once a forget warned, its error stays in the
posterior, and later requests, whose checks re-evaluate only their own rows, must
account for it. And a row the model is certain about (gradient and curvature at the
level of round-off) must be forgotten without a warning: doing nothing is exact for it.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl


def forget_warned(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.partial_unfit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_requests_after_a_warned_one_keep_warning_while_the_model_is_worse(wine):
    X, y = wine
    rows = np.random.RandomState(100).choice(len(y), 16, replace=False)
    full = BayesianLogisticRegression(alpha=0.01).fit(X, y)
    model = copy.deepcopy(full)
    warned = [bool(forget_warned(model, X[[i]], y[[i]])) for i in rows]
    keep = np.setdiff1d(np.arange(len(y)), rows)
    retrained = BayesianLogisticRegression(alpha=0.01).fit(X[keep], y[keep])
    # This sequence ends worse than doing nothing ...
    assert posterior_kl(model, retrained) > posterior_kl(full, retrained)
    # ... and its later requests, which pass their own checks, must warn all the same.
    assert all(warned[2:])
    last = model.forget_report_.warnings
    assert any("earlier forget" in message for message in last)


def after_four_forgets(X, y):
    """A weak-prior model after four single-row forgets, at least one of which warned."""
    model = BayesianLogisticRegression(alpha=0.01).fit(X, y)
    rows = np.random.RandomState(100).choice(len(y), 4, replace=False)
    for i in rows:
        forget_warned(model, X[[i]], y[[i]])
    assert model._warned_forgets >= 1
    return model, rows


def test_a_fit_clears_the_earlier_warnings(wine):
    X, y = wine
    model, _ = after_four_forgets(X, y)
    model.fit(X, y)
    # A first single-row forget that its own check passes, from a fresh fit.
    assert not any("earlier forget" in m for m in forget_warned(model, X[:1], y[:1]))


def test_a_refused_forget_leaves_the_count_of_warned_forgets_as_it_was(wine):
    X, y = wine
    model, rows = after_four_forgets(X, y)
    count = model._warned_forgets
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        with pytest.raises(UnlearningWarning):
            model.partial_unfit(X[rows[0] + 1 : rows[0] + 2], y[rows[0] + 1 : rows[0] + 2])
    assert model._warned_forgets == count


@pytest.mark.parametrize("unlearning", ["laplace", "lcodec"])
def test_a_row_the_model_is_certain_about_is_forgotten_not_refused(unlearning):
    X, y = load_breast_cancer(return_X_y=True)  # raw features: logits of +-40
    full = BayesianLogisticRegression(unlearning=unlearning, random_state=0).fit(X, y)
    p = full.predict_proba(X, moderated=False)[np.arange(len(y)), y]
    i = int(np.argmax(p))
    assert 1.0 - p[i] < 1e-15
    model = copy.deepcopy(full)
    messages = forget_warned(model, X[[i]], y[[i]])  # was: ValueError, refused
    assert not messages
    assert not model.ledger_.contains(X[[i]], y[[i]]).any()
    keep = np.setdiff1d(np.arange(len(y)), [i])
    retrained = BayesianLogisticRegression(unlearning=unlearning).fit(X[keep], y[keep])
    assert posterior_kl(model, retrained) <= posterior_kl(full, retrained) + 1e-12
