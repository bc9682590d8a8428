"""Offline loaders for the data the examples, tests and benchmarks use."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_banknote", "vbu_banknote_split"]

_BANKNOTE_DESCR = """\
Banknote authentication data set
--------------------------------
UCI Machine Learning Repository, V. Lohweg (2013), licence CC BY 4.0.

1372 banknote images described by 4 real-valued wavelet features (variance,
skewness, curtosis and entropy of the wavelet-transformed image) and a binary
class: 0 genuine (762 rows), 1 forged (610 rows).

Nguyen, Low & Jaillet (2020), "Variational Bayesian Unlearning", evaluate
unlearning for Bayesian logistic regression on it: shuffle with seed 0, erase
the last 412 rows (|D_e| = 412, |D_r| = 960), prior N(0, 100^2 I) on the
4 weights and the bias, raw (unstandardised) features. See
:func:`vbu_banknote_split`.
"""


def load_banknote(*, return_X_y=False, as_frame=False):
    """Load the banknote authentication data set (binary classification).

    =================   ==============
    Classes                          2
    Samples per class        762 / 610
    Samples total                 1372
    Dimensionality                   4
    Features            real, raw scale
    =================   ==============

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Give ``data`` as a pandas DataFrame (columns named by
        ``feature_names``) and ``target`` as a Series named ``'class'``, and
        add ``frame``, both together, to the Bunch, as scikit-learn's loaders
        do. Needs pandas.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``data`` (ndarray of shape (1372, 4), or DataFrame), ``target``
        (ndarray of shape (1372,), int, or Series), ``feature_names``,
        ``target_names``, ``DESCR``, and ``frame`` when ``as_frame``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sklunlearn.datasets import load_banknote
    >>> X, y = load_banknote(return_X_y=True)
    >>> X.shape, int(y.sum())
    ((1372, 4), 610)
    """
    path = resources.files(__name__).joinpath("banknote_authentication.csv")
    with path.open("r") as handle:
        header = handle.readline().strip().split(",")
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    data = np.ascontiguousarray(table[:, :-1])
    target = table[:, -1].astype(np.int64)
    frame = None
    if as_frame:
        import pandas as pd

        data = pd.DataFrame(data, columns=header[:-1])
        target = pd.Series(target, name=header[-1])
        frame = pd.concat([data, target], axis=1)
    if return_X_y:
        return data, target
    bunch = Bunch(
        data=data,
        target=target,
        feature_names=header[:-1],
        target_names=np.array(["genuine", "forged"]),
        DESCR=_BANKNOTE_DESCR,
    )
    if as_frame:
        bunch.frame = frame
    return bunch


def vbu_banknote_split():
    """The remaining/erased split of VBU's banknote experiment.

    Shuffles the rows with ``np.random.RandomState(0).permutation`` and
    erases the last 412 rows.

    Returns
    -------
    X : ndarray of shape (1372, 4)
        All rows, shuffled.
    y : ndarray of shape (1372,)
    erased : ndarray of shape (1372,), bool
        True for the 412 rows to erase.
    """
    X, y = load_banknote(return_X_y=True)
    order = np.random.RandomState(0).permutation(X.shape[0])
    erased = np.zeros(X.shape[0], dtype=bool)
    erased[-412:] = True
    return X[order], y[order], erased
