"""How many threads the BLAS under NumPy and SciPy may use, and a one-thread context.

Products of a few hundred columns gain little from a second BLAS thread, and
OpenBLAS threads that wait for each other (or for the Numba kernels' threads
running between the BLAS calls) cost many times more on a busy machine.
"""

import functools

from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads", "one_blas_thread"]


@functools.cache
def _blas_controller():
    # NumPy and SciPy load their BLAS on import, before any estimator runs.
    return ThreadpoolController()


def blas_threads():
    """How many threads NumPy's and SciPy's BLAS may use now (the largest)."""
    libraries = _blas_controller().select(user_api="blas").lib_controllers
    return max((library.num_threads for library in libraries), default=1)


def one_blas_thread():
    """A context that limits BLAS to one thread.

    The loaded BLAS libraries are searched for once per process: a search per
    forget would cost as much as the forget's own products.
    """
    return _blas_controller().limit(limits=1, user_api="blas")
