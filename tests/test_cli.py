"""The command line on the bundled banknote data, in a temporary directory."""

import io
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from sklunlearn import _demo
from sklunlearn._cli import _audit, _progress
from sklunlearn._cli._files import sha256
from sklunlearn._cli._progress import Progress
from sklunlearn.cli import main
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

pd = pytest.importorskip("pandas")
sio = pytest.importorskip("skops.io")

N_FORGET = 30


class Stranger:
    """A class from outside the package: its model files must not load."""


@pytest.fixture
def files(tmp_path, banknote):
    """The data, the rows to forget (columns shuffled), and a fitted model file."""
    data, rows = tmp_path / "banknote.csv", tmp_path / "forget.csv"
    banknote.to_csv(data, index=False)
    # Columns in another order: the model matches them by name.
    banknote.iloc[:N_FORGET, ::-1].to_csv(rows, index=False)
    model = tmp_path / "model.skops"
    assert main(["fit", "BayesianLogisticRegression", str(data), "--target", "class",
                 "--output", str(model)]) == 0  # fmt: skip
    return tmp_path, data, rows, model


def _refused(capsys, argv, *absent):
    """Run ``argv``; check exit code 2, one line on stderr, and no file written."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err, err
    for path in absent:
        assert not path.exists()
    return err


def test_fit_matches_fitting_in_python(files, banknote):
    tmp_path, data, _, _ = files
    model = tmp_path / "linear.skops"
    settings = ["--param", "alpha_init=0.5", "--param", "fit_intercept=False"]
    argv = ["fit", "BayesianLinearRegression", data, "--target", "class", *settings]
    argv += ["--output", model]
    assert main([str(a) for a in argv]) == 0
    loaded = sio.load(model, trusted=sio.get_untrusted_types(file=model))
    X, y = banknote.drop(columns="class"), banknote["class"]
    expected = BayesianLinearRegression(alpha_init=0.5, fit_intercept=False).fit(X, y)
    assert loaded.alpha_init == 0.5 and loaded.fit_intercept is False
    np.testing.assert_allclose(loaded.coef_, expected.coef_, rtol=1e-12)
    assert list(loaded.feature_names_in_) == list(X.columns)


def test_forget_equals_partial_unfit_and_report_hashes_match(files, banknote):
    tmp_path, _, rows, model = files
    after, report = tmp_path / "after.skops", tmp_path / "report.json"
    hash_before = sha256(model)
    argv = [
        "forget",
        model,
        rows,
        "--target",
        "class",
        "--output",
        after,
        "--report",
        report,
    ]
    assert main([str(a) for a in argv]) == 0
    X, y = banknote.drop(columns="class"), banknote["class"]
    expected = (
        BayesianLogisticRegression().fit(X, y).partial_unfit(X[:N_FORGET], y[:N_FORGET])
    )
    forgotten = sio.load(after, trusted=sio.get_untrusted_types(file=after))
    np.testing.assert_allclose(forgotten.coef_, expected.coef_, rtol=1e-10)
    assert forgotten.n_samples_seen_ == len(X) - N_FORGET
    record = json.loads(report.read_text())
    assert record["model_before"]["sha256"] == hash_before == sha256(model)
    assert record["model_after"]["sha256"] == sha256(after) != hash_before
    assert record["n_rows"] == N_FORGET and record["weight"] == N_FORGET
    assert record["forget_report"]["method"] == expected.forget_report_.method


def test_fit_forget_forget_inspect_round_trip(files, capsys):
    tmp_path, _, rows, model = files
    report = tmp_path / "report.json"
    argv = [
        "forget",
        model,
        rows,
        "--target",
        "class",
        "--output",
        model,
        "--report",
        report,
    ]
    assert main([str(a) for a in argv]) == 0
    forgotten_hash, report_text = sha256(model), report.read_text()
    # The same rows again: the ledger refuses, and neither file changes.
    err = _refused(capsys, argv)
    assert "never learned or already forgotten" in err
    assert sha256(model) == forgotten_hash and report.read_text() == report_text
    assert main(["inspect", str(model), "--json"]) == 0
    description = json.loads(capsys.readouterr().out)
    assert description["n_samples_seen"] == 1372 - N_FORGET
    assert description["ledger"]["rows"] == 1372 - N_FORGET
    assert description["last_forget_report"]["n_rows"] == N_FORGET
    assert description["feature_names"] == ["variance", "skewness", "curtosis", "entropy"]
    loaded = sio.load(model, trusted=sio.get_untrusted_types(file=model))
    certificate = getattr(loaded, "certificate_", None)
    if certificate is not None:
        certificate = json.loads(json.dumps(certificate.to_dict()))
    assert description["certificate"] == certificate


def test_refusals_write_nothing(files, banknote, capsys):
    tmp_path, data, rows, model = files
    out, report = tmp_path / "out.skops", tmp_path / "report.json"
    fit = ["fit", "BayesianLogisticRegression"]
    forget = ["forget", model]
    never_learned = tmp_path / "never.csv"
    shifted = banknote.iloc[:3].copy()
    shifted["variance"] += 1000.0
    shifted.to_csv(never_learned, index=False)
    assert "never learned" in _refused(
        capsys, [*forget, never_learned, "--target", "class", "--output", out,
                 "--report", report], out, report)  # fmt: skip
    assert "no column 'label'" in _refused(
        capsys, [*fit, data, "--target", "label", "--output", out], out
    )
    with_nan = tmp_path / "nan.csv"
    broken = banknote.copy()
    broken.loc[5, "skewness"] = np.nan
    broken.to_csv(with_nan, index=False)
    assert "NaN" in _refused(
        capsys, [*fit, with_nan, "--target", "class", "--output", out], out
    )
    assert "NaN" in _refused(
        capsys, [*forget, with_nan, "--target", "class", "--output", out], out
    )
    wrong_columns = tmp_path / "wrong.csv"
    banknote.rename(columns={"entropy": "other"}).iloc[:3].to_csv(
        wrong_columns, index=False
    )
    assert "missing: entropy" in _refused(
        capsys, [*forget, wrong_columns, "--target", "class", "--output", out], out
    )
    assert "no such file" in _refused(
        capsys, [*fit, tmp_path / "absent.csv", "--target", "class", "--output", out], out
    )
    assert "unknown estimator" in _refused(
        capsys, ["fit", "Ridge", data, "--target", "class", "--output", out], out
    )
    assert "alpha" in _refused(
        capsys,
        [*fit, data, "--target", "class", "--param", "alpha=-1", "--output", out],
        out,
    )


def test_a_model_file_that_is_not_ours_is_refused(files, capsys):
    tmp_path, data, rows, _ = files
    out = tmp_path / "out.skops"
    not_a_model = tmp_path / "text.skops"
    not_a_model.write_text("hello")
    assert "not a skops model file" in _refused(capsys, ["inspect", not_a_model])
    from sklearn.linear_model import Ridge

    foreign = tmp_path / "ridge.skops"
    sio.dump(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), foreign)
    assert "holds a Ridge, not a sklunlearn estimator" in _refused(
        capsys, ["forget", foreign, rows, "--target", "class", "--output", out], out
    )
    stranger = tmp_path / "stranger.skops"
    sio.dump(Stranger(), stranger)
    assert "refused to load types from outside sklunlearn" in _refused(
        capsys, ["inspect", stranger]
    )


def test_pickle_files_keep_working(files, capsys):
    tmp_path, data, rows, _ = files
    model, after = tmp_path / "model.joblib", tmp_path / "after.pkl"
    assert main(["fit", "BayesianLinearRegression", str(data), "--target", "class",
                 "--output", str(model)]) == 0  # fmt: skip
    argv = ["forget", model, rows, "--target", "class", "--output", after]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    assert main(["inspect", str(after), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples_seen"] == 1372 - N_FORGET


@pytest.mark.parametrize(
    "estimator, params",
    [
        ("BayesianLinearRegression", {}),
        ("SparseGPRegressor", {"inducing_points": 10, "random_state": 0}),
        ("SparseGPClassifier", {"inducing_points": 10, "random_state": 0}),
    ],
)
def test_every_estimator_round_trips_through_skops(files, banknote, estimator, params):
    tmp_path, data, rows, _ = files
    model, after = tmp_path / "m.skops", tmp_path / "after.skops"
    settings = [f"--param={name}={value}" for name, value in params.items()]
    argv = ["fit", estimator, data, "--target", "class", *settings, "--output", model]
    assert main([str(a) for a in argv]) == 0
    argv = ["forget", model, rows, "--target", "class", "--output", after]
    assert main([str(a) for a in argv]) == 0
    loaded = sio.load(after, trusted=sio.get_untrusted_types(file=after))
    assert loaded.n_samples_seen_ == 1372 - N_FORGET
    assert loaded.forget_report_.n_rows == N_FORGET
    X, y = banknote.drop(columns="class"), banknote["class"]
    expected = type(loaded)(**params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        expected.partial_unfit(X[:N_FORGET], y[:N_FORGET])
    np.testing.assert_allclose(
        loaded.predict(X), expected.predict(X), rtol=1e-8, atol=1e-10
    )
    # The loaded ledger still refuses what it no longer holds.
    with pytest.raises(ValueError, match="never learned or already forgotten"):
        loaded.partial_unfit(X[:1], y[:1])


def test_python_dash_m_inspect(files):
    _, _, _, model = files
    out = subprocess.run(
        [sys.executable, "-m", "sklunlearn", "inspect", str(model)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "BayesianLogisticRegression" in out.stdout
    assert "n_samples_seen 1372" in out.stdout


def test_a_reader_that_leaves_early_ends_inspect_quietly(files):
    _, _, _, model = files
    # Close the reading end before the command writes: every write hits a closed pipe.
    process = subprocess.Popen(
        [sys.executable, "-m", "sklunlearn", "inspect", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 1
    assert err == ""  # no BrokenPipeError traceback


def _figures(out, label):
    """The two numbers after ``label`` on the audit's KL line."""
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    return [float(word) for word in line.replace(",", "").split() if word[0].isdigit()]


def test_audit_exact_forgetting_matches_retraining(files, banknote, capsys):
    tmp_path, data, rows, _ = files
    unseen = tmp_path / "unseen.csv"
    banknote.iloc[-200:].to_csv(unseen, index=False)
    learned = tmp_path / "learned.csv"
    banknote.iloc[:-200].to_csv(learned, index=False)
    argv = ["audit", "BayesianLinearRegression", learned, "--target", "class"]
    argv += ["--forget", rows, "--unseen", unseen]
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    forgotten, not_forgotten = _figures(out, "forgotten vs"), _figures(out, "not forgotten")
    assert max(forgotten) < 1e-10 < min(not_forgotten)
    # A retrained model in Python gives the AUC the audit prints for "retrained".
    from sklunlearn.metrics import membership_inference_auc

    X, y = banknote.drop(columns="class"), banknote["class"]
    retrained = BayesianLinearRegression().fit(X[N_FORGET:-200], y[N_FORGET:-200])
    auc = membership_inference_auc(
        retrained, X[:N_FORGET], y[:N_FORGET], X[-200:], y[-200:]
    )
    assert f"retrained {auc:.3f}" in out


def test_audit_refusals(files, banknote, capsys, monkeypatch):
    tmp_path, data, _, _ = files
    foreign = tmp_path / "foreign.csv"
    shifted = banknote.iloc[:2].copy()
    shifted["entropy"] += 100.0
    shifted.to_csv(foreign, index=False)
    argv = ["audit", "BayesianLinearRegression", data, "--target", "class", "--forget"]
    assert "not a row of the data" in _refused(capsys, [*argv, foreign])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    plot = tmp_path / "audit.png"
    assert "matplotlib" in _refused(capsys, [*argv, foreign, "--plot", plot], plot)


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_shows_on_a_terminal_and_is_erased():
    stream = _Terminal()
    with Progress("fitting X on 5 rows", stream=stream, delay=0.0, interval=0.01):
        time.sleep(0.2)
    written = stream.getvalue()
    assert "fitting X on 5 rows" in written and written.count("\r") >= 3
    # The last write blanks the line and returns to its start.
    assert written.endswith("\r") and written.rsplit("\r", 2)[1].strip() == ""


@pytest.mark.parametrize(
    "stream, quiet, delay",
    [(io.StringIO(), False, 0.0), (_Terminal(), True, 0.0), (_Terminal(), False, 30.0)],
    ids=["not a terminal", "quiet", "short work"],
)
def test_progress_is_silent(stream, quiet, delay):
    with Progress("fitting", stream=stream, quiet=quiet, delay=delay, interval=0.01):
        time.sleep(0.05)
    assert stream.getvalue() == ""


def test_fit_shows_progress_on_a_terminal_unless_quiet(files, monkeypatch):
    tmp_path, data, _, _ = files
    monkeypatch.setattr(_progress, "DELAY_SECONDS", 0.0)
    monkeypatch.setattr(_progress, "INTERVAL_SECONDS", 0.001)
    argv = ["fit", "BayesianLogisticRegression", str(data), "--target", "class"]
    for quiet in ([], ["--quiet"]):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert main([*argv, "--output", str(tmp_path / "m.skops"), *quiet]) == 0
        shown = "fitting BayesianLogisticRegression on 1372 rows" in terminal.getvalue()
        assert shown is not bool(quiet)


def test_usage_errors_are_one_line(capsys):
    for argv in (["fit"], ["forget", "m.skops"], ["demo", "--seed", "x"], ["nope"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err, err


def test_audit_refuses_unseen_rows_it_cannot_use(files, banknote, capsys):
    tmp_path, data, rows, _ = files
    argv = ["audit", "BayesianLogisticRegression", data, "--target", "class"]
    argv += ["--forget", rows, "--unseen"]
    other_columns = tmp_path / "other.csv"
    banknote.drop(columns="entropy").iloc[:20].to_csv(other_columns, index=False)
    assert "columns differ" in _refused(capsys, [*argv, other_columns])
    unknown_class = tmp_path / "unknown.csv"
    banknote.iloc[:20].assign(**{"class": 7}).to_csv(unknown_class, index=False)
    assert "labels" in _refused(capsys, [*argv, unknown_class])


@pytest.mark.parametrize("command", ["audit", "demo"])
def test_plot_into_a_missing_folder_is_refused_before_any_work(
    files, capsys, monkeypatch, command
):
    tmp_path, data, rows, _ = files
    monkeypatch.setattr(_demo, "run_demo", _refuse_to_run)
    monkeypatch.setattr(_audit, "audit", _refuse_to_run)
    plot = tmp_path / "absent" / "plot.png"
    argv = ["demo"]
    if command == "audit":
        argv = ["audit", "BayesianLinearRegression", data, "--target", "class"]
        argv += ["--forget", rows]
    assert "does not exist" in _refused(capsys, [*argv, "--plot", plot], plot)


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


def test_fit_prints_each_warning_on_one_line(files, capsys):
    tmp_path, data, _, _ = files
    model = tmp_path / "m.skops"
    argv = ["fit", "BayesianLogisticRegression", data, "--target", "class"]
    assert main([str(a) for a in [*argv, "--param", "max_iter=1", "--output", model]]) == 0
    err = capsys.readouterr().err
    assert (
        err.startswith("warning: Newton fitting did not converge") and err.count("\n") == 1
    )
    assert model.exists()


def test_the_network_regressor_round_trips(files, banknote, capsys):
    pytest.importorskip("sklunlearn.neural_network")
    tmp_path, data, rows, _ = files
    model, after = tmp_path / "mlp.skops", tmp_path / "after.skops"
    params = {"hidden_layer_sizes": (3,), "max_iter": 30, "random_state": 0}
    settings = [f"--param={name}={value}" for name, value in params.items()]
    argv = ["fit", "BayesianMLPRegressor", data, "--target", "class", *settings]
    assert main([str(a) for a in [*argv, "--output", model]]) == 0
    argv = ["forget", model, rows, "--target", "class", "--output", after]
    assert main([str(a) for a in argv]) == 0
    loaded = sio.load(after, trusted=sio.get_untrusted_types(file=after))
    assert loaded.n_samples_seen_ == 1372 - N_FORGET
    X, y = banknote.drop(columns="class"), banknote["class"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = (
            type(loaded)(**params).fit(X, y).partial_unfit(X[:N_FORGET], y[:N_FORGET])
        )
    np.testing.assert_allclose(
        loaded.predict(X), expected.predict(X), rtol=1e-8, atol=1e-10
    )


def test_an_estimator_missing_from_the_installation_is_refused(files, capsys, monkeypatch):
    from sklunlearn._cli import _files

    monkeypatch.setitem(_files.ESTIMATORS, "Absent", "sklunlearn.no_such_module")
    tmp_path, data, _, _ = files
    out = tmp_path / "out.skops"
    argv = ["fit", "Absent", data, "--target", "class", "--output", out]
    assert "not available in this installation" in _refused(capsys, argv, out)


def test_audit_takes_string_labels_and_matches_rows_with_their_label(
    files, banknote, capsys
):
    tmp_path, _, _, _ = files
    named = banknote.assign(
        **{"class": np.where(banknote["class"] == 1, "forged", "genuine")}
    )
    data, rows, relabelled = (tmp_path / name for name in ("s.csv", "f.csv", "r.csv"))
    named.to_csv(data, index=False)
    named.iloc[:N_FORGET].to_csv(rows, index=False)
    argv = ["audit", "BayesianLogisticRegression", data, "--target", "class", "--forget"]
    assert main([str(a) for a in [*argv, rows]]) == 0
    assert "forgotten vs" in capsys.readouterr().out
    # The same features with the other label are not a learned row.
    flipped = named.iloc[:1].assign(**{"class": lambda f: f["class"].map(
        {"forged": "genuine", "genuine": "forged"})})  # fmt: skip
    flipped.to_csv(relabelled, index=False)
    assert "not a row of the data" in _refused(capsys, [*argv, relabelled])


def test_audit_of_the_sparse_gp_classifier_retrains_at_its_learned_kernel(files, capsys):
    tmp_path, data, rows, _ = files
    argv = ["audit", "SparseGPClassifier", data, "--target", "class", "--forget", rows]
    argv += ["--param", "inducing_points=20", "--param", "random_state=0"]
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "forgotten vs retrained" in out and "not forgotten vs retrained" in out
