"""
Feature injection: is what only the forgotten rows taught removed?
==================================================================

A test any unlearning method can take (Han et al. 2024 use it for systematic
patterns). Add a column to breast_cancer that is zero everywhere except on a forget group
of 5% of the rows, where it gives the label away. The model learns a large weight on it;
retrained without the group, that weight's posterior is the prior's (mean zero). Forget
the group with each method and plot how much of the injected weight remains.
"""

import copy
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
rng = np.random.default_rng(0)
group = np.sort(rng.choice(X.shape[0], int(0.05 * X.shape[0]), replace=False))
injected = np.zeros(X.shape[0])
injected[group] = np.where(y[group] == 1, 3.0, -3.0)
X = np.column_stack([X, injected])
keep = np.setdiff1d(np.arange(X.shape[0]), group)

full = BayesianLogisticRegression().fit(X, y)
retrained = BayesianLogisticRegression().fit(X[keep], y[keep])
print(f"injected weight: full fit {full.coef_[0, -1]:.2f}, ", end="")
print(f"retrained {retrained.coef_[0, -1]:.2f}")

methods = ["laplace", "uib", "eubo", "rkl"]
remaining, distance, warned = [1.0], [1.0], [False]
nothing = posterior_kl(full, retrained)
for method in methods:
    est = copy.deepcopy(full).set_params(unlearning=method, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        est.partial_unfit(X[group], y[group])
    remaining.append(est.coef_[0, -1] / full.coef_[0, -1])
    distance.append(posterior_kl(est, retrained) / nothing)
    warned.append(any(w.category is UnlearningWarning for w in caught))
    print(
        f"{method:>8}: injected weight left {remaining[-1]:+.3f}, KL to the retrained "
        f"posterior {distance[-1]:.3g}x doing nothing{', warned' if warned[-1] else ''}"
    )

# %%
# The fraction of the injected weight left (0 is the retrained model, 1 is doing
# nothing). Hatched bars warned that the result is likely no better than doing nothing.

labels = ["nothing", *methods]
fig, ax = plt.subplots(figsize=(6, 3.5))
bars = ax.bar(labels, remaining, color=["0.6", "C0", "C1", "C2", "C3"])
for bar, flagged in zip(bars, warned, strict=True):
    if flagged:
        bar.set_hatch("//")
# 'eubo' and 'rkl' overshoot far past zero here: clip the axis and print their values.
for bar, value in zip(bars, remaining, strict=True):
    if abs(value) > 1.5:
        ax.text(bar.get_x() + bar.get_width() / 2, -1.4, f"{value:.3g}", ha="center")
ax.set_ylim(-1.5, 1.5)
ax.axhline(0.0, color="k", lw=0.8)
ax.set_ylabel("injected weight left (fraction)")
ax.set_title("Forgetting a 5% group that an injected column predicts")
fig.tight_layout()
plt.show()
