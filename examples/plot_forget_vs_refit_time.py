"""
Forget time against refit time as the data grow
===============================================

Forgetting k rows costs time that depends on k and on the model's size, not on the n
rows learned; retraining grows with n. Here k = 200 rows are forgotten from models fitted
on n = 2,000 to 100,000 rows (d = 20), and each forget is timed against a refit on the
remaining rows. Absolute times depend on the machine; the gap growing with n does not
(``benchmarks/README.md`` has the measured tables).
"""

import copy
import time

import matplotlib.pyplot as plt
import numpy as np

from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

rng = np.random.RandomState(0)
d, k = 20, 200
sizes = [2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
X_all = rng.randn(max(sizes), d)
coef = rng.randn(d)
y_linear = X_all @ coef + rng.randn(max(sizes))
y_logistic = (X_all @ coef / np.sqrt(d) + rng.logistic(size=max(sizes)) > 0).astype(int)


def best_time(function, repeats=3):
    """Best wall time of ``repeats`` calls of ``function()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def forget_and_refit(make, X, y):
    """Best times of forgetting the first k rows and of refitting on the others."""
    full = make().fit(X, y)
    copying = best_time(lambda: copy.deepcopy(full))
    forgetting = best_time(lambda: copy.deepcopy(full).partial_unfit(X[:k], y[:k]))
    refitting = best_time(lambda: make().fit(X[k:], y[k:]), repeats=2)
    return max(forgetting - copying, 1e-6), refitting


timings = {}
for name, make, y_all in [
    ("BayesianLinearRegression", BayesianLinearRegression, y_linear),
    ("BayesianLogisticRegression", BayesianLogisticRegression, y_logistic),
]:
    make().fit(X_all[:500], y_all[:500]).partial_unfit(X_all[:5], y_all[:5])  # compile
    timings[name] = np.array(
        [forget_and_refit(make, X_all[:n], y_all[:n]) for n in sizes]
    ).T
    print(name)
    for n, forget_s, refit_s in zip(sizes, *timings[name], strict=True):
        print(f"  n={n:>7}: forget {1e3 * forget_s:7.2f} ms, refit {1e3 * refit_s:8.1f} ms")

# %%
# Both estimators: forgetting stays flat, refitting grows with n.

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (name, (forget_s, refit_s)) in zip(axes, timings.items(), strict=True):
    ax.loglog(sizes, refit_s, "o-", label="refit on the remaining rows")
    ax.loglog(sizes, forget_s, "o-", label=f"partial_unfit of {k} rows")
    ax.set_xlabel("rows learned, n")
    ax.set_title(name)
axes[0].set_ylabel("seconds")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
