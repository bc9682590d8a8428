"""Helpers shared by the command-line tests."""

from sklunlearn.cli import main

FORGET = ["forget", "model.skops", "rows.csv", "--target", "class"]
# Seconds a subprocess may take before a test gives up on it.
PATIENCE = 300


def write_fitted_model(banknote, n_rows=None, n_request=10):
    """Write ``data.csv`` (the first ``n_rows`` rows, all when None), ``rows.csv`` (the
    first ``n_request``) and ``model.skops``, a linear model fitted on ``data.csv``, in
    the working directory."""
    data = banknote if n_rows is None else banknote.iloc[:n_rows]
    data.to_csv("data.csv", index=False)
    banknote.iloc[:n_request].to_csv("rows.csv", index=False)
    argv = ["fit", "BayesianLinearRegression", "data.csv", "--target", "class"]
    assert main([*argv, "--output", "model.skops", "--quiet"]) == 0


def refused(capsys, argv):
    """Run ``argv``: exit code 2 and one line on stderr; return that line."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err, err
    return err
