"""Helpers shared by the command-line tests."""

from sklunlearn.cli import main


def refused(capsys, argv):
    """Run ``argv``: exit code 2 and one line on stderr; return that line."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err, err
    return err
