"""
Forgetting a region from a sparse Gaussian process
==================================================

:class:`~sklunlearn.gaussian_process.SparseGPRegressor` forgets exactly at fixed kernel
hyperparameters and inducing points. Here the rows in one interval are forgotten; the
model retrained on the rest with the same hyperparameters and inducing points has the
same mean and credible band. The hyperparameters themselves were learned on all rows:
``reoptimize`` re-learns them when the deletion must reach them too (see the user
guide).
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.metrics import posterior_kl

rng = np.random.RandomState(1)
X = np.sort(rng.uniform(0, 10, 300))[:, None]
y = np.sin(X[:, 0]) + 0.3 * np.cos(3 * X[:, 0]) + rng.normal(scale=0.2, size=300)
forget = (X[:, 0] > 4) & (X[:, 0] < 6)

full = SparseGPRegressor(inducing_points=20, random_state=0).fit(X, y)
forgotten = SparseGPRegressor(inducing_points=20, random_state=0).fit(X, y)
with warnings.catch_warnings():
    # The warning says that kernel and inducing points were learned on all rows.
    warnings.simplefilter("ignore", UnlearningWarning)
    forgotten.partial_unfit(X[forget], y[forget])
retrained = SparseGPRegressor(
    kernel=full.kernel_,
    inducing_points=full.inducing_points_,
    noise_variance=full.noise_variance_,
    optimizer=None,
).fit(X[~forget], y[~forget])

print(f"learned kernel: {full.kernel_}")
print(f"KL(forgotten || retrained) = {posterior_kl(forgotten, retrained):.2e} nats")
print(f"KL(full || retrained)      = {posterior_kl(full, retrained):.2e} nats")

# %%
# Mean and 95% credible band of the three models; the ticks at the bottom are the
# inducing points.

grid = np.linspace(0, 10, 400)[:, None]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
for ax, (title, model) in zip(
    axes,
    [
        ("fitted on all rows", full),
        ("after partial_unfit", forgotten),
        ("retrained without them", retrained),
    ],
    strict=True,
):
    mean, std = model.predict(grid, return_std=True)
    ax.fill_between(grid[:, 0], mean - 1.96 * std, mean + 1.96 * std, alpha=0.3)
    ax.plot(grid[:, 0], mean)
    ax.scatter(X[~forget, 0], y[~forget], s=4, color="black")
    ax.scatter(X[forget, 0], y[forget], s=6, color="red", marker="x")
    ax.plot(
        model.inducing_points_[:, 0],
        np.full(len(model.inducing_points_), -2.1),
        "|",
        color="gray",
    )
    ax.set_title(title)
    ax.set_xlabel("x")
axes[0].set_ylabel("y (95% credible band)")
fig.tight_layout()
plt.show()
