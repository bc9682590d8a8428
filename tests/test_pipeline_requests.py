"""Requests to an UnlearningPipeline: data frames read by name, weights routed as in fit."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.pipeline import make_unlearning_pipeline

pd = pytest.importorskip("pandas")


def tanh_features(Z):
    """Positional features: an array, so the final step cannot check names."""
    return np.tanh(np.asarray(Z, dtype=float))


@pytest.fixture
def frame():
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(50, 3), columns=["a", "b", "c"])
    y = X.to_numpy() @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(50)
    return X, y


def tanh_pipeline():
    return make_unlearning_pipeline(
        FunctionTransformer(tanh_features), BayesianLinearRegression()
    )


def assert_same_final_step(a, b):
    assert_allclose(a[-1].posterior_.mean, b[-1].posterior_.mean, rtol=1e-10, atol=1e-12)
    assert_allclose(
        a[-1].posterior_.covariance, b[-1].posterior_.covariance, rtol=1e-10, atol=1e-12
    )


def test_a_request_with_reordered_columns_forgets_the_rows_it_names(frame):
    X, y = frame
    pipe = tanh_pipeline().fit(X, y)
    pipe.partial_unfit(X.iloc[:5][["c", "b", "a"]], y[:5])
    assert pipe.forget_report_.exact
    assert_same_final_step(pipe, tanh_pipeline().fit(X.iloc[5:], y[5:]))
    assert not pipe.ledger_.contains(X.iloc[:5], y[:5]).any()
    assert pipe.ledger_.contains(X.iloc[5:][["b", "a", "c"]], y[5:]).all()
    with pytest.raises(ValueError, match="never learned"):
        pipe.partial_unfit(X.iloc[:5], y[:5])  # a retry: already forgotten


def test_a_batch_with_reordered_columns_is_learned_by_name(frame):
    X, y = frame
    pipe = tanh_pipeline().fit(X.iloc[:40], y[:40])
    pipe.partial_fit(X.iloc[40:][["c", "a", "b"]], y[40:])
    assert_same_final_step(pipe, tanh_pipeline().fit(X, y))
    # The ledger holds the batch's rows by name too: forgetting them in the fitted
    # order undoes the batch exactly.
    pipe.partial_unfit(X.iloc[40:], y[40:])
    assert_same_final_step(pipe, tanh_pipeline().fit(X.iloc[:40], y[:40]))


def test_a_first_batch_through_a_fitted_first_step_is_read_by_its_names(frame):
    X, y = frame
    scaler = StandardScaler().fit(X)  # kept as fitted by the first partial_fit
    in_order = make_unlearning_pipeline(copy.deepcopy(scaler), BayesianLinearRegression())
    in_order.partial_fit(X, y)
    reordered = make_unlearning_pipeline(copy.deepcopy(scaler), BayesianLinearRegression())
    reordered.partial_fit(X[["b", "c", "a"]], y)
    assert_same_final_step(reordered, in_order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        reordered.partial_unfit(X.iloc[:3], y[:3])
    assert not reordered.ledger_.contains(X.iloc[:3], y[:3]).any()


def categorical_data():
    rng = np.random.RandomState(0)
    df = pd.DataFrame(
        {
            "a": rng.randn(60),
            "n": rng.randint(0, 5, 60),
            "city": rng.choice(list("xyz"), 60),
        }
    )
    y = ((df.a + (df.city == "x")) > 0.5).astype(int).to_numpy()
    return df, y


def encoded_pipeline():
    encode = ColumnTransformer(
        [
            ("num", "passthrough", ["a", "n"]),
            ("cat", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    )
    return make_unlearning_pipeline(encode, BayesianLogisticRegression())


def test_columns_not_seen_at_fit_are_dropped_from_a_request():
    df, y = categorical_data()
    pipe = encoded_pipeline().fit(df, y)
    request = df.iloc[10:12].assign(request_id=[7.0, 8.0])[["request_id", "city", "n", "a"]]
    assert pipe.ledger_.contains(request, y[10:12]).all()
    assert_array_equal(
        pipe.ledger_.fingerprint(request, y[10:12]),
        pipe.ledger_.fingerprint(df.iloc[10:12], y[10:12]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        pipe.partial_unfit(request, y[10:12])
        # The logistic forget is approximate: compare with the request without the id.
        plain = encoded_pipeline().fit(df, y).partial_unfit(df.iloc[10:12], y[10:12])
    assert not pipe.ledger_.contains(df.iloc[10:12], y[10:12]).any()
    assert_same_final_step(pipe, plain)


def test_a_validating_first_step_takes_requests_by_name_but_predict_is_unchanged(frame):
    X, y = frame
    pipe = make_unlearning_pipeline(
        FunctionTransformer(np.tanh, validate=True), BayesianLinearRegression()
    ).fit(X, y)
    request = X.iloc[:5][["c", "a", "b"]].assign(request_id=1.0)
    with pytest.raises(ValueError, match="feature names"):
        pipe.predict(request)  # scikit-learn's own check, as before
    pipe.partial_unfit(request, y[:5])
    refit = clone(pipe).fit(X.iloc[5:], y[5:])
    assert_same_final_step(pipe, refit)
    assert_allclose(pipe.predict(X), refit.predict(X), rtol=1e-10)


@pytest.mark.parametrize(
    "columns, named",
    [(["a", "b"], r"\['c'\]"), (["a", "b", "c", "b"], r"\['b'\] more than once")],
)
def test_a_request_missing_a_column_is_refused_and_changes_nothing(frame, columns, named):
    X, y = frame
    pipe = tanh_pipeline().fit(X.iloc[:40], y[:40])
    before = pickle.dumps(pipe)
    request = X.iloc[:5].copy()
    request = pd.concat([request[column] for column in columns], axis=1)
    message = named + r".*Nothing was changed\.$"
    with pytest.raises(ValueError, match=message):
        pipe.partial_unfit(request, y[:5])
    with pytest.raises(ValueError, match=message):
        pipe.partial_fit(request, y[:5])
    with pytest.raises(ValueError, match=message):
        pipe.ledger_.contains(request, y[:5])
    assert pickle.dumps(pipe) == before


def test_a_frame_given_to_a_pipeline_fitted_on_an_array_is_read_by_position(frame):
    X, y = frame
    values = X.to_numpy()
    pipe = tanh_pipeline().fit(values, y)
    renamed = pd.DataFrame(values[:5], columns=["z", "y", "x"])
    pipe.partial_unfit(renamed, y[:5])
    assert_same_final_step(pipe, tanh_pipeline().fit(values[5:], y[5:]))


def weighted_data():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(40)
    return X, y, rng.uniform(0.2, 0.8, 40)


def routed_pipeline(final_request):
    final = BayesianLinearRegression()
    if final_request is not None:
        final.set_fit_request(sample_weight=final_request)
    return make_unlearning_pipeline(
        StandardScaler().set_fit_request(sample_weight=True), final
    )


def final_step_on(pipe, X, y, sample_weight=None):
    """The final step fitted directly on rows transformed by the pipeline's scaler."""
    return BayesianLinearRegression().fit(
        pipe[0].transform(X), y, sample_weight=sample_weight
    )


@pytest.mark.parametrize("requested", [True, False])
def test_routed_weights_reach_the_final_step_only_when_its_fit_requests_them(requested):
    X, y, w = weighted_data()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        pipe = routed_pipeline(requested).fit(X[:30], y[:30], sample_weight=w[:30])
        pipe.partial_fit(X[30:], y[30:], sample_weight=w[30:])
        pipe.partial_unfit(X[:2], y[:2], sample_weight=w[:2])
    final_weights = w[2:] if requested else None
    expected = final_step_on(pipe, X[2:], y[2:], final_weights)
    assert_allclose(pipe[-1].posterior_.mean, expected.posterior_.mean, rtol=1e-10)
    assert_allclose(
        pipe[-1].posterior_.covariance, expected.posterior_.covariance, rtol=1e-10
    )
    assert not pipe.ledger_.contains(X[:2], y[:2]).any()
    expected_weight = w[2:].sum() if requested else 38.0
    assert pipe.ledger_.total_weight == pytest.approx(expected_weight, rel=1e-12)


def test_routed_weights_for_an_unset_final_request_are_refused_and_change_nothing():
    X, y, w = weighted_data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = routed_pipeline(None).fit(X, y)
        before = pickle.dumps(pipe)
        for method in (pipe.partial_unfit, pipe.partial_fit):
            with pytest.raises(UnsetMetadataPassedError, match="set_fit_request"):
                method(X[:2], y[:2], sample_weight=w[:2])
        assert pickle.dumps(pipe) == before


def test_a_first_routed_batch_weighs_the_steps_as_fit_does():
    X, y, w = weighted_data()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        streamed = routed_pipeline(True).partial_fit(X, y, sample_weight=w)
        fitted = routed_pipeline(True).fit(X, y, sample_weight=w)
    assert_allclose(streamed[0].mean_, fitted[0].mean_, rtol=1e-12)
    assert_allclose(streamed[0].scale_, fitted[0].scale_, rtol=1e-12)
    assert_same_final_step(streamed, fitted)


@pytest.mark.parametrize("as_frame", [False, True])
def test_a_nested_pipelines_ledger_reads_the_outer_input_rows(as_frame):
    """The inner pipeline's final estimator is keyed by the outer input rows: the
    outer ledger_ reads them once (it computed the keys twice and crashed)."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = X @ [1.0, -2.0, 0.5]
    if as_frame:
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(X, columns=["a", "b", "c"])
    inner = make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression())
    outer = make_unlearning_pipeline(FunctionTransformer(), inner).fit(X, y)
    rows = X.iloc[5:8] if as_frame else X[5:8]
    assert outer.ledger_.contains(rows, y[5:8]).all()
    outer.partial_unfit(rows, y[5:8])
    assert not outer.ledger_.contains(rows, y[5:8]).any()
    assert outer.ledger_.fingerprint(rows, y[5:8]).shape[0] == 3


def test_a_passthrough_first_step_reads_a_request_by_the_next_steps_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(40, 3), columns=["a", "b", "c"])
    y = X.to_numpy() @ [1.0, -2.0, 0.5]
    pipe = make_unlearning_pipeline("passthrough", BayesianLinearRegression()).fit(X, y)
    request = X.iloc[:5][["c", "a", "b"]].assign(request_id=1.0)
    pipe.partial_unfit(request, y[:5])
    refit = BayesianLinearRegression().fit(X.iloc[5:], y[5:])
    assert_allclose(pipe[-1].coef_, refit.coef_, rtol=1e-10, atol=1e-12)
    assert not pipe.ledger_.contains(X.iloc[:5], y[:5]).any()


def test_aliased_weights_are_learned_and_forgotten_under_their_alias():
    X, y, w = weighted_data()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        final = BayesianLinearRegression().set_fit_request(sample_weight="w")
        pipe = make_unlearning_pipeline(FunctionTransformer(tanh_features), final)
        pipe.fit(X[:30], y[:30], w=w[:30])
        pipe.partial_fit(X[30:], y[30:], w=w[30:])
        before = pickle.dumps(pipe)
        # The alias is the only name fit accepts, so the only name a forget accepts.
        with pytest.raises(TypeError, match="sample_weight"):
            pipe.partial_unfit(X[:2], y[:2], sample_weight=w[:2])
        assert pickle.dumps(pipe) == before
        pipe.partial_unfit(X[:2], y[:2], w=w[:2])
    expected = BayesianLinearRegression().fit(
        tanh_features(X[2:]), y[2:], sample_weight=w[2:]
    )
    assert_allclose(pipe[-1].posterior_.mean, expected.posterior_.mean, rtol=1e-10)
    assert pipe.ledger_.total_weight == pytest.approx(w[2:].sum(), rel=1e-12)


def test_metadata_other_than_weights_is_refused_without_routing_and_changes_nothing():
    X, y, _ = weighted_data()
    pipe = tanh_pipeline().fit(X, y)
    before = pickle.dumps(pipe)
    with pytest.raises(TypeError, match="unexpected argument"):
        pipe.partial_unfit(X[:2], y[:2], w=np.ones(2))
    assert pickle.dumps(pipe) == before


def test_a_nested_pipeline_forgets_aliased_weights_as_its_fit_learned_them():
    X, y, w = weighted_data()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        final = BayesianLinearRegression().set_fit_request(sample_weight="w")
        inner = make_unlearning_pipeline(FunctionTransformer(tanh_features), final)
        outer = make_unlearning_pipeline(FunctionTransformer(), inner).fit(X, y, w=w)
        outer.partial_unfit(X[:4], y[:4], w=w[:4])  # forgot whole rows before
    assert outer.forget_report_.weight == pytest.approx(w[:4].sum(), rel=1e-12)
    expected = BayesianLinearRegression().fit(
        tanh_features(X[4:]), y[4:], sample_weight=w[4:]
    )
    assert_allclose(outer[-1][-1].posterior_.mean, expected.posterior_.mean, rtol=1e-10)
    assert not outer.ledger_.contains(X[:4], y[:4]).any()
