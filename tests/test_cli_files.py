"""What the command line writes: destinations, file modes, and the files it reads."""

import json
import os
import re
import stat
from pathlib import Path

import pytest
from _cli_helpers import refused

from sklunlearn import _demo
from sklunlearn._cli import _commands
from sklunlearn._cli._files import sha256
from sklunlearn.cli import main

pd = pytest.importorskip("pandas")
sio = pytest.importorskip("skops.io")

N_FORGET = 20


@pytest.fixture
def model(tmp_path, banknote):
    """The data file, the rows to forget, and a linear model fitted on the data."""
    data, rows = tmp_path / "data.csv", tmp_path / "rows.csv"
    banknote.to_csv(data, index=False)
    banknote.iloc[:N_FORGET].to_csv(rows, index=False)
    path = tmp_path / "model.skops"
    argv = ["fit", "BayesianLinearRegression", data, "--target", "class", "--output", path]
    assert main([str(a) for a in argv]) == 0
    return data, rows, path


def _listing(folder):
    """Names in ``folder`` with their SHA-256 (None for folders)."""
    return {path.name: None if path.is_dir() else sha256(path) for path in folder.iterdir()}


@pytest.mark.parametrize("command", ["fit", "forget output", "forget report"])
def test_a_destination_that_is_a_folder_is_refused_and_nothing_is_written(
    model, capsys, command
):
    data, rows, path = model
    folder = path.parent / "existing.skops"
    folder.mkdir()
    report, output = path.parent / "report.json", path.parent / "after.skops"
    if command == "fit":
        argv = ["fit", "BayesianLinearRegression", data, "--target", "class"]
        argv += ["--output", folder]
    elif command == "forget output":
        argv = ["forget", path, rows, "--target", "class", "--output", folder]
        argv += ["--report", report]
    else:
        argv = ["forget", path, rows, "--target", "class", "--output", output]
        argv += ["--report", folder]
    before = _listing(path.parent)
    assert "is a folder" in refused(capsys, argv)
    # No report, no model, no temporary file beside either.
    assert _listing(path.parent) == before


def _failing_replace(failing_name):
    """``os.replace`` that fails when moving onto a file called ``failing_name``."""
    replace = os.replace

    def fake(source, destination):
        if Path(destination).name == failing_name:
            raise PermissionError(13, "Permission denied", str(destination))
        replace(source, destination)

    return fake


def test_a_report_never_describes_a_model_that_was_not_written(model, capsys, monkeypatch):
    _, rows, path = model
    output, report = path.parent / "after.skops", path.parent / "report.json"
    monkeypatch.setattr(_commands.os, "replace", _failing_replace(output.name))
    before = _listing(path.parent)
    argv = ["forget", path, rows, "--target", "class", "--output", output]
    err = refused(capsys, [*argv, "--report", report])
    assert "Permission denied" in err and str(output) in err
    assert _listing(path.parent) == before


def test_a_report_that_cannot_be_written_is_an_error(model, capsys, monkeypatch):
    _, rows, path = model
    output, report = path.parent / "after.skops", path.parent / "report.json"
    monkeypatch.setattr(_commands.os, "replace", _failing_replace(report.name))
    argv = ["forget", path, rows, "--target", "class", "--output", output]
    err = refused(capsys, [*argv, "--report", report])
    # The model is saved; the message says so, and no temporary file is left.
    assert "Permission denied" in err and f"{output} was written" in err
    assert not report.exists() and output.exists()
    assert not [name for name in os.listdir(path.parent) if name.startswith(".")]


@pytest.fixture
def umask():
    """Set the process umask for one test; restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_new_files_get_the_mode_of_the_umask(model, umask, mask):
    data, rows, path = model
    umask(mask)
    fitted, after, report = (path.parent / n for n in ("f.joblib", "a.skops", "r.json"))
    argv = ["fit", "BayesianLinearRegression", data, "--target", "class"]
    assert main([str(a) for a in [*argv, "--output", fitted]]) == 0
    argv = ["forget", fitted, rows, "--target", "class", "--output", after]
    assert main([str(a) for a in [*argv, "--report", report]]) == 0
    expected = 0o666 & ~mask
    assert [_mode(p) for p in (fitted, after, report)] == [expected] * 3


def test_a_replaced_file_keeps_its_mode(model, umask):
    _, rows, path = model
    report = path.parent / "r.json"
    report.write_text("{}")
    path.chmod(0o640)
    report.chmod(0o604)
    umask(0o022)
    argv = ["forget", path, rows, "--target", "class", "--output", path]
    assert main([str(a) for a in [*argv, "--report", report]]) == 0
    assert json.loads(report.read_text())["n_rows"] == N_FORGET
    assert (_mode(path), _mode(report)) == (0o640, 0o604)


def test_audit_refuses_unseen_rows_the_model_learned(model, banknote, capsys):
    data, rows, _ = model
    argv = ["audit", "BayesianLinearRegression", data, "--target", "class"]
    argv += ["--forget", rows, "--quiet", "--unseen"]
    # The learned data itself, then unseen rows of which two were learned.
    err = refused(capsys, [*argv, data])
    assert f"{data}: 1372 of its 1372 rows were learned" in err
    mixed = data.parent / "mixed.csv"
    fresh = banknote.iloc[:5].assign(variance=lambda f: f["variance"] + 1000.0)
    pd.concat([fresh, banknote.iloc[[7, 600]]]).to_csv(mixed, index=False)
    err = refused(capsys, [*argv, mixed])
    assert (
        "2 of its 7 rows" in err
        and "(its rows 6, 7, counting from the first after its header)" in err
    )
    # Rows never learned pass, and the output says they were checked.
    fresh.to_csv(mixed, index=False)
    assert main([str(a) for a in [*argv, mixed]]) == 0
    assert "none of them learned" in capsys.readouterr().out


def test_audit_says_when_unseen_rows_could_not_be_checked(model, banknote, capsys):
    data, rows, _ = model
    unseen = data.parent / "unseen.csv"
    banknote.iloc[:5].assign(variance=lambda f: f["variance"] + 1000.0).to_csv(
        unseen, index=False
    )
    argv = ["audit", "BayesianLinearRegression", data, "--target", "class", "--quiet"]
    argv += ["--forget", rows, "--unseen", unseen, "--param", "ledger=False"]
    assert main([str(a) for a in argv]) == 0
    assert "could not be checked" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["fit", "forget", "audit"])
def test_a_file_without_rows_or_features_is_refused_by_name(
    model, banknote, capsys, command
):
    data, rows, path = model
    header_only, target_only = data.parent / "empty.csv", data.parent / "target.csv"
    banknote.iloc[:0].to_csv(header_only, index=False)
    banknote[["class"]].to_csv(target_only, index=False)
    for table, message in (
        (header_only, f"{header_only} has no rows"),
        (target_only, f"{target_only} has no feature columns besides the target 'class'"),
    ):
        if command == "fit":
            argv = ["fit", "BayesianLinearRegression", table, "--target", "class"]
            argv += ["--output", data.parent / "out.skops"]
        elif command == "forget":
            argv = ["forget", path, table, "--target", "class"]
            argv += ["--output", data.parent / "out.skops"]
        else:
            argv = ["audit", "BayesianLinearRegression", data, "--target", "class"]
            argv += ["--forget", table]
        assert message in refused(capsys, argv)
    assert not (data.parent / "out.skops").exists()


_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_the_documentation_counts_the_estimators_of_the_demo():
    text = (Path(__file__).parents[1] / "docs" / "command_line.md").read_text()
    match = re.search(r"`demo` runs .*?: (\w+) estimators", " ".join(text.split()))
    assert match is not None
    assert match.group(1) == _NUMBERS[len(_demo.SCENARIOS)]
