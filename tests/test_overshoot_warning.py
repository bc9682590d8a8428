"""Forgetting that removes more curvature than the posterior holds is flagged.

Measured against retraining on banknote (standardised, ``inference='vi'``,
``unlearning='eubo'``): draw 3 of the 30% random forget sets ends 1.5x further
from the retrained posterior than doing nothing, with a forgotten precision
below the prior's; it used to pass silently (its move stays under the runaway
threshold). Draw 0 of the 10% sets is a good result and must stay silent.
"""

import copy
import warnings

import pytest
from sklearn.preprocessing import StandardScaler

from sklunlearn._demo import forget_masks
from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import OVERSHOOT_CLIP


@pytest.fixture(scope="module")
def banknote_vi():
    X, y = load_banknote(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = dict(inference="vi", unlearning="eubo", random_state=0)
    return X, y, params, BayesianLogisticRegression(**params).fit(X, y)


def _forget(banknote_vi, fraction, seed):
    X, y, params, full = banknote_vi
    pct = f"{100 * fraction:.0f}%"
    mask = forget_masks(X, fraction, seed)[f"random {pct}"]
    unlearned = copy.deepcopy(full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned.partial_unfit(X[mask], y[mask])
    retrained = BayesianLogisticRegression(**params).fit(X[~mask], y[~mask])
    ratio = unlearned.posterior_.kl_divergence(
        retrained.posterior_
    ) / full.posterior_.kl_divergence(retrained.posterior_)
    messages = [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]
    return ratio, messages, unlearned.unlearning_diagnostics_


def test_over_forgetting_warns(banknote_vi):
    ratio, messages, diagnostics = _forget(banknote_vi, 0.3, seed=3)
    assert ratio > 1
    assert diagnostics["clipped_eigenvalue"] < -OVERSHOOT_CLIP
    assert any("more curvature than the posterior holds" in m for m in messages)


def test_good_forgetting_is_silent(banknote_vi):
    ratio, messages, diagnostics = _forget(banknote_vi, 0.1, seed=0)
    assert ratio < 0.1
    assert diagnostics["clipped_eigenvalue"] > -OVERSHOOT_CLIP
    assert messages == []
