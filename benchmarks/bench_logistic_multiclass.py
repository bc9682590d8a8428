"""BayesianLogisticRegression against LogisticRegression: multiclass and sparse input.

1. digits (1,797 rows, 64 features standardised, 10 classes): fit of
   BayesianLogisticRegression (one-vs-rest Laplace) with n_jobs=None and
   n_jobs=2 against scikit-learn's LogisticRegression at the same C = 1 / alpha,
   one-vs-rest (OneVsRestClassifier) and multinomial (lbfgs).
2. Sparse one-hot design (n=100,000, 10 categorical features of 100 levels,
   1,000 one-hot columns, CSR): fit, and partial_unfit of 1% of the rows,
   against refitting LogisticRegression on the remaining rows.

The compared things are timed interleaved in one run (best of ``REPEAT``), so
the ratios hold while the machine's load changes. Run from the repository
root: ``python benchmarks/bench_logistic_multiclass.py``.
"""

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402

ALPHA = 1.0
REPEAT = 5


def interleaved(contenders, repeat=REPEAT, setups=None):
    """Best wall time of each ``name -> function()``, run round-robin.

    ``setups[name]()``, untimed, makes the argument of that contender's call.
    """
    setups = setups or {}
    best = dict.fromkeys(contenders, np.inf)
    for _ in range(repeat):
        for name, function in contenders.items():
            arguments = (setups[name](),) if name in setups else ()
            start = time.perf_counter()
            function(*arguments)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def digits_table():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    models = {
        "BayesianLogisticRegression (OvR), n_jobs=None": BayesianLogisticRegression(
            alpha=ALPHA, ledger=False
        ),
        "BayesianLogisticRegression (OvR), n_jobs=2": BayesianLogisticRegression(
            alpha=ALPHA, n_jobs=2, ledger=False
        ),
        "LogisticRegression, OneVsRestClassifier (lbfgs)": OneVsRestClassifier(
            LogisticRegression(C=1.0 / ALPHA, max_iter=1000)
        ),
        "LogisticRegression, multinomial (lbfgs)": LogisticRegression(
            C=1.0 / ALPHA, max_iter=1000
        ),
    }
    best = interleaved({name: (lambda m=m: m.fit(X, y)) for name, m in models.items()})
    reference = best["LogisticRegression, OneVsRestClassifier (lbfgs)"]
    rows = [
        [
            name,
            f"{seconds * 1e3:.1f} ms",
            f"{seconds / reference:.2f}",
            f"{models[name].score(X, y):.4f}",
        ]
        for name, seconds in best.items()
    ]
    headers = ["fit on digits (1,797 x 64, 10 classes)", "time", "/ OvR sklearn", "acc"]
    return table(rows, headers)


def one_hot_data(n=100_000, n_features=10, levels=100, random_state=0):
    rng = np.random.RandomState(random_state)
    codes = rng.randint(0, levels, size=(n, n_features))
    effects = rng.randn(n_features, levels)
    logit = effects[np.arange(n_features), codes].sum(axis=1) / np.sqrt(n_features)
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    X = OneHotEncoder(sparse_output=True, dtype=np.float64).fit_transform(codes)
    return sparse.csr_matrix(X), y


def sparse_table(k_fraction=0.01):
    X, y = one_hot_data()
    n = X.shape[0]
    k = int(k_fraction * n)
    fitted = BayesianLogisticRegression(alpha=ALPHA).fit(X, y)
    keep = slice(k, None)

    def forget(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            est.partial_unfit(X[:k], y[:k])

    contenders = {
        "BayesianLogisticRegression.fit (CSR)": lambda: BayesianLogisticRegression(
            alpha=ALPHA
        ).fit(X, y),
        "BayesianLogisticRegression.partial_unfit 1% (CSR)": forget,
        "LogisticRegression refit on the other 99% (lbfgs, CSR)": lambda: (
            LogisticRegression(C=1.0 / ALPHA, max_iter=1000).fit(X[keep], y[keep])
        ),
    }
    name = "BayesianLogisticRegression.partial_unfit 1% (CSR)"
    best = interleaved(contenders, repeat=3, setups={name: lambda: copy.deepcopy(fitted)})
    reference = best["LogisticRegression refit on the other 99% (lbfgs, CSR)"]
    rows = [
        [name, f"{seconds:.3f} s", f"{reference / seconds:.1f}x"]
        for name, seconds in best.items()
    ]
    headers = [
        f"one-hot, n={n:,}, {X.shape[1]:,} columns, {X.nnz // n} per row",
        "time",
        "refit / this",
    ]
    return table(rows, headers)


def main():
    print(environment())
    print()
    print(digits_table())
    print()
    print(sparse_table())


if __name__ == "__main__":
    main()
