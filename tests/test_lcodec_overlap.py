"""L-CODEC computes what does not depend on the block while FOCI selects.

The divide-out, the full Newton step and the re-linearisation check of the
precision at that step's mean run in a second thread during the selection;
these tests recompute each from dense NumPy references and the check called
directly, so that a check run at the wrong point, or skipped, fails.
"""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import lcodec_forget
from sklunlearn.unlearning._checks import linearisation_check


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, X.std(axis=0) > 0])
    return X, (y % 2).astype(float)


def _dense(posterior, X, y):
    """The rows' gradient, the precision without their curvature, the full step's mean."""
    J = np.hstack([X, np.ones((X.shape[0], 1))])
    p = expit(J @ posterior.mean)
    gradient = J.T @ (y - p)
    precision = posterior.precision - J.T @ ((p * (1 - p))[:, None] * J)
    return gradient, precision, posterior.mean - np.linalg.solve(precision, gradient)


# The last forget warns: a weak prior and a sixth of the rows forgotten.
@pytest.mark.parametrize(
    "alpha, n_rows, seed", [(0.3, 30, 0), (0.3, 30, 1), (0.3, 300, 1), (0.01, 300, 1)]
)
def test_checks_are_those_of_the_block_and_full_step_means(digits, alpha, n_rows, seed):
    X, y = digits
    fitted = BayesianLogisticRegression(alpha=alpha, ledger=False).fit(X, y)
    posterior, model = fitted.posterior_, fitted.model_
    rows = np.random.RandomState(seed).choice(y.shape[0], n_rows, replace=False)
    args = (X[rows], y[rows], np.ones(rows.size))
    new, record = lcodec_forget(posterior, model, *args, random_state=seed)
    gradient, precision, full = _dense(posterior, X[rows], y[rows])
    np.testing.assert_allclose(new.precision, precision, rtol=1e-9, atol=1e-9)
    terms = model.terms(*args, posterior.mean, with_value=False)
    np.testing.assert_allclose(terms.gradient, gradient, rtol=1e-10, atol=1e-12)

    def check(mean, judge_mean):
        after = GaussianPosterior.from_precision(mean, precision)
        return linearisation_check(
            model, *args, posterior, after, terms, judge_mean=judge_mean
        )

    at_block, at_full = check(new.mean, True), check(full, False)
    # The mean measure at the block step's own mean, the covariance one at the full
    # step's, which alone judges the precision (the forgets here are not certified by
    # the bounds: the check ran).
    assert record.mean_relinearisation == pytest.approx(at_block[0], rel=1e-6)
    assert record.covariance_relinearisation == pytest.approx(at_full[1], rel=1e-6)
    assert at_full[1] != pytest.approx(at_block[1], rel=1e-3)
    warned = at_block[2] is not None or at_full[2] is not None
    assert warned == any("not supported" in message for message in record.warnings)
