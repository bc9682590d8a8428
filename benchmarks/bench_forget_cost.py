"""Every forget against its bare flop cost, measured in one run.

The bare cost of forgetting ``k`` rows from a ``d``-parameter Gaussian
posterior is the forgotten rows' Gram matrix (linear regression) or Hessian
(logistic regression) plus one ``d x d`` Cholesky factorisation, timed here
with NumPy/SciPy directly. ``partial_unfit`` (scikit-learn's validation, the
shared path, the update) is timed on fresh copies of a fitted estimator, with
``ledger=False`` and with the default ledger, and compared with the budget
``2 x bare + 0.3 ms``. The ``validation ms`` column times what scikit-learn's
own validation of the same call costs alone (``check_is_fitted``, parameter
validation and ``validate_data`` on the rows): the part of the constant that
no change to this package removes. The four timings of a row are taken in
interleaved rounds (best of each over the rounds), so that they meet the same
load on a shared machine.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_forget_cost.py`` from the
repository root.
"""

import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from scipy import linalg
from sklearn.utils.validation import check_is_fitted, validate_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time, environment, fresh_copy, table  # noqa: E402

from sklunlearn.linear_model import (  # noqa: E402
    BayesianLinearRegression,
    BayesianLogisticRegression,
)

SIZES = (10, 50, 100, 400)
ROWS = (1, 10, 100, 1_000, 10_000)
OVERHEAD = 3e-4  # seconds allowed on top of twice the bare cost
ROUNDS = 5  # interleaved rounds of the four timings of a row


def make_data(n, d, random_state=0):
    rng = np.random.RandomState(random_state)
    X = rng.randn(n, d)
    coef = rng.randn(d) / np.sqrt(d)
    f = X @ coef
    return X, f + 0.3 * rng.randn(n), (f + rng.logistic(size=n) > 0).astype(int)


def bare_cost(X_f, p, logistic, repeat):
    """Best time of the rows' Gram or Hessian plus one Cholesky factorisation."""
    A = X_f.T @ X_f + np.eye(X_f.shape[1])

    def work():
        if logistic:
            Xb = np.hstack([X_f, np.ones((X_f.shape[0], 1))])
            c = p * (1.0 - p)
            H = Xb.T @ (c[:, None] * Xb)
        else:
            H = X_f.T @ X_f
        linalg.cholesky(A, lower=False, check_finite=False)
        return H

    return best_time(work, repeat=repeat)


def validation_time(est, X_f, y_f, repeat):
    """Best time of scikit-learn's validation of a ``partial_unfit`` call alone."""

    def validate(e):
        check_is_fitted(e)
        e._validate_params()
        validate_data(e, X_f, y_f, reset=False, dtype=np.float64)

    return best_time(validate, repeat=repeat, setup=fresh_copy(est))


def forget_time(est, X_f, y_f, repeat):
    return best_time(
        lambda e: e.partial_unfit(X_f, y_f), repeat=repeat, setup=fresh_copy(est)
    )


def interleaved_best(timings, rounds):
    """Best of each ``timing()`` (a function returning seconds) over interleaved rounds."""
    best = [np.inf] * len(timings)
    for _ in range(rounds):
        for i, timing in enumerate(timings):
            best[i] = min(best[i], timing())
    return best


def run():
    rows = []
    for d in SIZES:
        n = 2 * max(ROWS) + 5 * d
        X, y_reg, y_clf = make_data(n, d)
        models = {
            "linear": (BayesianLinearRegression, y_reg, False),
            "logistic": (BayesianLogisticRegression, y_clf, True),
        }
        for name, (Estimator, y, logistic) in models.items():
            fitted = {
                ledger: Estimator(ledger=ledger).fit(X, y) for ledger in (False, True)
            }
            p = (
                fitted[False].predict_proba(X[: max(ROWS)])[:, 1]
                if logistic
                else np.zeros(max(ROWS))
            )
            for k in ROWS:
                repeat = 6 if k * d <= 10_000 else (2 if k * d <= 1_000_000 else 1)
                X_f, y_f = X[:k], y[:k]
                bare, validation, *forgets = interleaved_best(
                    [
                        partial(bare_cost, X_f, p[:k], logistic, repeat),
                        partial(validation_time, fitted[False], X_f, y_f, repeat),
                        *(
                            partial(forget_time, est, X_f, y_f, repeat)
                            for est in fitted.values()
                        ),
                    ],
                    ROUNDS,
                )
                times = dict(zip(fitted, forgets, strict=True))
                budget = 2 * bare + OVERHEAD
                rows.append(
                    [
                        name,
                        d,
                        k,
                        f"{1e3 * bare:.3f}",
                        f"{1e3 * validation:.3f}",
                        f"{1e3 * times[False]:.3f}",
                        f"{times[False] / bare:.2f}x",
                        f"{times[False] / budget:.2f}",
                        f"{1e3 * times[True]:.3f}",
                        f"{times[True] / budget:.2f}",
                    ]
                )
    print(environment())
    print("\npartial_unfit against the bare cost (rows' Gram or Hessian + one Cholesky)\n")
    print(
        table(
            rows,
            [
                "model",
                "d",
                "k",
                "bare ms",
                "validation ms",
                "ledger=False ms",
                "/ bare",
                "/ (2 bare + 0.3 ms)",
                "ledger=True ms",
                "/ (2 bare + 0.3 ms)",
            ],
        )
    )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()
