import subprocess
import sys
import warnings

import numpy as np
import pytest

from sklunlearn import _demo
from sklunlearn.cli import main
from sklunlearn.datasets import load_banknote, vbu_banknote_split


def test_load_banknote_matches_the_documented_data():
    bunch = load_banknote()
    assert bunch.data.shape == (1372, 4)
    assert bunch.target.sum() == 610
    assert bunch.feature_names == ["variance", "skewness", "curtosis", "entropy"]
    assert "CC BY 4.0" in bunch.DESCR
    X, y = load_banknote(return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    # first row of the UCI file
    np.testing.assert_allclose(X[0], [3.6216, 8.6661, -2.8073, -0.44699])


def test_vbu_split():
    X, y, erased = vbu_banknote_split()
    assert erased.sum() == 412 and (~erased).sum() == 960
    order = np.random.RandomState(0).permutation(1372)
    np.testing.assert_array_equal(X, load_banknote().data[order])


def test_forget_masks_are_the_promised_sets(rng):
    X = rng.randn(200, 3)
    masks = _demo.forget_masks(X, 0.1, random_state=0)
    assert [m.sum() for m in masks.values()] == [20, 20]
    clustered = masks["clustered 10%"]
    # the clustered rows are the extreme ones along the first principal axis
    Z = (X - X.mean(0)) / X.std(0)
    axis = np.linalg.svd(Z, full_matrices=False)[2][0]
    projection = np.abs(Z @ axis)
    assert projection[clustered].min() >= np.median(projection[~clustered])


def test_demo_table_compares_with_retraining(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "BayesianLinearRegression" in out and "clustered 10%" in out
    exact = _demo._linear_regression_diabetes(random_state=1)
    assert exact and all(abs(r.kl) < 1e-8 < r.kl_do_nothing for r in exact)
    assert all(r.max_prediction_difference < 1e-8 for r in exact)


def test_demo_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    _demo.plot(_demo._linear_regression_diabetes(random_state=0), path)
    assert path.stat().st_size > 1000


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "sklunlearn", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "demo" in out.stdout


def _refuse_to_run(random_state=0):
    raise AssertionError("the demo ran before its arguments were checked")


def test_demo_plot_without_matplotlib_is_refused_before_any_work(
    monkeypatch, capsys, tmp_path
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setattr(_demo, "run_demo", _refuse_to_run)
    path = tmp_path / "demo.png"
    assert main(["demo", "--plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib" in err and "Traceback" not in err
    assert not path.exists()


def test_demo_negative_seed_is_an_argparse_error(monkeypatch, capsys):
    monkeypatch.setattr(_demo, "run_demo", _refuse_to_run)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--seed", "-1"])
    assert exit_info.value.code == 2
    assert "--seed: -1 is negative" in capsys.readouterr().err


def test_demo_table_labels_rows_and_units(monkeypatch, capsys):
    result = _demo.DemoResult(
        "BayesianLinearRegression", "diabetes", "random 10%", 442, 44,
        1e-3, 2e-3, 1e-15, 0.2, 1e-13,
    )  # fmt: skip
    monkeypatch.setattr(_demo, "run_demo", lambda random_state=0: [result])
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    header, units = out.splitlines()[4:6]
    rows_column = header.index("forgotten")
    assert units[rows_column : rows_column + 9].strip() == "rows"
    assert units.split() == ["rows", "nats", "nats"]
    assert "rows: rows forgotten" in out and "KL columns in nats" in out
    assert "benchmarks/README.md" not in out
    assert " 44 " in out.splitlines()[7]


def test_demo_table_marks_forgets_that_warned(monkeypatch, capsys):
    quiet = _demo.DemoResult(
        "SparseGPClassifier", "banknote", "random 10%", 1372, 137,
        1e-3, 2e-3, 1e-2, 0.3, 1e-3,
    )  # fmt: skip
    warned = quiet._replace(forget_set="clustered 10%", warnings=("suspect",))
    monkeypatch.setattr(_demo, "run_demo", lambda random_state=0: [quiet, warned])
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    header, _, _, first, second = out.splitlines()[4:9]
    assert header.split()[-1] == "warned"
    assert not first.endswith("yes") and second.endswith("yes")
    assert "warned: the forget issued an UnlearningWarning" in out


def test_demo_records_unlearning_warnings_instead_of_printing_them(rng, monkeypatch):
    from sklunlearn.exceptions import UnlearningWarning

    class Warns:
        def fit(self, X, y):
            self.coef_ = np.zeros(X.shape[1])
            return self

        def partial_unfit(self, X, y):
            warnings.warn("suspect forget", UnlearningWarning, stacklevel=2)
            return self

        def predict(self, X):
            return X @ self.coef_

    X, y = rng.randn(30, 2), rng.randn(30)
    mask = np.arange(30) < 3
    monkeypatch.setattr(_demo, "posterior_kl", lambda a, b: 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped would raise here
        result = _demo.compare("m", "d", Warns, X, y, mask, "random")
    assert result.warnings == ("suspect forget",)


def test_load_banknote_as_frame_matches_the_arrays():
    pd = pytest.importorskip("pandas")
    X, y = load_banknote(return_X_y=True)
    bunch = load_banknote(as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and isinstance(bunch.target, pd.Series)
    assert list(bunch.data.columns) == bunch.feature_names
    assert list(bunch.frame.columns) == [*bunch.feature_names, "class"]
    np.testing.assert_array_equal(bunch.data.to_numpy(), X)
    np.testing.assert_array_equal(bunch.target.to_numpy(), y)
    X_frame, y_series = load_banknote(return_X_y=True, as_frame=True)
    assert X_frame.equals(bunch.data) and y_series.equals(bunch.target)
