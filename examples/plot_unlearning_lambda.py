"""
KL to retraining against ``unlearning_lambda`` (VBU's curves)
=============================================================

The variational methods of Nguyen, Low & Jaillet (2020), ``'eubo'`` and ``'rkl'``,
take an adjusted-likelihood threshold ``unlearning_lambda``: large values leave the
model where it was, very small ones let the optimiser run past the retrained posterior
(catastrophic unlearning; ``lambda = 0`` is the plain objective). This example measures
the predictive KL to a model retrained from scratch, on the erased rows, for a range of
thresholds, on VBU's two experiments: Bayesian logistic regression on banknote and the
sparse GP classifier on the moons. The dashed line is doing nothing, the dotted one the
one-step Laplace divide-out (``'laplace'``, which has no threshold).

The estimators warn when a result looks untrustworthy; the warnings are collected and
counted here instead of printed. A threshold so large that the method leaves the
posterior exactly where it was (and warns) is refused, the rows staying learned: the
curve shows doing nothing's KL there, marked as warned.
"""

import copy
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.datasets import vbu_banknote_split
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import predictive_kl

LAMBDAS = [0.5, 0.1, 1e-3, 1e-5, 1e-9, 0.0]


def curves(full, retrained, X_erased, y_erased):
    """Predictive KL on the erased rows for each method and threshold."""
    result = {}
    for method in ("eubo", "rkl", "laplace"):
        kls = []
        for lam in LAMBDAS if method != "laplace" else [0.0]:
            est = copy.deepcopy(full).set_params(unlearning=method, unlearning_lambda=lam)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnlearningWarning)
                try:
                    est.partial_unfit(X_erased, y_erased)
                except ValueError:  # nothing forgotten: refused, est is still full
                    caught.append(None)
            warned = any(
                w is None or issubclass(w.category, UnlearningWarning) for w in caught
            )
            kls.append((predictive_kl(est, retrained, X_erased), warned))
        result[method] = kls
    result["do nothing"] = [(predictive_kl(full, retrained, X_erased), False)]
    return result


# %%
# Banknote: shuffled with seed 0, the last 412 rows erased, a nearly flat prior.

X, y, erased = vbu_banknote_split()
banknote = dict(inference="vi", alpha=1e-4, n_samples=500, random_state=0)
full = BayesianLogisticRegression(**banknote).fit(X, y)
retrained = BayesianLogisticRegression(**banknote).fit(X[~erased], y[~erased])
results = {"banknote": curves(full, retrained, X[erased], y[erased])}

# %%
# Moons: 100 points, 20 fixed inducing inputs and VBU's fixed kernel; the 20 points
# with the largest first coordinate erased.

X, y = make_moons(100, noise=0.2, random_state=0)
Z = make_moons(20, noise=0.2, random_state=0)[0]
kernel = C(4.7432, "fixed") * RBF(1 / np.sqrt([2.4232, 1.8230]), "fixed")
erased = np.zeros(len(y), dtype=bool)
erased[np.argsort(X[:, 0])[-20:]] = True
moons = dict(kernel=kernel, inducing_points=Z, inference="vi", random_state=0)
full = SparseGPClassifier(**moons).fit(X, y)
retrained = SparseGPClassifier(**moons).fit(X[~erased], y[~erased])
results["moons"] = curves(full, retrained, X[erased], y[erased])

# %%
# The curves: lambda = 0 is drawn at the left edge. A cross marks a result that
# warned.

positions = np.arange(len(LAMBDAS))
labels = [f"{lam:g}" for lam in LAMBDAS]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, (data, result) in zip(axes, results.items(), strict=True):
    for method in ("eubo", "rkl"):
        kls = np.array([kl for kl, _ in result[method]])
        warned = np.array([w for _, w in result[method]])
        ax.plot(positions, kls, "o-", label=method)
        ax.plot(positions[warned], kls[warned], "kx", markersize=9)
    ax.axhline(result["do nothing"][0][0], color="gray", ls="--", label="do nothing")
    ax.axhline(result["laplace"][0][0], color="green", ls=":", label="laplace")
    ax.set_yscale("log")
    ax.set_xticks(positions, labels)
    ax.set_xlabel("unlearning_lambda")
    ax.set_title(data)
axes[0].set_ylabel("predictive KL to retraining\non the erased rows (nats)")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
