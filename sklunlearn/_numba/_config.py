"""Compile options for every jitted kernel of sklunlearn, in one place.

Kernels are compiled lazily, on their first call (no signatures are given, so
nothing is compiled at import). ``cache=True`` is requested so that later
processes load the machine code from disk. Two failures of that cache must not
break the package:

- no writable cache location (read-only install, read-only
  ``NUMBA_CACHE_DIR``): Numba refuses to create the cache and we compile in
  memory, silently;
- a cache that exists but cannot be read (truncated or garbage index ``.nbi``
  or data ``.nbc`` file, unreadable file): Numba's dispatcher would raise from
  its ``load_overload`` (an ``UnpicklingError`` that does not mention the
  cache) on every call. Our cache class catches that, warns once per cache
  directory and process with a ``NumbaCacheWarning`` (a ``RuntimeWarning``)
  naming the directory, empties the function's index and lets the dispatcher
  compile; the fresh result is saved again, so the next process loads it
  cleanly. If the cache cannot be written either, caching is switched off for
  that function.

Numba stores no checksum, so damage that still unpickles into a valid
library (bit flips inside the machine code) cannot be detected here.
"""

import threading
import warnings

import numba
from numba.core.caching import FunctionCache

__all__ = ["FASTMATH", "JIT_OPTIONS", "NumbaCacheWarning", "jit"]

# fastmath flags without 'nnan' and 'ninf': the kernels must see NaN and inf
# (they report them as a status) and the compiler may not assume them away.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

JIT_OPTIONS = {"nopython": True, "nogil": True, "fastmath": FASTMATH}


class NumbaCacheWarning(RuntimeWarning):
    """The on-disk Numba cache could not be read or written; sklunlearn compiled instead."""


_warned_directories = set()
_warned_lock = threading.Lock()


def _warn_once(cache_path, function_name, action, error):
    """Issue one NumbaCacheWarning per cache directory and process."""
    with _warned_lock:
        if cache_path in _warned_directories:
            return
        _warned_directories.add(cache_path)
    warnings.warn(
        f"The Numba cache in {cache_path!r} could not be {action} for "
        f"{function_name} ({type(error).__name__}: {error}); sklunlearn compiled the "
        "kernel instead and is rewriting the damaged cache entries. Other damaged "
        "entries in this directory are handled the same way without a further "
        "warning. Deleting the directory clears the cache.",
        NumbaCacheWarning,
        stacklevel=2,
    )


class _TolerantFunctionCache(FunctionCache):
    """Numba's per-function disk cache, with unreadable entries treated as absent.

    The dispatcher calls ``load_overload`` before compiling (None means
    "compile") and ``save_overload`` after; both read the index file, so both
    are guarded.
    """

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:
            _warn_once(self.cache_path, self._py_func.__qualname__, "read", error)
            self._reset()
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as error:
            _warn_once(self.cache_path, self._py_func.__qualname__, "written", error)
            self.disable()

    def _reset(self):
        """Empty the function's index, so the next save writes a clean one."""
        try:
            self.flush()
        except Exception:
            # The damaged index cannot even be replaced: no cache for this
            # function in this process.
            self.disable()


def jit(function=None, *, fastmath=True):
    """Compile ``function`` lazily with the package options.

    Use as ``@jit`` or, for kernels whose arithmetic must stay IEEE exact
    (error-free transformations), ``@jit(fastmath=False)``.

    Parameters
    ----------
    function : callable
        Plain Python function using the Numba-supported subset.
    fastmath : bool, default=True
        Compile with the package's :data:`FASTMATH` flags; False compiles
        without any (re-association would cancel TwoSum's error term).

    Returns
    -------
    dispatcher : numba.core.dispatcher.Dispatcher
        Cached on disk when a writable cache location exists, in memory
        otherwise; a damaged cache falls back to compiling with one
        ``NumbaCacheWarning``.
    """
    if function is None:
        return lambda function: jit(function, fastmath=fastmath)
    options = JIT_OPTIONS if fastmath else {**JIT_OPTIONS, "fastmath": False}
    try:
        dispatcher = numba.jit(cache=True, **options)(function)
    except RuntimeError:
        # "cannot cache function ...: no locator available": every cache
        # directory is read-only.  Correctness does not depend on the cache.
        return numba.jit(cache=False, **options)(function)
    # Numba's dispatcher has no public hook for its cache class; swap in the
    # tolerant one (under NUMBA_DISABLE_JIT there is no dispatcher at all).
    if type(getattr(dispatcher, "_cache", None)) is FunctionCache:
        dispatcher._cache = _TolerantFunctionCache(function)
    return dispatcher
