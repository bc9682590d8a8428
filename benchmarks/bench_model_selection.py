"""Metrics and UnlearningAudit: accuracy and cost of the KL, cost of an audit, and the
GridSearchCV of docs/model_selection.md.

1. ``gaussian_kl`` (triangular solves on Cholesky factors of the precisions, as
   estimators store them) against the textbook formula with explicit inverses and
   determinants of the covariances: relative error against the closed form of a
   rotated diagonal pair, as the condition number grows, and time at several d.
2. ``UnlearningAudit.fit`` against one plain ``fit`` (it fits twice and forgets once).
3. ``GridSearchCV(UnlearningAudit(BayesianLogisticRegression()))`` on banknote.
4. Membership inference before and after forgetting.

Run: ``python benchmarks/bench_model_selection.py``.
"""

import warnings

import numpy as np
from _common import best_time, environment, table
from sklearn.model_selection import GridSearchCV

from sklunlearn.datasets import load_banknote
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.metrics import gaussian_kl, membership_inference_auc
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.posterior import GaussianPosterior


def dense_kl(m0, S0, m1, S1):
    """KL with an explicit inverse and log-determinants of the covariances."""
    S1_inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (
        np.trace(S1_inv @ S0)
        + diff @ S1_inv @ diff
        - len(m0)
        + np.linalg.slogdet(S1)[1]
        - np.linalg.slogdet(S0)[1]
    )


def rotated_pair(d, condition, rng):
    """Two zero-mean Gaussians sharing eigenvectors, variances spanning ``condition``."""
    rotation = np.linalg.qr(rng.randn(d, d))[0]
    variances_p = np.logspace(0, -np.log10(condition), d)
    variances_q = variances_p * rng.uniform(0.5, 2.0, d)
    ratio = variances_p / variances_q
    exact = 0.5 * np.sum(ratio - 1.0 - np.log(ratio))

    def build(variances):
        covariance = rotation @ np.diag(variances) @ rotation.T
        return covariance, (rotation / variances) @ rotation.T

    (S_p, P_p), (S_q, P_q) = build(variances_p), build(variances_q)
    return exact, (S_p, P_p), (S_q, P_q)


def kl_accuracy(d=20):
    rng = np.random.RandomState(0)
    rows = []
    for condition in [1e2, 1e6, 1e10, 1e13, 1e15]:
        exact, (S_p, P_p), (S_q, P_q) = rotated_pair(d, condition, rng)
        zero = np.zeros(d)
        p = GaussianPosterior.from_precision(zero, P_p)
        q = GaussianPosterior.from_precision(zero, P_q)
        ours = gaussian_kl(p, q)
        dense = dense_kl(zero, S_p, zero, S_q)
        rows.append(
            [
                f"{condition:.0e}",
                f"{exact:.6g}",
                f"{abs(ours - exact) / exact:.1e}",
                f"{abs(dense - exact) / exact:.1e}",
            ]
        )
    return table(
        rows,
        [
            "condition number",
            "exact KL",
            "gaussian_kl rel. error",
            "dense inverse rel. error",
        ],
    )


def kl_timing():
    rng = np.random.RandomState(1)
    rows = []
    for d in [10, 100, 400]:
        exact, (S_p, P_p), (S_q, P_q) = rotated_pair(d, 1e4, rng)
        zero = np.zeros(d)
        p = GaussianPosterior.from_precision(zero, P_p)
        q = GaussianPosterior.from_precision(zero, P_q)
        ours = best_time(lambda p=p, q=q: gaussian_kl(p, q))
        # The dense formula needs covariances: from a posterior that is inverting
        # the precision first, which is what a user without the factors would do.
        dense = best_time(
            lambda p=p, q=q, zero=zero: dense_kl(zero, p.covariance, zero, q.covariance)
        )
        rows.append(
            [d, f"{1e3 * ours:.3f} ms", f"{1e3 * dense:.3f} ms", f"{dense / ours:.1f}x"]
        )
    return table(
        rows, ["d", "gaussian_kl (factors)", "dense inverse (from posteriors)", "ratio"]
    )


def audit_cost():
    rows = []
    rng = np.random.RandomState(2)
    X = rng.randn(5000, 20)
    y_reg = X @ rng.randn(20) + rng.randn(5000)
    y_clf = (X @ rng.randn(20) + rng.randn(5000) > 0).astype(int)
    for name, estimator, y in [
        ("BayesianLinearRegression", BayesianLinearRegression(), y_reg),
        ("BayesianLogisticRegression (laplace)", BayesianLogisticRegression(), y_clf),
    ]:
        estimator.fit(X, y)  # compile kernels before timing
        fit = best_time(lambda e=estimator, y=y: e.fit(X, y), repeat=3)
        audit = UnlearningAudit(estimator, random_state=0)
        audited = best_time(lambda a=audit, y=y: a.fit(X, y), repeat=3)
        rows.append(
            [
                name,
                f"{1e3 * fit:.1f} ms",
                f"{1e3 * audited:.1f} ms",
                f"{audited / fit:.2f}x",
                f"{1e3 * audit.forget_time_:.2f} ms",
            ]
        )
    return table(
        rows,
        [
            "estimator (n=5000, d=20, 10% forgotten)",
            "fit",
            "audit.fit",
            "ratio",
            "of which partial_unfit",
        ],
    )


def grid_search():
    X, y = load_banknote(return_X_y=True)
    search = GridSearchCV(
        UnlearningAudit(
            BayesianLogisticRegression(random_state=0), forget_size=0.1, random_state=0
        ),
        [
            {"estimator__unlearning": ["laplace"]},
            {
                "estimator__unlearning": ["eubo", "rkl"],
                "estimator__unlearning_lambda": [0.0, 0.01, 0.1],
            },
        ],
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    results = search.cv_results_
    rows = [
        [
            params["estimator__unlearning"],
            params.get("estimator__unlearning_lambda", "-"),
            f"{-score:.2g}",
            f"{std:.1g}",
            rank,
        ]
        for params, score, std, rank in zip(
            results["params"],
            results["mean_test_score"],
            results["std_test_score"],
            results["rank_test_score"],
            strict=True,
        )
    ]
    nothing = search.best_estimator_.kl_do_nothing_
    return table(
        rows, ["unlearning", "lambda", "KL(unlearned || retrained)", "std", "rank"]
    ) + (
        f"\n\nKL(full || retrained), doing nothing, best candidate refitted on all rows: "
        f"{nothing:.2g}"
    )


def membership():
    rng = np.random.RandomState(0)
    rows = []
    for d in [5, 25]:
        X = rng.randn(240, d)
        y = X @ rng.randn(d) + rng.randn(240)
        forget, keep, unseen = np.arange(20), np.arange(20, 40), np.arange(40, 240)
        train = np.r_[forget, keep]
        full = BayesianLinearRegression().fit(X[train], y[train])
        unlearned = BayesianLinearRegression().fit(X[train], y[train])
        unlearned.partial_unfit(X[forget], y[forget])
        retrained = BayesianLinearRegression().fit(X[keep], y[keep])
        aucs = [
            membership_inference_auc(m, X[forget], y[forget], X[unseen], y[unseen])
            for m in (full, unlearned, retrained)
        ]
        rows.append([d] + [f"{auc:.3f}" for auc in aucs])
    return table(
        rows,
        [
            "d (40 training rows, 20 forgotten, 200 unseen)",
            "AUC before forgetting",
            "after partial_unfit",
            "retrained",
        ],
    )


if __name__ == "__main__":
    print(environment())
    print("\n### gaussian_kl accuracy (d=20)\n")
    print(kl_accuracy())
    print("\n### gaussian_kl time\n")
    print(kl_timing())
    print("\n### Cost of an audit\n")
    print(audit_cost())
    print("\n### GridSearchCV over UnlearningAudit, banknote, 3 folds, 10% forgotten\n")
    print(grid_search())
    print("\n### Membership inference, BayesianLinearRegression\n")
    print(membership())
