"""Command-line refusals: destinations that name an input, audits without rows to
retrain on or hold out, and plot files matplotlib cannot write as named."""

import os
import stat
from pathlib import Path

import pytest
from _cli_helpers import FORGET, refused, write_fitted_model

from sklunlearn import _demo
from sklunlearn._cli import _audit, _commands
from sklunlearn._cli._files import sha256
from sklunlearn.cli import main

pd = pytest.importorskip("pandas")
sio = pytest.importorskip("skops.io")

N_FORGET = 20
N_SMALL = 10


@pytest.fixture
def files(tmp_path, banknote, monkeypatch):
    """Data, rows to forget and a fitted model in the working directory, by name."""
    monkeypatch.chdir(tmp_path)
    write_fitted_model(banknote, n_request=N_FORGET)
    return tmp_path


def _listing(folder):
    """Names in ``folder`` with their SHA-256 (the target's, for a symlink)."""
    return {path.name: sha256(path) for path in folder.iterdir()}


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("work started before the destinations were checked")


AUDIT = ["audit", "BayesianLinearRegression", "data.csv", "--target", "class"]
AUDIT += ["--forget", "rows.csv", "--quiet"]

# (argv, link to make first as (name, target) or None, the two arguments named).
CLOBBERS = {
    "forget report over model": (
        [*FORGET, "--output", "out.skops", "--report", "model.skops"],
        None,
        ("--report", "MODEL"),
    ),
    "forget report over model as ./": (
        [*FORGET, "--output", "out.skops", "--report", "./model.skops"],
        None,
        ("--report", "MODEL"),
    ),
    "forget report over rows through ..": (
        [*FORGET, "--output", "out.skops", "--report", "../{folder}/rows.csv"],
        None,
        ("--report", "ROWS"),
    ),
    "forget report over model through a symlink": (
        [*FORGET, "--output", "out.skops", "--report", "link.json"],
        ("link.json", "model.skops"),
        ("--report", "MODEL"),
    ),
    "forget output over rows through a symlink": (
        [*FORGET, "--output", "link.skops"],
        ("link.skops", "rows.csv"),
        ("--output", "ROWS"),
    ),
    "forget report over output through a symlink": (
        [*FORGET, "--output", "out.skops", "--report", "link.json"],
        ("link.json", "out.skops"),
        ("--report", "--output"),
    ),
    "fit output over data through a symlink": (
        ["fit", "BayesianLinearRegression", "data.csv", "--target", "class"]
        + ["--output", "link.skops"],
        ("link.skops", "data.csv"),
        ("--output", "DATA"),
    ),
    "audit plot over data through a symlink": (
        [*AUDIT, "--plot", "link.png"],
        ("link.png", "data.csv"),
        ("--plot", "DATA"),
    ),
    "audit plot over forget": (
        [*AUDIT, "--plot", "./rows.csv"],
        None,
        ("--plot", "--forget"),
    ),
    "audit plot over unseen through a symlink": (
        [*AUDIT, "--unseen", "unseen.csv", "--plot", "link.svg"],
        ("link.svg", "unseen.csv"),
        ("--plot", "--unseen"),
    ),
}


@pytest.mark.parametrize("case", list(CLOBBERS))
def test_a_destination_that_is_an_input_or_another_destination_isrefused(
    files, banknote, capsys, monkeypatch, case
):
    argv, link, (written, read) = CLOBBERS[case]
    argv = [arg.format(folder=files.name) for arg in argv]
    banknote.iloc[-5:].assign(variance=lambda f: f["variance"] + 1000.0).to_csv(
        "unseen.csv", index=False
    )
    # The output of the case "report over output" exists: a forget replaces it.
    (files / "out.skops").write_bytes((files / "model.skops").read_bytes())
    if link is not None:
        os.symlink(link[1], link[0])
    for module, name in ((_commands, "load_model"), (_commands, "read_table")):
        monkeypatch.setattr(module, name, _refuse_to_run)
    monkeypatch.setattr(_audit, "audit", _refuse_to_run)
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    before = _listing(files)
    err = refused(capsys, argv)
    assert f"{written} and {read} name the same file" in err
    assert _listing(files) == before


def test_an_in_place_forget_keeps_working_and_keeps_the_mode(files):
    path = files / "model.skops"
    path.chmod(0o600)
    before = sha256(path)
    argv = [*FORGET, "--output", "./model.skops", "--report", "report.json", "--quiet"]
    assert main(argv) == 0
    assert sha256(path) != before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sio.load(path, trusted=sio.get_untrusted_types(file=path)).n_samples_seen_ == (
        1372 - N_FORGET
    )


@pytest.mark.parametrize(
    "n_forget, unseen, needed",
    [(N_SMALL, False, 2), (N_SMALL - 1, False, 2), (N_SMALL, True, 1)],
)
def test_an_audit_without_rows_to_retrain_on_or_hold_out_says_what_it_needs(
    files, banknote, capsys, n_forget, unseen, needed
):
    banknote.iloc[:N_SMALL].to_csv("small.csv", index=False)
    banknote.iloc[:n_forget].to_csv("gone.csv", index=False)
    argv = ["audit", "BayesianLinearRegression", "small.csv", "--target", "class"]
    argv += ["--forget", "gone.csv", "--quiet"]
    if unseen:
        banknote.iloc[-5:].to_csv("unseen.csv", index=False)
        argv += ["--unseen", "unseen.csv"]
    err = refused(capsys, argv)
    assert f"gone.csv holds {n_forget} of the {N_SMALL} rows of small.csv" in err
    assert f"the audit needs at least {needed} rows of DATA not in --forget" in err


def test_an_audit_with_two_rows_kept_runs(files, banknote, capsys):
    banknote.iloc[:N_SMALL].to_csv("small.csv", index=False)
    banknote.iloc[: N_SMALL - 2].to_csv("gone.csv", index=False)
    argv = ["audit", "BayesianLinearRegression", "small.csv", "--target", "class"]
    assert main([*argv, "--forget", "gone.csv", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"learned {N_SMALL - 1} rows, forgot {N_SMALL - 2}" in out
    assert "1 unseen rows" in out


@pytest.mark.parametrize("command", ["audit", "demo"])
@pytest.mark.parametrize("name", ["auc.xyz", "aucplot", "auc."])
def test_a_plot_file_matplotlib_cannot_write_as_named_is_refused_before_any_work(
    files, capsys, monkeypatch, command, name
):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(_demo, "run_demo", _refuse_to_run)
    monkeypatch.setattr(_audit, "audit", _refuse_to_run)
    argv = AUDIT if command == "audit" else ["demo", "--quiet"]
    before = _listing(files)
    err = refused(capsys, [*argv, "--plot", name])
    assert "a plot file ends with" in err and ".png" in err and ".svg" in err
    assert _listing(files) == before


@pytest.mark.parametrize("name", ["auc.svg", "AUC.PNG"])
def test_the_plot_is_written_to_the_file_named(files, capsys, name):
    pytest.importorskip("matplotlib")
    before = set(_listing(files))
    assert main([*AUDIT, "--plot", name]) == 0
    assert f"plot written to {name}" in capsys.readouterr().out
    assert set(_listing(files)) - before == {name}


def test_a_report_that_is_a_hard_link_to_the_rows_isrefused(files, capsys, monkeypatch):
    os.link("rows.csv", "report.json")
    monkeypatch.setattr(_commands, "load_model", _refuse_to_run)
    before = _listing(files)
    err = refused(capsys, [*FORGET, "--output", "out.skops", "--report", "report.json"])
    assert "--report and ROWS name the same file" in err
    assert _listing(files) == before


def test_a_plot_that_fails_to_write_leaves_the_old_file_whole(files, capsys, monkeypatch):
    """A figure is written beside its destination and renamed onto it: a failure
    mid-write (a full disk, a killed process) leaves the previous plot intact."""
    matplotlib_figure = pytest.importorskip("matplotlib.figure")
    Path("auc.png").write_bytes(b"the previous plot")

    def broken_savefig(self, fname, **kwargs):
        Path(fname).write_bytes(b"half a pl")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib_figure.Figure, "savefig", broken_savefig)
    before = _listing(files)
    err = refused(capsys, [*AUDIT, "--plot", "auc.png"])
    assert "cannot write auc.png: No space left on device" in err
    assert Path("auc.png").read_bytes() == b"the previous plot"
    assert _listing(files) == before
