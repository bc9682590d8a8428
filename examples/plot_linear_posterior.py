"""
Forgetting rows from a Bayesian linear model
============================================

Fit :class:`~sklunlearn.linear_model.BayesianLinearRegression` on a cubic curve, forget
every row between x = 0.5 and x = 2, and compare with a model retrained without them.
Forgetting is exact here: the forgotten model's mean and 95% credible band lie on the
retrained ones, and the band widens where the data are gone.
"""

import matplotlib.pyplot as plt
import numpy as np

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.metrics import posterior_kl


def features(x):
    """Cubic polynomial features of a 1-D input."""
    return np.vander(x, 4, increasing=True)[:, 1:]


rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, 120)
y = 0.5 * x**3 - x**2 - 2 * x + rng.normal(scale=1.5, size=x.size)
forget = (x > 0.5) & (x < 2.0)

full = BayesianLinearRegression().fit(features(x), y)
forgotten = BayesianLinearRegression().fit(features(x), y)
forgotten.partial_unfit(features(x[forget]), y[forget])
retrained = BayesianLinearRegression().fit(features(x[~forget]), y[~forget])

print(forgotten.forget_report_)
print(f"KL(forgotten || retrained) = {posterior_kl(forgotten, retrained):.2e} nats")
print(f"KL(full || retrained)      = {posterior_kl(full, retrained):.2e} nats")

# %%
# The three posteriors: the forgotten model is the retrained one.

grid = np.linspace(-3.2, 3.2, 300)
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
    mean, std = model.predict(features(grid), return_std=True)
    ax.fill_between(grid, mean - 1.96 * std, mean + 1.96 * std, alpha=0.3)
    ax.plot(grid, mean, label="posterior mean")
    ax.scatter(x[~forget], y[~forget], s=8, color="black", label="kept rows")
    ax.scatter(x[forget], y[forget], s=12, color="red", marker="x", label="forgotten")
    ax.set_title(title)
    ax.set_xlabel("x")
axes[0].set_ylabel("y (95% credible band)")
axes[0].legend(fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()
