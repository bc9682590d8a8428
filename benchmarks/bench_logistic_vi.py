"""BayesianLogisticRegression(inference='vi').fit against LogisticRegression and Laplace.

On standardised digits 3-vs-8 (357 x 64), breast_cancer (569 x 30) and banknote
(1,372 x 4): scikit-learn's ``LogisticRegression`` (the MAP, ``C = 1``), the
package's Laplace fit and its variational fit (``alpha=1``, defaults otherwise)
are timed interleaved, best of ``--repeat`` (default 5), with the BLAS threads
the process has. Each variational fit's iterations (Newton's and the fixed
point's, ``n_iter_``), whether it warned that it did not converge, and its ELBO
are printed; the ELBO is evaluated independently of the package's quadrature
(a fine trapezoid rule per row) so fits from different code are comparable.

    python benchmarks/bench_logistic_vi.py [--repeat 5]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import log_expit
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.datasets import load_banknote  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402


def datasets():
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    yield "digits 3-vs-8", X[keep], y[keep]
    yield "breast_cancer", *load_breast_cancer(return_X_y=True)
    yield "banknote", *load_banknote(return_X_y=True)


def elbo(estimator, X, y):
    """``E_q[log p(y | X, theta)] - KL(q || prior)``, expectations to ~1e-12 per row."""
    q = estimator.posterior_
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    sign = np.where(y == estimator.classes_[1], 1.0, -1.0)
    mean = design @ q.mean
    spread = np.sqrt(q.predictive_variance(design))
    step = min(0.25, 0.3 / spread.max())
    z = np.arange(-9.5, 9.5 + step / 2, step)
    weights = step * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    expected = log_expit(sign[:, None] * (mean[:, None] + spread[:, None] * z)) @ weights
    return float(expected.sum() - q.kl_divergence(estimator.model_.prior.posterior()))


def timed(make, X, y):
    """(seconds, fitted estimator, whether it warned of non-convergence)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator = make().fit(X, y)
        seconds = time.perf_counter() - start
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return seconds, estimator, warned


def main(repeat):
    makers = {
        "LogisticRegression": lambda: LogisticRegression(C=1.0, max_iter=1000),
        "Laplace": lambda: BayesianLogisticRegression(),
        "VI": lambda: BayesianLogisticRegression(inference="vi"),
    }
    rows = []
    for name, X, y in datasets():
        X = StandardScaler().fit_transform(X)
        makers["VI"]().fit(X, y)  # compile the kernels outside the timings
        best = dict.fromkeys(makers, np.inf)
        for _ in range(repeat):  # interleaved: the machine's load hits all alike
            for label, make in makers.items():
                seconds, estimator, warned = timed(make, X, y)
                best[label] = min(best[label], seconds)
                if label == "Laplace":
                    laplace_iterations = estimator.n_iter_
                if label == "VI":
                    fitted, vi_warned = estimator, warned
        rows.append(
            [
                f"{name} ({X.shape[0]} x {X.shape[1]})",
                f"{best['LogisticRegression']:.4f}",
                f"{best['Laplace']:.4f}",
                f"{best['VI']:.4f}",
                f"{best['VI'] / best['LogisticRegression']:.1f}x",
                f"{best['VI'] / best['Laplace']:.1f}x",
                f"{laplace_iterations} + {fitted.n_iter_ - laplace_iterations}",
                "no (warned)" if vi_warned else "yes",
                f"{elbo(fitted, X, y):.6f}",
            ]
        )
    print(environment())
    print(f"best of {repeat} interleaved fits, default BLAS threads\n")
    headers = [
        "data",
        "LogisticRegression (s)",
        "Laplace (s)",
        "VI (s)",
        "VI / LogisticRegression",
        "VI / Laplace",
        "VI iterations (Newton + fixed point)",
        "converged",
        "ELBO",
    ]
    print(table(rows, headers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args().repeat)
