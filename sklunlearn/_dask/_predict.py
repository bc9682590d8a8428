"""Lazy predictions on the rows of a dask collection, chunk by chunk on the workers."""

import copy
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from ._rows import _describe, _is_frame

__all__ = ["predict_rows"]

# Fitted attributes a prediction never reads: the ledger grows with the rows learned.
_NOT_SHIPPED = ("ledger_", "_lock")


def _shipped_copy(estimator):
    """A shallow copy of the fitted estimator without its ledger, to send to workers."""
    light = copy.copy(estimator)  # __getstate__ is not involved: the dict is copied
    for name in _NOT_SHIPPED:
        light.__dict__.pop(name, None)
    return light


def _predict_block(X, estimator, method, kwargs, n_outputs, empty):
    """The in-memory method on one chunk; several outputs stacked as columns.

    ``empty`` is the result of a chunk without rows, which the method's validation
    would refuse (a filtered array or dataframe has such chunks).
    """
    if X.shape[0] == 0:
        return empty
    result = getattr(estimator, method)(X, **kwargs)
    if n_outputs == 1:
        return result
    return np.column_stack(result)


def predict_rows(estimator, X, method, **kwargs):
    """``estimator.method(X, **kwargs)`` as lazy dask arrays, chunked like X's rows.

    Each chunk is validated and predicted on its worker by the estimator's own
    in-memory method (the same checks and messages); the feature count and
    names are checked on the client first, from the metadata.

    Parameters
    ----------
    estimator : fitted estimator
    X : dask array of shape (n, n_features) or dask DataFrame
    method : str
        ``'predict'``, ``'predict_proba'``, ...
    **kwargs
        Passed to the method (``return_std=True`` gives two arrays).

    Returns
    -------
    result : dask array, or tuple of dask arrays
        What the method returns, lazily; a dataframe's partitions give
        chunks of unknown size (as ``to_dask_array()`` does).
    """
    import dask
    import dask.array as da

    check_is_fitted(estimator)
    n_features, dtype, stand_in = _describe(X)
    validate_data(estimator, stand_in, reset=False, skip_check_array=True)
    light = _shipped_copy(estimator)
    # One row of zeros tells the outputs' number, trailing shapes and dtypes.
    sample = np.zeros((1, n_features), dtype=dtype)
    if _is_frame(X):
        sample = stand_in.iloc[:0].reindex(range(1)).fillna(0).astype(dtype)
    with warnings.catch_warnings():  # the client's check above has warned already
        warnings.simplefilter("ignore")
        outputs = getattr(light, method)(sample, **kwargs)
    single = not isinstance(outputs, tuple)
    outputs = (outputs,) if single else outputs
    if not single and any(np.ndim(out) != 1 for out in outputs):
        raise NotImplementedError(f"{method} with several outputs of more than one axis.")
    n_outputs = len(outputs)
    trailing = outputs[0].shape[1:] if single else (n_outputs,)
    out_dtype = np.result_type(*(out.dtype for out in outputs))
    model = dask.delayed(light, pure=False, traverse=False)
    empty = np.empty((0, *trailing), dtype=out_dtype)
    if _is_frame(X):
        task = dask.delayed(_predict_block, pure=True)
        blocks = [
            da.from_delayed(
                task(part, model, method, kwargs, n_outputs, empty),
                shape=(np.nan, *trailing),
                dtype=out_dtype,
            )
            for part in X.to_delayed()
        ]
        stacked = da.concatenate(blocks, axis=0)
    else:
        X = X.rechunk({1: -1})
        stacked = X.map_blocks(
            _predict_block,
            model,
            method,
            kwargs,
            n_outputs,
            empty,
            dtype=out_dtype,
            chunks=(X.chunks[0], *((n,) for n in trailing)),
            drop_axis=1 if not trailing else None,
            meta=np.empty((0, *trailing), dtype=out_dtype),
        )
    if single:
        return stacked
    return tuple(stacked[:, i].astype(out.dtype) for i, out in enumerate(outputs))
