"""Defects of the command line left by an earlier round: read-only destinations, two
commands creating one new file, and Ctrl-C while the package is imported."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _cli_helpers import FORGET, PATIENCE, refused, write_fitted_model

import sklunlearn
from sklunlearn._cli import _commands, _files
from sklunlearn._cli._files import sha256
from sklunlearn.cli import main

pd = pytest.importorskip("pandas")
pytest.importorskip("skops.io")

N_ROWS = 500
N_REQUEST = 10


@pytest.fixture
def files(tmp_path, banknote, monkeypatch):
    """Data, rows to forget and a fitted linear model in the working directory."""
    monkeypatch.chdir(tmp_path)
    write_fitted_model(banknote, N_ROWS, N_REQUEST)
    return tmp_path


def _hidden(folder):
    """Names in ``folder`` starting with a dot: temporary files left behind."""
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


def _environment():
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# 1. A read-only destination is not replaced.


def test_a_read_only_model_is_not_forgotten_in_place(files, capsys, monkeypatch):
    os.chmod("model.skops", 0o444)
    before = sha256("model.skops")
    monkeypatch.setattr(_commands, "load_model", _refuse_to_run)
    monkeypatch.setattr(_commands, "read_table", _refuse_to_run)
    argv = [*FORGET, "--output", "model.skops", "--report", "r.json"]
    err = refused(capsys, argv)
    assert "model.skops: is read-only (mode 0444)" in err and "--output" in err
    assert sha256("model.skops") == before and _mode("model.skops") == 0o444
    assert not Path("r.json").exists() and _hidden(files) == []


def test_a_read_only_model_is_forgotten_into_another_output(files):
    """The input is only read: a distinct --output is the explicit way to forget."""
    os.chmod("model.skops", 0o444)
    before = sha256("model.skops")
    assert main([*FORGET, "--output", "out.skops", "--quiet"]) == 0
    assert sha256("model.skops") == before and Path("out.skops").exists()


@pytest.mark.parametrize("option", ["--output", "--report", "symlinked --output"])
def test_a_read_only_destination_is_refused_before_any_work(
    files, capsys, monkeypatch, option
):
    target = "old.json" if option == "--report" else "old.skops"
    Path(target).write_text("an earlier file")
    os.chmod(target, 0o444)
    name = target
    if option.startswith("symlinked"):
        name = "link.skops"
        os.symlink(target, name)
        option = option.split()[-1]
    monkeypatch.setattr(_commands, "load_model", _refuse_to_run)
    monkeypatch.setattr(_commands, "read_table", _refuse_to_run)
    argv = [*FORGET, "--output", "out.skops"] if option == "--report" else FORGET
    err = refused(capsys, [*argv, option, name])
    assert f"{name}: is read-only (mode 0444)" in err and f"another {option}" in err
    assert Path(target).read_text() == "an earlier file" and _mode(target) == 0o444
    assert not Path("out.skops").exists() and _hidden(files) == []


def test_fit_does_not_replace_a_read_only_model(files, capsys, monkeypatch):
    os.chmod("model.skops", 0o444)
    before = sha256("model.skops")
    monkeypatch.setattr(_commands, "read_table", _refuse_to_run)
    argv = ["fit", "BayesianLinearRegression", "data.csv", "--target", "class"]
    err = refused(capsys, [*argv, "--output", "model.skops"])
    assert "model.skops: is read-only (mode 0444)" in err
    assert sha256("model.skops") == before


# 2. Two commands creating one new file take turns.


def _is_locked(path):
    """Whether another descriptor holds the ``flock`` of ``path`` (this process's too:
    the lock belongs to the descriptor)."""
    import fcntl

    handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(handle)


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_a_new_destination_is_locked_through_its_folder_around_the_renames(files):
    pytest.importorskip("fcntl")
    with _files.locked(["model.skops", "new.skops", None]) as locks:
        assert _is_locked("model.skops") and not _is_locked(files)
        with locks.renaming() as unchanged:
            assert unchanged and _is_locked(files)
        assert not _is_locked(files)
    assert not _is_locked(files) and not _is_locked("model.skops")
    with _files.locked(["model.skops"]) as locks:  # an existing file is locked itself
        with locks.renaming():
            assert not _is_locked(files)


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_a_new_destination_created_meanwhile_is_seen_under_the_folder_lock(files):
    pytest.importorskip("fcntl")
    with _files.locked(["model.skops", "new.skops"]) as locks:
        Path("new.skops").write_text("written by another command")
        with locks.renaming() as unchanged:
            assert not unchanged
    # Next time it is locked as the file it now is.
    with _files.locked(["model.skops", "new.skops"]) as locks:
        assert _is_locked("new.skops")
        with locks.renaming() as unchanged:
            assert unchanged and not _is_locked(files)


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_a_forget_creating_a_report_locks_its_folder_only_to_rename(files, monkeypatch):
    """The model is locked from loading to the rename; the folder of the new report
    only around the renames, so forgets of other models there do not wait for it."""
    pytest.importorskip("fcntl")
    seen = []

    def checking(name, function):
        def check(*args, **kwargs):
            seen.append((name, _is_locked("model.skops"), _is_locked(files)))
            return function(*args, **kwargs)

        return check

    for name in ("load_model", "read_table", "_forget_rows"):
        monkeypatch.setattr(_commands, name, checking(name, getattr(_commands, name)))
    monkeypatch.setattr(
        _commands._Staged, "commit", checking("commit", _commands._Staged.commit)
    )
    argv = [*FORGET, "--output", "model.skops", "--report", "request-0001.json"]
    assert main([*argv, "--quiet"]) == 0
    assert seen == [
        ("load_model", True, False),
        ("read_table", True, False),
        ("_forget_rows", True, False),
        ("commit", True, True),
    ]
    assert Path("request-0001.json").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_a_forget_does_not_wait_for_a_held_folder_lock_to_load_and_forget(
    files, monkeypatch
):
    """Another holder of the folder's lock (a forget of another model renaming its
    report, or the stand-in here) delays only this forget's renames: the model is
    loaded and forgotten while it is held, and the holder lets go once it is. A
    forget that waited for the folder first would find it released by the watchdog
    only, after PATIENCE seconds, and fail the assertion."""
    fcntl = pytest.importorskip("fcntl")
    holder = os.open(files, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    released, guard = [], threading.Lock()

    def release():
        with guard:
            if not released:
                os.close(holder)
                released.append(threading.current_thread() is watchdog)

    watchdog = threading.Timer(PATIENCE, release)
    watchdog.start()
    forget_rows, held = _commands._forget_rows, []

    def forget_then_release(*args, **kwargs):
        forget_rows(*args, **kwargs)
        held.append(not released)
        release()

    monkeypatch.setattr(_commands, "_forget_rows", forget_then_release)
    try:
        argv = [*FORGET, "--output", "model.skops", "--report", "request-0002.json"]
        assert main([*argv, "--quiet"]) == 0
    finally:
        watchdog.cancel()
        release()
    assert held == [True] and released == [False]
    assert json.loads(Path("request-0002.json").read_text())["n_rows"] == N_REQUEST


def test_a_new_output_created_during_the_forget_is_replaced_and_said(
    files, capsys, monkeypatch
):
    """Another command creates the new --output while the rows are forgotten: the
    forget then replaces that file as an existing one (without forgetting again)."""
    forget_rows, calls = _commands._forget_rows, []

    def forget_while_another_writes(*args, **kwargs):
        calls.append(1)
        forget_rows(*args, **kwargs)
        Path("new.skops").write_bytes(Path("model.skops").read_bytes())

    monkeypatch.setattr(_commands, "_forget_rows", forget_while_another_writes)
    other = sha256("model.skops")
    capsys.readouterr()
    assert main([*FORGET, "--output", "new.skops", "--report", "r.json"]) == 0
    assert "replacing the file there" in capsys.readouterr().out
    record = json.loads(Path("r.json").read_text())
    assert record["output_replaced"] == {"path": "new.skops", "sha256": other}
    assert record["model_after"]["sha256"] == sha256("new.skops") != other
    assert calls == [1] and _hidden(files) == []


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_an_output_hard_linked_to_the_model_is_locked_once(files):
    """Two paths of one file: a second lock of it would wait for the first forever."""
    os.link("model.skops", "link.skops")
    argv = [sys.executable, "-m", "sklunlearn", *FORGET, "--output", "link.skops"]
    done = subprocess.run(
        [*argv, "--report", "r.json", "--quiet"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(Path("r.json").read_text())
    assert record["model_after"]["sha256"] == sha256("link.skops")


# Two forgets into one new --output from two model files (which do not make them take
# turns). Each waits, once it has checked its destinations and loaded its model, until
# the other is at the same point (nothing serialised them) or waits for the lock of the
# folder of the new file (they take turns).
TAKING_TURNS = """
import os, sys, time
from pathlib import Path

import skops.io, sklunlearn.base, sklunlearn.linear_model  # before the start: both
from sklunlearn._cli import _commands, _files             # start at once
from sklunlearn.cli import main

me, other = sys.argv[1], sys.argv[2]
read_table, lock = _commands.read_table, _files._lock

def lock_and_say(target):
    if os.path.isdir(target):
        Path(f"waiting-{me}").touch()
    return lock(target)

def meet_the_other(*args, **kwargs):
    Path(f"inside-{me}").touch()
    while not any(Path(f"{state}-{other}").exists() for state in ("inside", "waiting")):
        time.sleep(0.01)
    return read_table(*args, **kwargs)

_files._lock = lock_and_say
_commands.read_table = meet_the_other
Path(f"ready-{me}").touch()
while not Path("go").exists():
    time.sleep(0.01)
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="commands take turns on POSIX only")
def test_two_forgets_creating_one_output_take_turns(files, banknote):
    Path("runner.py").write_text(TAKING_TURNS)
    shutil.copy("model.skops", "copy.skops")
    banknote.iloc[N_REQUEST : 2 * N_REQUEST].to_csv("rows1.csv", index=False)
    commands = [("model.skops", "rows.csv"), ("copy.skops", "rows1.csv")]
    processes = [
        subprocess.Popen(
            [sys.executable, "runner.py", str(i), str(1 - i), "forget", model, rows]
            + ["--target", "class", "--output", "new.skops", "--report", f"r{i}.json"]
            + ["--quiet"],
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, (model, rows) in enumerate(commands)
    ]
    try:
        deadline = time.monotonic() + PATIENCE
        while not all(Path(f"ready-{i}").exists() for i in range(2)):
            assert time.monotonic() < deadline, "the forgets did not start"
            time.sleep(0.05)
        Path("go").touch()
        results = [process.communicate(timeout=PATIENCE) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    reports = [json.loads(Path(f"r{i}.json").read_text()) for i in range(2)]
    final = sha256("new.skops")
    [last] = [i for i in range(2) if reports[i]["model_after"]["sha256"] == final]
    first = 1 - last
    # The second saw the file the first wrote, said so, and then replaced it.
    assert reports[first]["output_replaced"] is None
    assert reports[last]["output_replaced"] == {
        "path": "new.skops",
        "sha256": reports[first]["model_after"]["sha256"],
    }
    assert "replacing the file there" in results[last][0]
    assert "replacing" not in results[first][0]
    assert _hidden(files) == []


def test_an_in_place_report_names_the_model_it_replaced(files):
    before = sha256("model.skops")
    assert main([*FORGET, "--output", "model.skops", "--report", "r.json"]) == 0
    record = json.loads(Path("r.json").read_text())
    assert record["output_replaced"] == {"path": "model.skops", "sha256": before}


# 3. Importing the package is light, and a signal during the command's imports is one
# line.


def _imported(stderr):
    """The modules that ``python -X importtime`` says were imported."""
    return [
        line.rpartition("|")[2].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:")
    ]


def test_importing_the_package_and_the_command_line_is_light():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sklunlearn, sklunlearn.cli"],
        capture_output=True,
        text=True,
        env=_environment(),
        check=True,
        timeout=PATIENCE,
    )
    imported = _imported(done.stderr)
    assert "sklunlearn" in imported and "sklunlearn.cli" in imported
    heavy = {"numpy", "scipy", "sklearn", "pandas", "skops", "numba"}
    assert not heavy & {name.split(".")[0] for name in imported}


def test_the_public_names_are_imported_when_used():
    from sklunlearn import ForgetReport
    from sklunlearn.base import ForgetReport as defined

    assert ForgetReport is defined
    assert set(sklunlearn.__all__) <= set(dir(sklunlearn))
    for name in sklunlearn.__all__:
        assert getattr(sklunlearn, name) is not None
    assert sklunlearn.linear_model.BayesianLinearRegression.__name__ == (
        "BayesianLinearRegression"
    )
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        sklunlearn.no_such_name  # noqa: B018
    # Submodules outside __all__ too, as the eager package loaded them.
    assert sklunlearn.base.ForgetReport is defined
    assert sklunlearn.ledger.__name__ == "sklunlearn.ledger"


def _default_signals():
    """As in a terminal's foreground: a background job inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")
@pytest.mark.parametrize(
    "name, code, said", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")]
)
def test_a_signal_while_the_command_imports_numpy_is_one_line(files, name, code, said):
    """The signal is sent once ``-X importtime`` reports the first NumPy module, which
    only the command imports; the test holds the model's lock, so the forget cannot
    finish before the signal arrives."""
    fcntl = pytest.importorskip("fcntl")
    handle = os.open("model.skops", os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX)
    argv = [sys.executable, "-X", "importtime", "-m", "sklunlearn", *FORGET]
    process = subprocess.Popen(
        [*argv, "--output", "model.skops", "--quiet"],
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )
    watchdog = threading.Timer(PATIENCE, process.kill)
    watchdog.start()
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if any(name.split(".")[0] == "numpy" for name in _imported(line)):
                break
        process.send_signal(getattr(signal, name))
        lines += process.stderr.readlines()
        process.wait()
    finally:
        watchdog.cancel()
        process.kill()
        os.close(handle)
    said_lines = [line for line in lines if not line.startswith("import time:")]
    assert said_lines == [f"sklunlearn forget: {said}; nothing was written\n"], lines
    assert process.returncode == code
    assert _hidden(files) == []
