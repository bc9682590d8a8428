"""A pipeline recognises the rows it learned whether they are given sparse or dense."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse
from sklearn.preprocessing import FunctionTransformer

from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.pipeline import make_unlearning_pipeline


def _pipeline():
    return make_unlearning_pipeline(
        FunctionTransformer(accept_sparse=True), BayesianLogisticRegression()
    )


@pytest.mark.parametrize("learned_sparse", [True, False])
def test_rows_learned_in_one_format_are_forgotten_in_the_other(learned_sparse):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)) * (rng.uniform(size=(40, 3)) < 0.6)
    y = (X[:, 0] + 0.3 * rng.normal(size=40) > 0).astype(int)
    learned = sparse.csr_matrix(X) if learned_sparse else X
    forgotten = X[:3] if learned_sparse else sparse.csr_matrix(X[:3])
    pipe = _pipeline().fit(learned, y)
    pipe.partial_unfit(forgotten, y[:3])
    # The same forget given in the format the rows were learned in.
    same = _pipeline().fit(learned, y).partial_unfit(learned[:3], y[:3])
    assert pipe[-1].n_samples_seen_ == 37
    assert_allclose(pipe[-1].coef_, same[-1].coef_, rtol=1e-12)


def test_a_row_never_learned_is_still_refused_across_formats():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    pipe = _pipeline().fit(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError):
        pipe.partial_unfit(X[:1] + 1.0, y[:1])
