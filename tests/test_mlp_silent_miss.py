"""The network's Laplace divide-out warns when its step goes where the forgotten rows
held most of the posterior's precision: a forget of benchmarks/bench_mlp.py's wider
network no better than doing nothing, which the linearisation check passes, warns, and
a forget clearly better than doing nothing still does not."""

import copy
import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.neural_network._mlp import STEP_PRECISION_SHARE

# Fits at the mode, as the Laplace step assumes (bench_mlp.py's TIGHT).
TIGHT = {"max_iter": 3000, "tol": 1e-8}
ROUTINE = "noise_variance_ was learned"
SHARE = re.compile(r"forgotten rows held (\d+)% of the posterior's precision")


@pytest.fixture(scope="module")
def diabetes():
    """Standardised diabetes, the 80% training rows of bench_mlp.py."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    train = np.random.RandomState(0).permutation(X.shape[0])[: int(0.8 * X.shape[0])]
    return X[train], y[train]


def _forget_one_percent(X, y, hidden, seed):
    """``(fit, unlearned, forgotten rows, texts of the non-routine warnings,
    KL(unlearned || local retrain) / KL(full || local retrain))``."""
    est = BayesianMLPRegressor(hidden_layer_sizes=hidden, random_state=seed, **TIGHT)
    est.fit(X, y)
    forget = np.sort(np.random.RandomState(seed).choice(X.shape[0], 4, replace=False))
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Remaining rows from the full-data weights, to convergence.
        local = est._local_retrain(X[keep], y[keep], max_iter=30_000, tol=1e-8)
    unlearned = copy.deepcopy(est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned.partial_unfit(X[forget], y[forget])
    texts = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UnlearningWarning)
        and not str(w.message).startswith(ROUTINE)
    ]
    reference = local.posterior_
    ratio = unlearned.posterior_.kl_divergence(reference) / est.posterior_.kl_divergence(
        reference
    )
    return est, unlearned, forget, texts, ratio


def _dense_share(est, unlearned, X_forget):
    """``delta' H delta / delta' Lambda delta`` from the rows' dense Jacobian."""
    before = est.posterior_
    delta = unlearned.posterior_.mean - before.mean
    J = est.model_.predictor.jacobian(X_forget, before.mean)
    return (
        (J @ delta) @ (J @ delta) / est.noise_variance_ / (delta @ before.precision @ delta)
    )


def test_forget_no_better_than_nothing_that_the_linearisation_check_passes_warns(
    diabetes,
):
    # A forget no better than doing nothing that only the share check can flag.
    X, y = diabetes
    est, unlearned, forget, texts, ratio = _forget_one_percent(X, y, (20,), seed=6)
    assert ratio > 0.97  # no better than doing nothing, against the local retrain
    record = unlearned.forget_report_.diagnostics
    # The linearisation check passes it: only the new measure can flag it.
    assert record.mean_relinearisation <= 1.0
    assert not any("re-evaluated at the new mean" in text for text in texts)
    flagged = [text for text in texts if SHARE.search(text)]
    assert len(flagged) == 1 and "Fit again on the remaining rows" in flagged[0]
    assert flagged[0] in unlearned.forget_report_.warnings
    share = _dense_share(est, unlearned, X[forget])
    assert share > STEP_PRECISION_SHARE
    assert int(SHARE.search(flagged[0]).group(1)) == round(100 * share)


def test_clearly_better_forget_does_not_warn(diabetes):
    X, y = diabetes
    est, unlearned, forget, texts, ratio = _forget_one_percent(X, y, (5,), seed=0)
    assert ratio < 0.9  # clearly better than doing nothing
    assert texts == []
    assert _dense_share(est, unlearned, X[forget]) < STEP_PRECISION_SHARE
