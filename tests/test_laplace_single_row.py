"""A single confidently misclassified row with a weak prior: the one-step Laplace
divide-out moves the mean further than the remaining rows' quadratic picture holds,
and lands further from the retrained posterior than doing nothing. The forgotten row's
likelihood is nearly linear over the step, so the relinearisation check is quiet; the
step's Newton decrement must warn. Each case against the posterior retrained on the
remaining rows."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning._checks import (
    COVARIANCE_PER_MOVE,
    MEAN_RELINEARISATION,
    NEWTON_DECREMENT,
)

# The row of standardised breast_cancer its fit is most confidently wrong about.
_MISCLASSIFIED = 297
_DECREMENT_TEXT = "standard deviations of the forgotten posterior"


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _forget(full, X, y, row):
    """A copy of ``full`` with ``row`` forgotten, and the UnlearningWarnings' texts."""
    forgotten = copy.deepcopy(full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forgotten.partial_unfit(X[[row]], y[[row]])
    texts = [str(w.message) for w in caught if w.category is UnlearningWarning]
    return forgotten, texts


def _ratio(forgotten, full, X, y, row, alpha):
    """KL(forgotten || retrained) / KL(full || retrained)."""
    keep = np.arange(len(y)) != row
    retrained = BayesianLogisticRegression(alpha=alpha).fit(X[keep], y[keep]).posterior_
    return forgotten.posterior_.kl_divergence(retrained) / full.posterior_.kl_divergence(
        retrained
    )


def test_a_confidently_misclassified_row_with_a_weak_prior_warns(cancer):
    X, y = cancer
    full = BayesianLogisticRegression(alpha=0.01).fit(X, y)
    # At the posterior mean, not the moderated predictive probability.
    logit = X[_MISCLASSIFIED] @ full.coef_[0] + full.intercept_[0]
    assert (logit if y[_MISCLASSIFIED] == 1 else -logit) < np.log(0.01)  # confidently wrong
    forgotten, texts = _forget(full, X, y, _MISCLASSIFIED)
    assert _ratio(forgotten, full, X, y, _MISCLASSIFIED, 0.01) > 1.0
    # The relinearisation check cannot see it: the row's likelihood is nearly linear.
    diagnostics = forgotten.forget_report_.diagnostics
    assert diagnostics.mean_relinearisation < 0.01 * MEAN_RELINEARISATION
    assert diagnostics.covariance_relinearisation < 0.01 * COVARIANCE_PER_MOVE
    # The decrement, sqrt(delta' P delta), from the two posteriors.
    decrement = forgotten.posterior_.mahalanobis(full.posterior_.mean)
    assert decrement > NEWTON_DECREMENT
    assert len(texts) == 1 and _DECREMENT_TEXT in texts[0], texts


def test_the_decrement_warning_is_in_the_report_and_refit_advice(cancer):
    X, y = cancer
    full = BayesianLogisticRegression(alpha=0.01).fit(X, y)
    forgotten, texts = _forget(full, X, y, _MISCLASSIFIED)
    assert forgotten.forget_report_.warnings == tuple(texts)
    assert "Fit again on the remaining rows" in texts[0]


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_ordinary_single_row_forgets_do_not_newly_warn(cancer, alpha):
    """Every single-row forget of the same data: the decrement warns on at most 1% of
    them, never on one at least twice as close to the retrain as doing nothing, and
    not on the 14 rows after the misclassified one whose forgets move the mean most
    (each closer to the retrain than doing nothing)."""
    X, y = cancer
    full = BayesianLogisticRegression(alpha=alpha).fit(X, y)
    warned = []
    for row in range(len(y)):
        forgotten, texts = _forget(full, X, y, row)
        if any(_DECREMENT_TEXT in text for text in texts):
            warned.append(row)
            assert _ratio(forgotten, full, X, y, row, alpha) >= 0.5, row
    assert _MISCLASSIFIED in warned
    assert len(warned) <= 0.01 * len(y), warned
    # The most influential rows: the longest one-step moves.
    moves = [_forget(full, X, y, row)[0].forget_report_.moved for row in range(len(y))]
    influential = [row for row in np.argsort(moves)[::-1][:15] if row != _MISCLASSIFIED]
    for row in influential[:14]:
        forgotten, texts = _forget(full, X, y, row)
        assert not any(_DECREMENT_TEXT in text for text in texts), row
        assert _ratio(forgotten, full, X, y, row, alpha) < 1.0, row
