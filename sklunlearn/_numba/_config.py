"""Compile options for every jitted kernel of sklunlearn, in one place.

Kernels are compiled lazily, on their first call (no signatures are given, so
nothing is compiled at import).  ``cache=True`` is requested so that later
processes load the machine code from disk; when no writable cache location
exists (read-only install, read-only ``NUMBA_CACHE_DIR``), Numba refuses to
create the cache and we fall back to compiling in memory.
"""

import numba

# fastmath flags without 'nnan' and 'ninf': the kernels must see NaN and inf
# (they report them as a status) and the compiler may not assume them away.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

JIT_OPTIONS = {"nopython": True, "nogil": True, "fastmath": FASTMATH}


def jit(function):
    """Compile ``function`` lazily with the package options.

    Parameters
    ----------
    function : callable
        Plain Python function using the Numba-supported subset.

    Returns
    -------
    dispatcher : numba.core.dispatcher.Dispatcher
        Cached on disk when a writable cache location exists, in memory
        otherwise.
    """
    try:
        return numba.jit(cache=True, **JIT_OPTIONS)(function)
    except RuntimeError:
        # "cannot cache function ...: no locator available": every cache
        # directory is read-only.  Correctness does not depend on the cache.
        return numba.jit(cache=False, **JIT_OPTIONS)(function)
