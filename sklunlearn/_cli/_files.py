"""Reading data, saving and loading models, and the command line's one-line errors."""

import ast
import contextlib
import hashlib
import importlib
import io
import os
import re
import stat
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: forgets check the model file instead of locking it
    fcntl = None

ESTIMATORS = {
    "BayesianLinearRegression": "sklunlearn.linear_model",
    "BayesianLogisticRegression": "sklunlearn.linear_model",
    "SparseGPRegressor": "sklunlearn.gaussian_process",
    "SparseGPClassifier": "sklunlearn.gaussian_process",
    "BayesianMLPRegressor": "sklunlearn.neural_network",
}
SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# Modules whose classes a model file may name: ours, and the numerical stack ours hold.
TRUSTED_MODULES = ("sklunlearn.", "numpy.", "scipy.", "sklearn.gaussian_process.kernels.")
INSTALL_HINT = 'pip install "sklunlearn[cli]"'
# Paths that name a process's descriptors (refused as destinations), or lead to them.
STREAM_PATHS = ("/proc/", "/dev/fd/", "/dev/stdin", "/dev/stdout", "/dev/stderr")
# Files renamed into place by the running command, for the message of an interruption.
WRITTEN = []


class CommandError(Exception):
    """A refusal of the command line: printed as one line, exit code 2."""


def one_line(message):
    """``message`` with its line breaks folded, for a one-line error."""
    return " ".join(str(message).split())


def optional_import(name):
    """Import an optional dependency of the command line, or refuse in one line."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise CommandError(f"this command needs {name}: {INSTALL_HINT}") from None


def existing_file(path):
    """``Path(path)``, refused unless it is an existing file."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    return path


def real_target(path):
    """The file a write to ``path`` goes to: ``path`` with its symlinks followed."""
    return Path(os.path.realpath(path))


def writable_path(path, suffixes=None, *, option=None):
    """``Path(path)``, refused when it is a folder or another file that is not a
    regular one (a device, a fifo), a file that is not writable, or its folder or
    suffix is wrong.

    A symlink is checked as the file it points to, which is the file written.
    ``option`` (e.g. ``"--output"``) names the argument in the refusals.
    """
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{path}: is a folder; name a file to write")
    # /dev/stdout and the like lead through /proc to whatever a descriptor is open on;
    # renaming onto a file found there would unlink it from under its writer.
    if any(
        name.startswith(STREAM_PATHS)
        for name in (os.path.abspath(path), str(real_target(path)))
    ):
        raise CommandError(
            f"{path}: names a stream of a process, not a file; name a file to write"
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:  # it does not exist yet (or is a dangling symlink)
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise CommandError(
            f"{path}: is not a regular file (a device, a fifo or a socket); "
            "name a file to write"
        )
    if mode is not None and write_protected(path, mode):
        # Renaming a file into place needs only its folder's permission (as ``mv``
        # does): a file made read-only would be replaced all the same.
        owned = os.stat(path).st_uid == os.geteuid()
        state = "is read-only" if owned or not mode & 0o222 else "is not writable by you"
        fix = (
            "make it writable (chmod u+w)" if owned else "ask its owner to make it writable"
        )
        raise CommandError(
            f"{path}: {state} (mode {stat.S_IMODE(mode):04o}), so it is not "
            f"replaced; {fix} to replace it, or name another {option or 'file'}"
        )
    folder = real_target(path).parent
    if not folder.is_dir():
        raise CommandError(f"{path}: folder {folder} does not exist")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise CommandError(
            f"{path}: a model file ends with .skops (safe to load) or "
            ".joblib/.pkl (loading it runs code from it)"
        )
    return path


def write_protected(path, mode):
    """Whether the existing file ``path`` (of mode ``mode``) is one its owner made
    read-only: this process may not write it, or it has no write bit at all (root
    may write any file, so for root only ``chmod a-w`` marks one read-only)."""
    return not os.access(path, os.W_OK) or not mode & 0o222


def same_file(first, second):
    """Whether two paths name one file: the same real path (symlinks, ``..`` and
    relative parts resolved), or hard links to one file."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # either does not exist yet
        return False


def refuse_overlaps(destinations, inputs, *, allowed=()):
    """Refuse a destination that is the same file as an input or another destination.

    Parameters
    ----------
    destinations, inputs : iterable of (str, path or None)
        The files a command writes and reads, each with the argument naming it;
        ``None`` paths (options not given) are skipped.
    allowed : collection of (str, str), default=()
        Pairs ``(destination, input)`` of argument names that may name one file.
    """
    destinations = [(name, path) for name, path in destinations if path is not None]
    inputs = [(name, path) for name, path in inputs if path is not None]
    for index, (name, path) in enumerate(destinations):
        for other, other_path in destinations[:index] + inputs:
            if (name, other) not in allowed and same_file(path, other_path):
                raise CommandError(
                    f"{path}: {name} and {other} name the same file; choose another {name}"
                )


def read_table(path, target):
    """Read a CSV or Parquet file into ``(X, y)``: a DataFrame and the target Series."""
    pd = optional_import("pandas")
    path = existing_file(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except ImportError:
        raise CommandError(
            f"{path}: reading Parquet needs pyarrow: pip install pyarrow"
        ) from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CommandError(f"{path}: not a readable table ({one_line(exc)})") from None
    _refuse_repeated_columns(pd, path, frame)
    if target not in frame.columns:
        raise CommandError(
            f"{path}: no column {target!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if len(frame) == 0:
        # Checked before the dtypes: a header-only CSV file reads as columns of text.
        raise CommandError(f"{path} has no rows")
    missing = frame.isna().to_numpy()
    if missing.any():
        rows, columns = missing.nonzero()  # in row-major order: the first is first
        row, column = rows[0], columns[0]
        raise CommandError(
            f"{path}: {int(missing.sum())} missing values (NaN), the first in column "
            f"{frame.columns[column]!r} of data row {row + 1}"
        )
    X = frame.drop(columns=[target])
    if X.columns.empty:
        raise CommandError(f"{path} has no feature columns besides the target {target!r}")
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]):
            raise CommandError(f"{path}: column {column!r} is not numeric")
    return X, frame[target]


def _refuse_repeated_columns(pd, path, frame):
    """Refuse a table whose header names a column twice.

    pandas renames the second ``x`` of a CSV header ``x.1``; the header is read
    again without that renaming only when such a name appears.
    """
    names = [str(name) for name in frame.columns]
    repeated = [name for name in set(names) if names.count(name) > 1]
    renamed = [
        match for match in map(re.compile(r"(.+)\.\d+").fullmatch, names)
        if match is not None and match.group(1) in names
    ]  # fmt: skip
    if renamed and not repeated and path.suffix.lower() not in (".parquet", ".pq"):
        try:
            header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError):
            header = []
        header = [str(name) for name in header]
        repeated = [name for name in set(header) if header.count(name) > 1]
    if repeated:
        raise CommandError(
            f"{path}: its header names column(s) {', '.join(sorted(repeated))} "
            "more than once; each column must have its own name"
        )


def estimator_class(name):
    """The package estimator called ``name``."""
    if name not in ESTIMATORS:
        raise CommandError(f"unknown estimator {name!r} (one of: {', '.join(ESTIMATORS)})")
    try:
        return getattr(importlib.import_module(ESTIMATORS[name]), name)
    except (ImportError, AttributeError):
        raise CommandError(f"{name} is not available in this installation") from None


def parse_param(text):
    """``NAME=VALUE`` as ``(name, value)``: a Python literal, else the string itself."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--param {text!r}: expected NAME=VALUE")
    try:
        # literal_eval evaluates literals only (numbers, strings, None, tuples, ...).
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = value
    return name.strip(), parsed


def sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_file_mode(path):
    """The mode ``open(path, "w")`` would leave: the replaced file's, else 0o666 less
    the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        pass
    # The umask can only be read by setting it; the command line runs one thread.
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def write_beside(path, write, register=None):
    """A new file beside ``path``'s target, filled by ``write(file)`` and flushed to
    disk; removed if that fails.

    It gets the mode of a plain write to ``path`` and, being in the folder of the
    file ``path`` names (symlinks followed), can be renamed onto that file
    atomically, leaving a symlink in place. ``register(file)``, when given, is
    called as soon as the file exists, so that an interruption can remove it.
    """
    target = real_target(path)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temporary = Path(name)
    try:
        os.close(handle)
        if register is not None:
            register(temporary)
        write(temporary)
        _flush_to_disk(temporary)
        # mkstemp makes the file readable by its owner only, whatever the umask.
        os.chmod(temporary, new_file_mode(target))
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _flush_to_disk(path):
    """fsync ``path``: without it a power loss after the rename can leave an empty file."""
    handle = os.open(path, os.O_RDWR)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def flush_folder(folder):
    """fsync a folder, so that a rename in it survives a power loss; skipped where
    folders cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems refuse fsync on a folder; the rename is done
        pass
    finally:
        os.close(handle)


def replace_into(temporary, path):
    """Rename ``temporary`` onto the file ``path`` names (a symlink stays a symlink)."""
    target = real_target(path)
    os.replace(temporary, target)
    WRITTEN.append(str(path))
    flush_folder(target.parent)


@contextlib.contextmanager
def locked(paths):
    """Hold an exclusive advisory lock (``flock``) on each existing file of ``paths``.

    The lock is taken on the file itself, not on a lock file beside it, so that
    nothing is left behind; it is held for the whole block. A file that does not
    exist yet (a new ``--output``) is not locked here: the :class:`Locks` yielded
    locks its folder only around the renames (:meth:`Locks.renaming`), so that
    commands creating files in one folder wait for each other only that long.
    A file renamed over while a process waited for its lock is a new file: the
    waiter then locks that one instead. Files are locked in the order of their
    real paths, and folders after all files (also in that order), and none is
    waited for while holding a later one, so two commands never wait for each
    other. Without ``fcntl`` (Windows) nothing is locked. ``None`` paths
    (options not given) are skipped.
    """
    locks, held = Locks(), set()
    try:
        for target in sorted({real_target(p) for p in paths if p is not None}, key=str):
            if (_identity(target) or ())[:2] in held:
                continue  # a hard link to a file locked: a second lock would wait forever
            handle = None if fcntl is None else _lock(target)
            if handle is None:  # missing (new), unreadable or on a file system
                locks.seen[target] = _identity(target)  # without locks
            else:
                locks.handles.append(handle)
                info = os.fstat(handle)
                held.add((info.st_dev, info.st_ino))
        yield locks
    finally:
        for handle in locks.handles:
            os.close(handle)  # closing releases the lock


class Locks:
    """The locks :func:`locked` holds, and the files it could not lock."""

    def __init__(self):
        self.handles = []
        # Real paths not locked (new files, mostly) -> what was there: see _identity.
        self.seen = {}

    @contextlib.contextmanager
    def renaming(self):
        """Hold the locks of the folders of the files not locked, around the renames.

        Yields whether each of those files is still as it was when :func:`locked`
        looked (still missing, or the file seen): if not, another command wrote it
        meanwhile, and the caller starts again (the file is then locked itself).
        Taken after every file lock: no file's lock is waited for while they are held.
        """
        handles = []
        try:
            if fcntl is not None:
                for folder in sorted({str(target.parent) for target in self.seen}):
                    handle = _lock(folder)
                    if handle is not None:
                        handles.append(handle)
            yield all(_identity(target) == seen for target, seen in self.seen.items())
        finally:
            for handle in handles:
                os.close(handle)


def _identity(target):
    """What tells a file from one written over it: (device, inode, size, mtime), or
    None if it does not exist (or cannot be seen)."""
    try:
        info = os.stat(target)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _lock(target):
    """A descriptor of ``target`` holding its lock, or None if it cannot be locked."""
    while True:
        try:
            handle = os.open(target, os.O_RDONLY)
        except OSError:  # missing or unreadable: nothing to serialise on
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            locked_file, current = os.fstat(handle), os.stat(target)
        except OSError:
            # Removed while waiting, or a file system without locks (some network
            # ones): the in-place forget's check of the file's bytes remains.
            os.close(handle)
            return None
        except BaseException:  # Ctrl-C or SIGTERM while waiting
            os.close(handle)
            raise
        if (locked_file.st_dev, locked_file.st_ino) == (current.st_dev, current.st_ino):
            return handle
        os.close(handle)  # renamed over while waiting: lock the new file


def save_figure(fig, path, dpi=120):
    """Save a matplotlib figure to ``path`` whole or not at all.

    Written beside ``path`` and renamed onto it, so a failed write leaves any
    file there as it was (and is refused in one line); the format is read from
    ``path``'s extension, which the file written beside it lacks.
    """
    path = Path(path)
    form = path.suffix[1:].lower() or None
    try:
        temporary = write_beside(path, lambda file: fig.savefig(file, dpi=dpi, format=form))
        try:
            replace_into(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CommandError(
            f"cannot write {path}: {exc.strerror or one_line(exc)}"
        ) from None


def dump_model(estimator, path, suffix):
    """Write ``estimator`` to ``path`` in the format of files ending with ``suffix``."""
    if suffix.lower() in PICKLE_SUFFIXES:
        import joblib

        joblib.dump(estimator, path)
    else:
        optional_import("skops.io").dump(estimator, path)


def _trusted(type_name):
    """Whether a type a model file names is a class of ours or of the numerical stack."""
    if not type_name.startswith(TRUSTED_MODULES):
        return False
    module, _, name = type_name.rpartition(".")
    try:
        # Importing these packages runs only their own code, never the file's.
        return isinstance(getattr(importlib.import_module(module), name), type)
    except (ImportError, AttributeError):
        return False


def load_model(path, *, digest=False):
    """Load a model file, refusing types from outside the package and the numerical stack.

    ``.skops`` files load without running code from them; ``.joblib`` and
    ``.pkl`` files are trusted (unpickling runs code the file names). With
    ``digest``, return ``(estimator, sha256)``: the hex SHA-256 of the very bytes
    the model was loaded from (the file is read once, so the hash describes the
    model loaded even if the file is replaced meanwhile).
    """
    path = existing_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(
            f"{path}: cannot read it: {exc.strerror or one_line(exc)}"
        ) from None
    estimator = _model_from_bytes(path, data)
    return (estimator, hashlib.sha256(data).hexdigest()) if digest else estimator


def _model_from_bytes(path, data):
    """The estimator that the bytes ``data`` of the file ``path`` hold."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        import joblib

        try:
            estimator = joblib.load(io.BytesIO(data))
        except Exception as exc:  # unpickling raises anything the file provokes
            raise CommandError(f"{path}: not a model file ({one_line(exc)})") from None
    else:
        sio = optional_import("skops.io")
        try:
            untrusted = sio.get_untrusted_types(data=data)
            refused = [name for name in untrusted if not _trusted(name)]
            if refused:
                raise CommandError(
                    f"{path}: refused to load types from outside sklunlearn and the "
                    f"numerical stack: {', '.join(refused)}"
                )
            estimator = sio.loads(data, trusted=untrusted)
        except CommandError:
            raise
        except Exception as exc:  # a file that is not ours can provoke any error
            raise CommandError(
                f"{path}: not a skops model file ({one_line(exc)})"
            ) from None
    from ..base import UnlearningMixin

    if not isinstance(estimator, UnlearningMixin):
        raise CommandError(
            f"{path}: holds a {type(estimator).__name__}, not a sklunlearn estimator"
        )
    return estimator
