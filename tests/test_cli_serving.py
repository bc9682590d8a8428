"""Serving deletion requests from the command line: concurrent forgets of one model
file, models without a ledger, symlinked and special destinations, interruptions,
and the command line's own messages."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cli_helpers import FORGET, PATIENCE, refused, write_fitted_model

from sklunlearn import __version__
from sklunlearn._cli import _commands, _files
from sklunlearn._cli._files import sha256
from sklunlearn.cli import main

pd = pytest.importorskip("pandas")
sio = pytest.importorskip("skops.io")

N_ROWS = 500
N_REQUEST = 10


@pytest.fixture
def files(tmp_path, banknote, monkeypatch):
    """Data, rows to forget and a fitted linear model in the working directory."""
    monkeypatch.chdir(tmp_path)
    write_fitted_model(banknote, N_ROWS, N_REQUEST)
    return tmp_path


def _rows_seen(path):
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    return model.n_samples_seen_


def _hidden(folder):
    """Names in ``folder`` starting with a dot: temporary files left behind."""
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


# A forget in a subprocess that starts when told to (the file GO exists), with a pause
# between loading the model and writing it, so that concurrent forgets overlap.
CONCURRENT_FORGET = """
import sys, time
from pathlib import Path
from sklunlearn._cli import _commands
from sklunlearn.cli import main

read_table = _commands.read_table

def slow_read_table(*args, **kwargs):
    time.sleep(0.5)
    return read_table(*args, **kwargs)

_commands.read_table = slow_read_table
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
sys.exit(main(sys.argv[3:]))
"""


def _environment():
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.mark.skipif(sys.platform == "win32", reason="forgets take turns on POSIX only")
def test_concurrent_in_place_forgets_all_land(files, banknote, capsys):
    Path("runner.py").write_text(CONCURRENT_FORGET)
    original = sha256("model.skops")
    requests = range(3)
    for i in requests:
        rows = banknote.iloc[N_REQUEST * i : N_REQUEST * (i + 1)]
        rows.to_csv(f"request{i}.csv", index=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "runner.py", f"ready{i}", "go", "forget", "model.skops"]
            + [f"request{i}.csv", "--target", "class", "--output", "model.skops"]
            + ["--report", f"report{i}.json", "--quiet"],
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in requests
    ]
    try:
        deadline = time.monotonic() + PATIENCE
        while not all(Path(f"ready{i}").exists() for i in requests):
            assert time.monotonic() < deadline, "the forgets did not start"
            time.sleep(0.05)
        Path("go").touch()
        results = [process.communicate(timeout=PATIENCE) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err.decode()
    assert _rows_seen("model.skops") == N_ROWS - 3 * N_REQUEST
    # Each forget loaded what the previous one wrote: the hashes form one chain.
    reports = [json.loads(Path(f"report{i}.json").read_text()) for i in requests]
    after = {r["model_after"]["sha256"]: r for r in reports}
    before = {r["model_before"]["sha256"] for r in reports}
    assert before == {original} | (set(after) - {sha256("model.skops")})
    # And every request is now refused: no deletion was lost.
    for i in requests:
        argv = ["forget", "model.skops", f"request{i}.csv", "--target", "class"]
        refused(capsys, [*argv, "--output", "probe.skops"])
    assert _hidden(files) == []


@pytest.mark.skipif(sys.platform == "win32", reason="forgets take turns on POSIX only")
def test_a_forget_holds_the_lock_on_the_model_from_loading_to_writing(files, monkeypatch):
    fcntl = pytest.importorskip("fcntl")
    read_table, held = _commands.read_table, []

    def try_the_lock(*args, **kwargs):
        handle = os.open("model.skops", os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(handle)
        return read_table(*args, **kwargs)

    monkeypatch.setattr(_commands, "read_table", try_the_lock)
    assert main([*FORGET, "--output", "model.skops", "--quiet"]) == 0
    assert held == [True]


def test_an_in_place_forget_refuses_a_model_file_changed_meanwhile(
    files, capsys, monkeypatch
):
    """A writer that does not take the lock replaces the model during the forget."""
    other = files / "other.skops"
    argv = ["fit", "BayesianLinearRegression", "rows.csv", "--target", "class"]
    assert main([*argv, "--output", str(other), "--quiet"]) == 0
    read_table = _commands.read_table

    def replace_the_model(*args, **kwargs):
        os.replace(other, "model.skops")
        return read_table(*args, **kwargs)

    monkeypatch.setattr(_commands, "read_table", replace_the_model)
    expected = sha256(other)
    err = refused(capsys, [*FORGET, "--output", "model.skops", "--report", "r.json"])
    assert "the model file changed while this request was served; nothing was" in err
    assert sha256("model.skops") == expected and not Path("r.json").exists()
    assert _hidden(files) == []


def test_the_report_hashes_the_bytes_loaded(files, monkeypatch):
    """The hash before is of the model forgotten from, even if the file changes
    while it is loaded (here, with a different output: nothing is refused)."""
    original = sha256("model.skops")
    trusted = _files._trusted

    def touch_the_model(name):
        Path("model.skops").write_bytes(b"replaced")
        return trusted(name)

    monkeypatch.setattr(_files, "_trusted", touch_the_model)
    argv = [*FORGET, "--output", "out.skops", "--report", "r.json", "--quiet"]
    assert main(argv) == 0
    assert json.loads(Path("r.json").read_text())["model_before"]["sha256"] == original


@pytest.fixture
def unledgered(files):
    """A model fitted with ledger=False, beside the files of ``files``."""
    argv = ["fit", "BayesianLinearRegression", "data.csv", "--target", "class"]
    argv += ["--param", "ledger=False", "--output", "nl.skops", "--quiet"]
    assert main(argv) == 0
    return files


def test_a_model_without_ledger_is_refused_unless_unchecked(unledgered, capsys):
    before = sha256("nl.skops")
    argv = ["forget", "nl.skops", "rows.csv", "--target", "class", "--output", "nl.skops"]
    err = refused(capsys, [*argv, "--report", "r.json"])
    assert "keeps no ledger" in err and "--unchecked" in err
    assert sha256("nl.skops") == before and not Path("r.json").exists()
    assert main([*argv, "--report", "r.json", "--unchecked", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: nl.skops keeps no ledger")
    assert json.loads(Path("r.json").read_text())["checked_against_ledger"] is False
    assert _rows_seen("nl.skops") == N_ROWS - N_REQUEST


def test_a_report_of_a_model_with_a_ledger_says_it_was_checked(files, capsys):
    assert main([*FORGET, "--output", "out.skops", "--report", "r.json"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads(Path("r.json").read_text())["checked_against_ledger"] is True


def test_a_row_learned_twice_is_forgotten_twice_then_refused(files, banknote, capsys):
    """The ledger counts copies: a retry of a row learned twice is applied (as the
    documentation says)."""
    pd.concat([banknote.iloc[:N_ROWS], banknote.iloc[:1]]).to_csv("twice.csv", index=False)
    banknote.iloc[:1].to_csv("one.csv", index=False)
    argv = ["fit", "BayesianLinearRegression", "twice.csv", "--target", "class"]
    assert main([*argv, "--output", "t.skops", "--quiet"]) == 0
    argv = ["forget", "t.skops", "one.csv", "--target", "class", "--output", "t.skops"]
    assert main([*argv, "--quiet"]) == 0
    assert main([*argv, "--quiet"]) == 0
    refused(capsys, argv)
    assert _rows_seen("t.skops") == N_ROWS - 1
    docs = Path(__file__).parents[1] / "docs"
    for page in ("command_line.md", "tutorial_deletion_request.md"):
        text = " ".join((docs / page).read_text().split())
        assert "the ledger counts copies" in text.lower(), page


def test_symlinked_destinations_are_written_through(files):
    Path("store").mkdir()
    Path("audit").mkdir()
    os.replace("model.skops", "store/model-v1.skops")
    Path("audit/req-1.json").write_text("")
    os.symlink("store/model-v1.skops", "model.skops")
    os.symlink("audit/req-1.json", "report.json")
    argv = [*FORGET, "--output", "model.skops", "--report", "report.json", "--quiet"]
    assert main(argv) == 0
    assert Path("model.skops").is_symlink() and Path("report.json").is_symlink()
    assert _rows_seen("store/model-v1.skops") == N_ROWS - N_REQUEST
    report = json.loads(Path("audit/req-1.json").read_text())
    assert report["model_after"]["sha256"] == sha256("store/model-v1.skops")
    assert _hidden(files) == [] and _hidden("store") == [] and _hidden("audit") == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos")
@pytest.mark.parametrize("option", ["--output", "--report"])
def test_a_destination_that_is_not_a_regular_file_is_refused_before_any_work(
    files, capsys, monkeypatch, option
):
    os.mkfifo("pipe.skops")
    monkeypatch.setattr(_commands, "load_model", _refuse_to_run)
    monkeypatch.setattr(_commands, "read_table", _refuse_to_run)
    argv = [*FORGET, "--output", "out.skops"] if option == "--report" else FORGET
    err = refused(capsys, [*argv, option, "pipe.skops"])
    assert "pipe.skops: is not a regular file" in err


# A forget that receives a signal while it writes the model.
SIGNALLED_FORGET = """
import os, signal, sys
from sklunlearn._cli import _commands
from sklunlearn.cli import main

# As in a terminal's foreground: a background job inherits both signals ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)

dump_model = _commands.dump_model

def signalled_dump(*args):
    dump_model(*args)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))

_commands.dump_model = signalled_dump
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    "name, code, said", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")]
)
def test_a_signal_during_the_write_leaves_one_line_and_no_file(files, name, code, said):
    Path("runner.py").write_text(SIGNALLED_FORGET)
    before = sha256("model.skops")
    argv = [sys.executable, "runner.py", name, *FORGET, "--output", "model.skops"]
    done = subprocess.run(
        [*argv, "--report", "r.json", "--quiet"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == code, done.stderr
    assert done.stderr == f"sklunlearn forget: {said}; nothing was written\n"
    assert sha256("model.skops") == before and not Path("r.json").exists()
    assert _hidden(files) == []


def test_the_staged_model_is_flushed_to_disk_before_its_rename(files, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(handle):
        events.append(("fsync", os.fstat(handle).st_ino))
        fsync(handle)

    def recording_replace(source, destination):
        events.append(("replace", os.stat(source).st_ino))
        replace(source, destination)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    assert main([*FORGET, "--output", "model.skops", "--quiet"]) == 0
    renamed = [inode for event, inode in events if event == "replace"]
    assert len(renamed) == 1
    assert ("fsync", renamed[0]) in events[: events.index(("replace", renamed[0]))]


def test_an_invalid_param_is_named_as_such_before_the_data_is_read(
    files, capsys, monkeypatch
):
    monkeypatch.setattr(_commands, "read_table", _refuse_to_run)
    argv = ["fit", "BayesianLogisticRegression", "data.csv", "--target", "class"]
    err = refused(capsys, [*argv, "--param", "alpha=-1", "--output", "out.skops"])
    assert "error: --param: The 'alpha' parameter" in err and "data.csv" not in err


def test_a_folder_given_as_model_is_called_a_folder(files, capsys):
    Path("folder.skops").mkdir()
    argv = ["forget", "folder.skops", "rows.csv", "--target", "class"]
    err = refused(capsys, [*argv, "--output", "out.skops"])
    assert "folder.skops: is a folder, not a file" in err


def test_a_column_named_twice_is_called_repeated(files, banknote, capsys):
    frame = banknote.iloc[:N_REQUEST]
    frame = pd.concat([frame[["variance"]], frame], axis=1)
    frame.to_csv("twice.csv", index=False)
    assert Path("twice.csv").read_text().startswith("variance,variance,")
    argv = ["forget", "model.skops", "twice.csv", "--target", "class"]
    err = refused(capsys, [*argv, "--output", "out.skops"])
    assert "names column(s) variance more than once" in err


def _help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_version_and_help(capsys):
    assert _help(capsys, ["--version"]) == f"sklunlearn {__version__}"
    text = _help(capsys, ["forget", "--help"])
    assert "--target COLUMN the column holding the target" in text
    assert "may be MODEL itself (an in-place forget)" in text
    assert "exit codes: 0" in text and "--unchecked" in text
    assert "MODEL model file to describe" in _help(capsys, ["inspect", "--help"])
    text = _help(capsys, ["audit", "--help"])
    assert "--param NAME=VALUE estimator parameter" in text
    assert "held out as unseen" in text
