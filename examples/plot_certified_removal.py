"""
How long a certified-removal budget lasts
=========================================

With ``removal_noise`` set, :class:`~sklunlearn.linear_model.BayesianLogisticRegression`
fits the perturbed objective of Guo et al. (2020), and each ``partial_unfit`` adds a
data-dependent bound on the gradient residual to a running total. The removals stay
(epsilon, delta)-certified while that total is below ``noise * epsilon / c``; the budget
is in ``certificate_``. Here single rows are forgotten one request at a time, for three
noise levels, until the budget is spent (or 60 requests have been served). More noise
buys more removals, at the cost of a noisier model.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import normalize

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression

X, y = load_banknote(return_X_y=True)
X = normalize(X - X.mean(axis=0))  # the bound needs rows of norm at most 1
n_requests = 60
order = np.random.RandomState(0).permutation(len(X))[:n_requests]

histories = {}
for noise in (0.1, 1.0, 10.0):
    est = BayesianLogisticRegression(
        alpha=0.01 * len(X), fit_intercept=False, removal_noise=noise, random_state=0
    ).fit(X, y)
    spent = []
    with warnings.catch_warnings():
        # The warning says that the budget ran out; the plot shows it.
        warnings.simplefilter("ignore", UnlearningWarning)
        for row in order:
            est.partial_unfit(X[row : row + 1], y[row : row + 1])
            certificate = est.certificate_
            spent.append(certificate.residual_bound / certificate.budget)
    histories[noise] = np.array(spent)
    last = est.certificate_
    print(
        f"removal_noise={noise:<5g} budget {last.budget:.3g}, after {n_requests} "
        f"removals epsilon={last.epsilon:.3g}, still valid: {last.valid}"
    )

# %%
# The fraction of the budget spent after each request; above 1 the certificate is no
# longer valid and a refit on the remaining rows restores it.

fig, ax = plt.subplots(figsize=(6, 3.6))
for noise, spent in histories.items():
    ax.plot(np.arange(1, n_requests + 1), spent, label=f"removal_noise={noise:g}")
ax.axhline(1.0, color="black", lw=0.8)
ax.set_yscale("log")
ax.set_xlabel("single-row removals served")
ax.set_ylabel("residual bound / budget")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
