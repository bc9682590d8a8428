"""Rows held in dask collections: learned, forgotten and predicted on a cluster.

Everything the estimators learn from rows is a sum over rows (sufficient
statistics, likelihood terms), so a dask array or dataframe is served by
computing each chunk's part on the worker that holds it, with the same
kernels as in memory, and adding the parts in a tree; only those sums (d x d
for a linear model, m x m for a sparse GP) reach the client, where the
posterior is solved.

dask is imported by the functions of this package only, and only when a dask
collection is given: the package imports and works without it.
"""

__all__ = [
    "DaskRows",
    "ChunkedModel",
    "classifier_update",
    "dask_laplace_divide_out",
    "dask_newton_fit",
    "is_dask_collection",
    "predict_rows",
    "sparse_gp_update",
]


def is_dask_collection(obj):
    """Whether ``obj`` is a dask array, dataframe or series; dask is not imported.

    Checked before scikit-learn's validation, which would call ``np.asarray``
    on it and so compute the whole collection on the client.
    """
    module = type(obj).__module__
    return module.partition(".")[0] == "dask" and hasattr(obj, "__dask_graph__")


def __getattr__(name):
    # The submodules import dask's optional dependencies' helpers lazily; loading them
    # on first use keeps ``is_dask_collection`` free of any import.
    if name == "DaskRows":
        from ._rows import DaskRows

        return DaskRows
    if name in (
        "ChunkedModel",
        "classifier_update",
        "dask_laplace_divide_out",
        "dask_newton_fit",
    ):
        from . import _newton

        return getattr(_newton, name)
    if name == "sparse_gp_update":
        from ._sparse_gp import sparse_gp_update

        return sparse_gp_update
    if name == "predict_rows":
        from ._predict import predict_rows

        return predict_rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
