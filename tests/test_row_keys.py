"""Ledger keys of a pipeline's input rows: a row's key does not depend on the batch it
is in, and different rows get different keys."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklunlearn._row_keys import input_row_keys

entries = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(2**40), 2**40),
    st.text(max_size=5),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(entries, min_size=3, max_size=3), min_size=1, max_size=8))
def test_a_rows_key_is_the_same_alone_and_in_a_batch(rows):
    table = np.array(rows, dtype=object)
    batch = input_row_keys(table)
    for i in range(table.shape[0]):
        np.testing.assert_array_equal(input_row_keys(table[i : i + 1]), batch[i : i + 1])


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(a, str | type(None)) or isinstance(b, str | type(None)):
        return type(a) is type(b) and a == b
    return float(a) == float(b)


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=2, max_size=2), st.lists(entries, min_size=2, max_size=2))
def test_rows_of_other_values_get_other_keys(a, b):
    keys = input_row_keys(np.array([a, b], dtype=object))
    same = all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(keys[0], keys[1]) == same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([0.0, 1.0], [np.nan, 1.0]),
        ([np.inf, 1.0], [-np.inf, 1.0]),
        ([1.0, np.nan], [np.nan, 1.0]),
    ],
)
def test_what_is_not_finite_is_told_apart(a, b):
    keys = input_row_keys(np.array([a, b]))
    assert not np.array_equal(keys[0], keys[1])
    assert np.isfinite(keys).all()


def test_a_frame_is_read_by_column_name():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    swapped = frame[["b", "a"]]
    np.testing.assert_array_equal(
        input_row_keys(swapped, names=["a", "b"]), input_row_keys(frame)
    )
