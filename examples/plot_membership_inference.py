"""
Membership inference before and after forgetting
================================================

A loss-threshold attacker (Yeom et al. 2018) guesses that a row was trained on when the
model's loss on it is low. Its ROC curve, forgotten rows against rows the model never
saw, shows what a deletion leaves behind: before forgetting, the rows are easy to pick
out (an over-parameterised model fits them closely); after ``partial_unfit`` the
attacker does no better than against a model retrained without them.
:func:`sklunlearn.metrics.membership_inference_auc` gives the area under these curves,
:func:`sklunlearn.metrics.per_sample_loss` the losses it ranks.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.metrics import membership_inference_auc, per_sample_loss

rng = np.random.RandomState(0)
n_train, n_unseen, d = 150, 300, 80
X = rng.randn(n_train + n_unseen, d)
y = X @ (rng.randn(d) / np.sqrt(d)) + 0.5 * rng.randn(len(X))
X_train, y_train = X[:n_train], y[:n_train]
X_unseen, y_unseen = X[n_train:], y[n_train:]
forget = np.arange(50)  # the deletion request: the first 50 training rows

full = BayesianLinearRegression().fit(X_train, y_train)
forgotten = BayesianLinearRegression().fit(X_train, y_train)
forgotten.partial_unfit(X_train[forget], y_train[forget])
kept = np.setdiff1d(np.arange(n_train), forget)
retrained = BayesianLinearRegression().fit(X_train[kept], y_train[kept])

# %%
# ROC curves of the attacker: the score is the negative loss, so a low loss reads as
# "was trained on".

fig, ax = plt.subplots(figsize=(4.8, 4.2))
for name, model in [
    ("before forgetting", full),
    ("after partial_unfit", forgotten),
    ("retrained", retrained),
]:
    losses = np.concatenate(
        [
            per_sample_loss(model, X_train[forget], y_train[forget]),
            per_sample_loss(model, X_unseen, y_unseen),
        ]
    )
    truth = np.r_[np.ones(len(forget)), np.zeros(n_unseen)]
    false_positive, true_positive, _ = roc_curve(truth, -losses)
    auc = membership_inference_auc(
        model, X_train[forget], y_train[forget], X_unseen, y_unseen
    )
    style = "--" if name == "retrained" else "-"
    ax.plot(false_positive, true_positive, style, label=f"{name} (AUC {auc:.2f})")
    print(f"{name:<20} membership-inference AUC {auc:.3f}")
ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
ax.set_xlabel("false positive rate (unseen rows)")
ax.set_ylabel("true positive rate (forgotten rows)")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()
