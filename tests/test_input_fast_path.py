"""The fast validation path of partial_unfit agrees with scikit-learn's validate_data.

``sklunlearn.base.validate_rows`` skips ``check_X_y`` only for inputs it would
return unchanged (plain finite float64 ``X``, 1-D numeric ``y``); everything
else takes the full path. Each case below compares the two.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.validation import validate_data

from sklunlearn.base import validate_rows
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

rng = np.random.RandomState(0)
X = rng.randn(60, 3)
y = (X[:, 0] > 0).astype(int)


def _outcome(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - the type and message are compared
            return ("raised", type(exc), str(exc)), [str(w.message) for w in caught]
    return ("returned", result), [str(w.message) for w in caught]


INPUTS = {
    "plain": (X[:5], y[:5]),
    "float y": (X[:5], y[:5].astype(float)),
    "bool y": (X[:5], y[:5].astype(bool)),
    "Fortran X": (np.asfortranarray(X[:5]), y[:5]),
    "int X": (np.arange(15).reshape(5, 3), y[:5]),
    "float32 X": (X[:5].astype(np.float32), y[:5]),
    "list X": (X[:5].tolist(), y[:5]),
    "NaN in X": (np.where(np.arange(15).reshape(5, 3) == 4, np.nan, X[:5]), y[:5]),
    "inf in X": (np.where(np.arange(15).reshape(5, 3) == 4, np.inf, X[:5]), y[:5]),
    "NaN in y": (X[:5], np.array([0.0, 1.0, np.nan, 0.0, 1.0])),
    "1-D X": (X[0], y[:1]),
    "empty X": (X[:0], y[:0]),
    "wrong width": (X[:5, :2], y[:5]),
    "short y": (X[:5], y[:4]),
    "2-D y": (X[:5], y[:5, None]),
    "string y": (X[:5], np.array(list("ababa"))),
}


@pytest.mark.parametrize("case", list(INPUTS))
@pytest.mark.parametrize("fitted_with_names", [False, True])
def test_fast_path_agrees_with_validate_data(case, fitted_with_names):
    est = BayesianLogisticRegression()
    if fitted_with_names:
        est.fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    else:
        est.fit(X, y)
    Xc, yc = INPUTS[case]
    fast = _outcome(lambda: validate_rows(est, Xc, yc))
    full = _outcome(lambda: validate_data(est, Xc, yc, reset=False, dtype=np.float64))
    assert fast[1] == full[1]  # the same warnings (feature names)
    if full[0][0] == "raised":
        assert fast[0][:2] == full[0][:2]
        assert fast[0][2] == full[0][2]
    else:
        assert fast[0][0] == "returned"
        for a, b in zip(fast[0][1], full[0][1], strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_fast_path_with_a_dataframe_takes_the_full_path():
    est = BayesianLinearRegression().fit(pd.DataFrame(X, columns=list("abc")), X[:, 0])
    with pytest.raises(ValueError, match="feature names"):
        est.partial_unfit(pd.DataFrame(X[:5], columns=list("abd")), X[:5, 0])


def test_parameter_names_are_cached_per_class():
    class Wider(BayesianLogisticRegression):
        def __init__(self, *, extra=1, **kwargs):
            super().__init__(**kwargs)
            self.extra = extra

    names = BayesianLogisticRegression()._get_param_names()
    assert names == sorted(names) and "unlearning_lambda" in names
    assert BayesianLogisticRegression._get_param_names() == names
    assert Wider._get_param_names() == ["extra"]  # its own signature, not the parent's
    names.append("mutated")  # callers get a copy
    assert "mutated" not in BayesianLogisticRegression._get_param_names()
