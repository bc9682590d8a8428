"""Rows as a pipeline's caller gave them, as float64 keys a ledger can fingerprint.

A deletion request names rows as they were given to the pipeline; the final
estimator's ledger must recognise them whatever the steps compute from them.
Every input becomes a float64 table with one column per input column and one
more column coding, for the whole row, what is not a finite number:

- numbers as they are (an integer or a boolean as the float it equals);
- anything else (a string, a category, None) by a 48-bit hash of its text
  and type, which a float64 holds exactly;
- NaN, +inf and -inf as 0.0 in their column.

The last column is 0.0 for a row of finite numbers, else a 48-bit hash of
which entries were NaN, +inf, -inf or hashed. Two rows get one key exactly
when they are the same values (up to hash collisions, about one in 2^48), so
that a category an encoder never saw is not a row it learned.
"""

import hashlib
from numbers import Number

import numpy as np
from scipy import sparse

from ._dask import is_dask_collection

__all__ = ["input_row_keys"]

# What an entry is, in the row's code: a finite number, NaN, +inf, -inf, hashed.
_FINITE, _NAN, _POS_INF, _NEG_INF, _HASHED = range(5)


def _hash48(data):
    """A 48-bit integer of ``data`` (bytes), exact as a float64."""
    return float(int.from_bytes(hashlib.blake2b(data, digest_size=6).digest(), "little"))


def _hashed(value):
    """``_hash48`` of ``value``'s type and text."""
    if isinstance(value, str):
        text = b"s" + value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        text = b"b" + value
    else:
        text = f"o{type(value).__module__}.{type(value).__qualname__}:{value!r}".encode()
    return _hash48(text)


def _column(values, codes, column):
    """Fill ``values[:, j]`` and ``codes[:, j]`` from one input column (see above)."""
    column = np.asarray(column)
    if column.dtype.kind in "biuf":
        values[:] = column
        return
    for i, value in enumerate(column.tolist()):
        if isinstance(value, Number) and not isinstance(value, complex):
            values[i] = float(value)
        else:
            values[i], codes[i] = _hashed(value), _HASHED


def _keys(keys, codes):
    """Fill the last column of ``keys`` (n, d + 1) with the rows' codes, in place.

    What is not finite in ``keys[:, :d]`` is moved into ``codes`` first; each
    distinct pattern of codes is hashed once.
    """
    values = keys[:, :-1]
    finite = np.isfinite(values)
    if not finite.all():
        codes[np.isnan(values)] = _NAN
        codes[np.isposinf(values)] = _POS_INF
        codes[np.isneginf(values)] = _NEG_INF
        values[~finite] = 0.0
    keys[:, -1] = 0.0
    coded = np.flatnonzero(codes.any(axis=1))
    if coded.size:
        patterns, which = np.unique(codes[coded], axis=0, return_inverse=True)
        hashes = np.array([1.0 + _hash48(pattern.tobytes()) for pattern in patterns])
        keys[coded, -1] = hashes[which.reshape(-1)]
    return keys


def input_row_keys(X, names=None):
    """The ledger keys of a pipeline's input rows, or None for a dask collection.

    Parameters
    ----------
    X : array-like, sparse matrix, data frame or list
        The rows as given to the pipeline: a 2-D table, or a 1-D sequence
        with one value (a text, say) per row.
    names : array-like of str, default=None
        The column names seen at fit: a data frame's columns are put in that
        order first (the steps select them by name).

    Returns
    -------
    keys : ndarray of shape (n_rows, n_columns + 1), sparse matrix, or None
        A sparse input of finite values stays sparse (its values as float64,
        and the zero code a dense row of finite numbers gets).
    """
    if is_dask_collection(X):
        return None
    if sparse.issparse(X):
        keys = sparse.csr_matrix(X, dtype=np.float64)
        if np.isfinite(keys.data).all():
            # The same code column as a dense row of finite numbers: the same rows
            # are then recognised whether they are given sparse or dense.
            code = sparse.csr_matrix((keys.shape[0], 1))
            return sparse.hstack([keys, code], format="csr")
        X = keys.toarray()
    columns = getattr(X, "columns", None)
    if columns is not None and names is not None:
        if set(map(str, columns)) == set(map(str, names)) and len(columns) == len(names):
            X = X[list(names)]
    if columns is not None and hasattr(X, "iloc"):
        parts = [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
        n_rows = X.shape[0]
    else:
        # By the values' own type: converting objects to float64 would read None as NaN
        # in a batch of numbers and not in one holding a string.
        array = np.asarray(X)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ValueError(f"Rows must be a 1-D or 2-D table, got shape {array.shape}.")
        if array.dtype.kind in "biuf":  # the common case, without a loop over columns
            keys = np.empty((array.shape[0], array.shape[1] + 1))
            keys[:, :-1] = array
            return _keys(keys, np.zeros(array.shape, dtype=np.uint8))
        parts, n_rows = list(array.T), array.shape[0]
    keys = np.empty((n_rows, len(parts) + 1))
    codes = np.zeros((n_rows, len(parts)), dtype=np.uint8)
    for j, part in enumerate(parts):
        _column(keys[:, j], codes[:, j], part)
    return _keys(keys, codes)
