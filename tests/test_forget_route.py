"""The route from partial_unfit to the new posterior is short (traced, not timed)."""

import sys

import numpy as np

from sklunlearn.linear_model import BayesianLogisticRegression


def _functions_under(method_name, call):
    """Named package functions that run while ``method_name`` is on the stack."""
    seen, depth = [], [0]

    def profile(frame, event, arg):
        code = frame.f_code
        if "sklunlearn" not in code.co_filename:
            return
        if event == "call":
            if code.co_name == method_name:
                depth[0] += 1
            if depth[0] and not code.co_name.startswith("<"):  # comprehensions
                name = f"{code.co_filename.rsplit('sklunlearn', 1)[-1]}:{code.co_name}"
                if name not in seen:
                    seen.append(name)
        elif event == "return" and code.co_name == method_name:
            depth[0] -= 1

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


def test_laplace_forget_route_is_short():
    rng = np.random.RandomState(0)
    X = rng.randn(500, 5)
    y = (X[:, 0] + rng.logistic(size=500) > 0).astype(int)
    est = BayesianLogisticRegression().fit(X, y)
    est.partial_unfit(X[:5], y[:5])  # compile outside the trace
    route = _functions_under("_update", lambda: est.partial_unfit(X[5:10], y[5:10]))
    # _update, _run, _posterior_list, get_method, laplace_divide_out, Model.terms,
    # fused_terms, logistic_terms and its kernel, precision, GaussianPrior.floor,
    # from_precision, _upper_cholesky, __init__, solve, with_mean (__copy__),
    # mahalanobis, _set_posteriors, _conclude, region_mass
    assert len(route) <= 21, route
    assert any(name.endswith("_laplace.py:laplace_divide_out") for name in route)
    assert not any("fingerprint" in name or "ledger" in name for name in route)
