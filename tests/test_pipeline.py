"""UnlearningPipeline: forwarding, exactness through stateless steps, warnings."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from _unlearning_toys import ToyUnlearningClassifier
from numpy.testing import assert_allclose
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    Normalizer,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.pipeline import UnlearningPipeline, is_stateless, make_unlearning_pipeline


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 3, size=(90, 3))
    y = np.log1p(X) @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(90)
    return X, y


def log_pipeline():
    return make_unlearning_pipeline(
        FunctionTransformer(np.log1p, validate=True), BayesianLinearRegression()
    )


def assert_same_model(a, b, X):
    assert_allclose(a.posterior_.mean, b.posterior_.mean, rtol=1e-7)
    assert_allclose(a.posterior_.covariance, b.posterior_.covariance, rtol=1e-7)
    for got, expected in zip(
        a.predict(X, return_std=True), b.predict(X, return_std=True), strict=True
    ):
        assert_allclose(got, expected, rtol=1e-7)


def test_forgetting_through_stateless_steps_equals_refit_without_warning(data):
    X, y = data
    pipe = log_pipeline().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pipe.partial_unfit(X[:15], y[:15]) is pipe
    assert_same_model(pipe, log_pipeline().fit(X[15:], y[15:]), X)


def test_weighted_forgetting_through_the_pipeline(data):
    X, y = data
    weights = np.random.RandomState(1).uniform(1, 2, 90)
    pipe = log_pipeline().fit(X, y, sample_weight=weights)
    pipe.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
    reduced = weights.copy()
    reduced[:10] -= 0.5
    assert_same_model(pipe, log_pipeline().fit(X, y, sample_weight=reduced), X)


def test_stateful_step_warns_and_final_step_still_forgets(data):
    X, y = data
    pipe = make_unlearning_pipeline(
        StandardScaler(), FunctionTransformer(), BayesianLinearRegression()
    ).fit(X, y)
    scaler = pipe.named_steps["standardscaler"]
    match = r"'standardscaler' \(StandardScaler\)"
    with pytest.warns(UnlearningWarning, match=match) as rec:
        pipe.partial_unfit(X[:15], y[:15])
    message = str(rec[0].message)
    assert "functiontransformer" not in message
    assert "refit the pipeline on the remaining rows" in message
    assert issubclass(UnlearningWarning, UserWarning)
    # The scaler still has the statistics of all rows (what the warning is
    # about), and the final step equals a model fitted on the remaining rows
    # as that scaler transforms them.
    assert_allclose(scaler.mean_, X.mean(axis=0))
    expected = BayesianLinearRegression().fit(scaler.transform(X[15:]), y[15:])
    assert_allclose(pipe.posterior_.mean, expected.posterior_.mean, rtol=1e-7)


@pytest.mark.parametrize(
    "step, stateless",
    [
        (FunctionTransformer(np.log1p), True),
        (Normalizer(), True),
        (PolynomialFeatures(2), True),
        ("passthrough", True),
        (None, True),
        (make_pipeline(FunctionTransformer(), Normalizer()), True),
        (FeatureUnion([("a", FunctionTransformer()), ("b", Normalizer())]), True),
        (ColumnTransformer([("log", FunctionTransformer(np.log1p), [0])]), True),
        (StandardScaler(), False),
        (PCA(), False),
        (make_pipeline(FunctionTransformer(), StandardScaler()), False),
        (FeatureUnion([("a", FunctionTransformer()), ("b", PCA())]), False),
        (ColumnTransformer([("s", StandardScaler(), [0])]), False),
        (
            ColumnTransformer(
                [("log", FunctionTransformer(), [0])], remainder=StandardScaler()
            ),
            False,
        ),
    ],
)
def test_is_stateless(data, step, stateless):
    assert is_stateless(step) is stateless
    if isinstance(step, ColumnTransformer):
        X, y = data
        assert is_stateless(step.fit(X, y)) is stateless


def test_forgetting_through_polynomial_features_is_exact(data):
    X, y = data

    def make():
        return make_unlearning_pipeline(PolynomialFeatures(2), BayesianLinearRegression())

    pipe = make().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.partial_unfit(X[:15], y[:15])
    assert_same_model(pipe, make().fit(X[15:], y[15:]), X)


def test_column_transformer_of_stateless_parts_does_not_warn(data):
    X, y = data
    pipe = make_unlearning_pipeline(
        ColumnTransformer(
            [("log", FunctionTransformer(np.log1p), [0, 1])], remainder="passthrough"
        ),
        BayesianLinearRegression(),
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.partial_unfit(X[:5], y[:5])


def test_partial_fit_fits_steps_on_first_batch_then_only_transforms(data):
    X, y = data
    pipe = make_unlearning_pipeline(StandardScaler(), BayesianLinearRegression())
    pipe.partial_fit(X[:40], y[:40])
    scaler = pipe.named_steps["standardscaler"]
    assert_allclose(scaler.mean_, X[:40].mean(axis=0))
    pipe.partial_fit(X[40:], y[40:])
    assert pipe.named_steps["standardscaler"] is scaler
    assert_allclose(scaler.mean_, X[:40].mean(axis=0))
    expected = BayesianLinearRegression().fit(scaler.transform(X), y)
    assert_allclose(pipe.posterior_.mean, expected.posterior_.mean, rtol=1e-7)


def test_partial_fit_then_partial_unfit_through_stateless_steps_is_exact(data):
    X, y = data
    pipe = log_pipeline()
    pipe.partial_fit(X[:50], y[:50]).partial_fit(X[50:], y[50:])
    assert_same_model(pipe, log_pipeline().fit(X, y), X)
    pipe.partial_unfit(X[50:], y[50:])
    assert_same_model(pipe, log_pipeline().fit(X[:50], y[:50]), X)


def test_partial_fit_forwards_classes_to_a_classifier():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 2)
    y = (X[:, 0] > 0).astype(int)
    pipe = make_unlearning_pipeline(
        Normalizer(), ToyUnlearningClassifier(forget_fraction=1.0)
    )
    pipe.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(pipe.classes_, [0, 1])
    assert pipe.predict_proba(X).shape == (60, 2)


def test_rejected_calls_leave_the_pipeline_unchanged(data):
    X, y = data
    fresh = make_unlearning_pipeline(StandardScaler(), BayesianLinearRegression())
    before = pickle.dumps(fresh)
    X_nan = X[:5].copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError):
        fresh.partial_fit(X[:5], y[:4])  # the scaler would fit; the final step refuses
    assert pickle.dumps(fresh) == before
    with pytest.raises(NotFittedError):
        fresh.partial_unfit(X[:5], y[:5])
    assert pickle.dumps(fresh) == before

    pipe = log_pipeline().fit(X, y)
    before = pickle.dumps(pipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            pipe.partial_unfit(X_nan, y[:5])
        with pytest.raises(ValueError):
            pipe.partial_unfit(X[:5, :2], y[:5])
        with pytest.raises(ValueError):
            pipe.partial_unfit(np.vstack([X, X[:1]]), np.r_[y, y[:1]])
    assert pickle.dumps(pipe) == before


def test_methods_exist_only_when_the_final_step_has_them(data):
    X, y = data
    plain = UnlearningPipeline([("scale", StandardScaler()), ("ridge", Ridge())]).fit(X, y)
    assert not hasattr(plain, "partial_unfit")
    assert not hasattr(plain, "partial_fit")
    assert not hasattr(plain, "posterior_")
    assert not hasattr(log_pipeline(), "posterior_")


def test_grid_search_pickling_and_audit(data):
    X, y = data
    search = GridSearchCV(
        log_pipeline(), {"bayesianlinearregression__fit_intercept": [True, False]}, cv=3
    ).fit(X, y)
    best = pickle.loads(pickle.dumps(search.best_estimator_))
    assert isinstance(best, UnlearningPipeline)
    best.partial_unfit(X[:5], y[:5])
    assert best.predict(X).shape == (90,)

    audit = UnlearningAudit(log_pipeline(), random_state=0).fit(X, y)
    assert audit.kl_to_retrained_ < 1e-9 < audit.kl_do_nothing_


def test_make_unlearning_pipeline_names_steps():
    pipe = make_unlearning_pipeline(
        StandardScaler(), BayesianLinearRegression(), verbose=False
    )
    assert isinstance(pipe, UnlearningPipeline)
    names = [name for name, _ in pipe.steps]
    assert names == ["standardscaler", "bayesianlinearregression"]


def _expected_failed_checks(estimator):
    reason = (
        "scikit-learn's Pipeline fits its steps in place, so the steps parameter "
        "holds fitted estimators after fit"
    )
    return {
        "check_estimators_overwrite_params": reason,
        "check_dont_overwrite_parameters": reason,
    }


@parametrize_with_checks(
    [
        make_unlearning_pipeline(
            FunctionTransformer(validate=True), BayesianLinearRegression()
        )
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "first, exact", [(FunctionTransformer(np.log1p), True), (StandardScaler(), False)]
)
def test_forget_report_is_exact_only_when_the_pipeline_is(data, first, exact):
    X, y = data
    pipe = make_unlearning_pipeline(first, BayesianLinearRegression()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)  # the scaler keeps the rows
        pipe.partial_unfit(X[:5], y[:5])
    # the final step's own report says exact: the scaler's statistics are not
    assert pipe[-1].forget_report_.exact
    assert pipe.forget_report_.exact is exact
    assert pipe.forget_report_.n_rows == 5


_PROJECTION = np.linspace(-1.0, 1.0, 64 * 20).reshape(64, 20)


def _project(Z):
    return Z @ _PROJECTION


def _projection_pipeline(first, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        return make_unlearning_pipeline(first, BayesianLinearRegression()).fit(X, y)


@pytest.mark.parametrize(
    "first",
    [
        PCA(20, random_state=0),
        FunctionTransformer(_project),
    ],
    ids=["pca", "matmul"],
)
def test_rows_learned_in_a_batch_are_forgotten_one_by_one(first):
    # A projection's rows differ in their last bits with the batch they are computed
    # in, so a ledger of transformed rows would not know a row forgotten alone.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400].astype(float)
    pipe = _projection_pipeline(first, X, y)
    step = pipe[0]
    batch, alone = (
        step.transform(X)[:30],
        np.vstack([step.transform(X[i : i + 1]) for i in range(30)]),
    )
    assert not np.array_equal(batch, alone)  # the hazard is real here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for i in range(30):
            pipe.partial_unfit(X[i : i + 1], y[i : i + 1])
        pipe.partial_unfit(X[30:33], y[30:33])
    assert pipe.ledger_.n_rows == 400 - 33
    assert not pipe.ledger_.contains(X[:33], y[:33]).any()
    before = pickle.dumps(pipe)
    with pytest.raises(ValueError, match="never learned or already forgotten"):
        pipe.partial_unfit(X[:1], y[:1])
    assert pickle.dumps(pipe) == before


def test_stateful_step_warning_as_error_leaves_the_pipeline_unchanged(data):
    X, y = data
    pipe = _projection_pipeline(StandardScaler(), X, y)
    before = pickle.dumps(pipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        with pytest.raises(UnlearningWarning, match="may still hold statistics"):
            pipe.partial_unfit(X[:3], y[:3])
    assert pickle.dumps(pipe) == before
    with pytest.warns(UnlearningWarning, match="may still hold statistics"):
        pipe.partial_unfit(X[:3], y[:3])  # the retry is not refused
    assert pipe.ledger_.n_rows == X.shape[0] - 3
    assert any("may still hold statistics" in m for m in pipe.forget_report_.warnings)


def test_text_input_is_keyed_by_its_values():
    from sklearn.feature_extraction.text import HashingVectorizer

    def pipeline():
        return make_unlearning_pipeline(
            HashingVectorizer(n_features=32, alternate_sign=False),
            FunctionTransformer(lambda Z: Z.toarray(), accept_sparse=True),
            BayesianLinearRegression(),
        )

    texts = [f"row {i} word{i % 7} token{i % 3}" for i in range(60)]
    y = np.arange(60, dtype=float) % 5
    pipe, refit = pipeline().fit(texts, y), pipeline().fit(texts[5:], y[5:])
    pipe.partial_unfit(texts[:5], y[:5])
    assert_allclose(pipe.predict(texts), refit.predict(texts), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="never learned or already forgotten"):
        pipe.partial_unfit(texts[:1], y[:1])


def test_a_frame_with_its_columns_reordered_is_the_same_rows():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"a": rng.randn(50), "b": rng.randn(50)})
    frame.iloc[0] = [1.0, 2.0]
    y = frame["a"] - frame["b"] + 0.1 * rng.randn(50)
    pipe = make_unlearning_pipeline(
        ColumnTransformer([("f", FunctionTransformer(), ["a", "b"])]),
        BayesianLinearRegression(),
    ).fit(frame, y)
    before = pickle.dumps(pipe)
    # a = 2, b = 1 was never learned, though its values by position are row 0's
    swapped = pd.DataFrame({"b": [1.0], "a": [2.0]})
    with pytest.raises(ValueError, match="never learned"):
        pipe.partial_unfit(swapped, y[:1])
    assert pickle.dumps(pipe) == before
    pipe.partial_unfit(frame[["b", "a"]].iloc[:1], y[:1])  # row 0, columns reordered
    refit = make_unlearning_pipeline(
        ColumnTransformer([("f", FunctionTransformer(), ["a", "b"])]),
        BayesianLinearRegression(),
    ).fit(frame.iloc[1:], y[1:])
    assert_same_model(pipe, refit, frame)


def test_an_unknown_category_is_not_the_dropped_one():
    # With drop='first' and handle_unknown='ignore' an unseen category encodes as the
    # dropped one: transformed rows would let a never-learned row remove a real one.
    pd = pytest.importorskip("pandas")
    from sklearn.preprocessing import OneHotEncoder

    cities = ["Oslo", "Bergen", "Tromso"] * 10
    frame = pd.DataFrame({"city": cities, "age": np.arange(30.0)})
    y = np.arange(30.0) % 7
    encoder = ColumnTransformer(
        [("city", OneHotEncoder(drop="first", handle_unknown="ignore"), ["city"])],
        remainder="passthrough",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        pipe = make_unlearning_pipeline(encoder, BayesianLinearRegression()).fit(frame, y)
        with pytest.raises(ValueError, match="never learned"):
            pipe.partial_unfit(pd.DataFrame({"city": ["Atlantis"], "age": [0.0]}), y[:1])
        pipe.partial_unfit(frame.iloc[:1], y[:1])  # the real row is still there
    assert pipe.ledger_.n_rows == 29


def test_rows_with_nan_for_an_imputer_are_learned_and_forgotten():
    from sklearn.impute import SimpleImputer

    rng = np.random.RandomState(0)
    X = rng.randn(50, 3)
    y = X @ [1.0, 2.0, 3.0] + 0.1 * rng.randn(50)
    X[0, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        pipe = make_unlearning_pipeline(SimpleImputer(), BayesianLinearRegression())
        pipe.fit(X, y).partial_unfit(X[:1], y[:1])
        with pytest.raises(ValueError, match="never learned"):
            pipe.partial_unfit(np.nan_to_num(X[:1]), y[:1])  # 0.0 is not NaN
    assert pipe.ledger_.n_rows == 49


def _scaled(Z, s=1.0):
    return Z * s


def test_a_step_changed_after_fit_refuses_requests():
    X = np.random.RandomState(0).uniform(0, 3, size=(60, 3))
    y = X @ [1.0, 2.0, 3.0]
    pipe = make_unlearning_pipeline(
        FunctionTransformer(_scaled, kw_args={"s": 1.0}), BayesianLinearRegression()
    ).fit(X, y)
    before = pickle.dumps(pipe)
    pipe.set_params(functiontransformer__kw_args={"s": 1.5})
    changed = pickle.dumps(pipe)
    for call in (pipe.partial_unfit, pipe.partial_fit):
        with pytest.raises(ValueError, match="functiontransformer__kw_args changed"):
            call(X[:5], y[:5])
        assert pickle.dumps(pipe) == changed
    pipe.set_params(functiontransformer__kw_args={"s": 1.0})
    assert pickle.dumps(pipe) == before
    pipe.partial_unfit(X[:5], y[:5])


@pytest.mark.parametrize("where", ["inner", "outer"])
def test_nested_pipelines_key_by_the_outer_rows_and_warn_before_committing(where):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200].astype(float)
    inner = make_unlearning_pipeline(PCA(8, random_state=0), BayesianLinearRegression())
    if where == "inner":
        inner.steps.insert(0, ("scaler", StandardScaler()))
        pipe = make_unlearning_pipeline(FunctionTransformer(), inner)
    else:
        pipe = make_unlearning_pipeline(StandardScaler(), inner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        pipe.fit(X, y)
    before = pickle.dumps(pipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        with pytest.raises(UnlearningWarning, match="may still hold statistics"):
            pipe.partial_unfit(X[:1], y[:1])
    assert pickle.dumps(pipe) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for i in range(20):  # learned in a batch, forgotten one by one
            pipe.partial_unfit(X[i : i + 1], y[i : i + 1])
    assert pipe[-1][-1].n_samples_seen_ == 180


def test_unchanged_steps_of_every_kind_do_not_read_as_changed():
    # NaN compares unequal to itself, a random state changes as it is used, arrays
    # compare elementwise: none of them is a parameter change, before or after a pickle.
    pd = pytest.importorskip("pandas")
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = X.sum(axis=1)
    X[0, 0] = np.nan
    frame = pd.DataFrame({"c": ["a", "b", "c"] * 20, "v": np.arange(60.0)})
    categories = [np.array(["a", "b", "c"], dtype=object)]
    pipes = [
        (
            make_unlearning_pipeline(
                SimpleImputer(missing_values=np.nan),
                PCA(3, random_state=np.random.RandomState(0)),
                BayesianLinearRegression(),
            ),
            X,
        ),
        (
            make_unlearning_pipeline(
                ColumnTransformer(
                    [("c", OneHotEncoder(categories=categories), ["c"])],
                    remainder="passthrough",
                ),
                BayesianLinearRegression(),
            ),
            frame,
        ),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for pipe, rows in pipes:
            pipe.fit(rows, y).partial_unfit(rows[:2], y[:2])
            again = pickle.loads(pickle.dumps(pipe))
            again.partial_unfit(rows[2:4], y[2:4])
            assert again.ledger_.n_rows == 56


@pytest.mark.parametrize("method", ["partial_fit", "partial_unfit"])
def test_batch_methods_validate_the_pipelines_own_parameters(method):
    # fit refuses an invalid parameter set after construction; a batch must too, and
    # leave the pipeline as it was.
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0)
    pipe = make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression()).fit(
        X, y
    )
    pipe.set_params(verbose="yes please")
    before = pickle.dumps(pipe)
    with pytest.raises(InvalidParameterError):
        getattr(pipe, method)(X[:2], y[:2])
    assert pickle.dumps(pipe) == before
    with sklearn.config_context(skip_parameter_validation=True):
        getattr(pipe, method)(X[:2], y[:2])
