"""The open-addressing tables that count a ledger's fingerprints.

Layout
------
Fingerprints ``(hi, lo)`` (``sklunlearn._numba.fingerprint``) are counted in
hash tables with linear probing (Knuth, TAOCP vol. 3, Sec. 6.4, Algorithm L),
each one structured NumPy array of 32-byte ``ENTRY`` records, so they pickle
and copy as plain data and a record never straddles a cache line:

- ``entries``: one record per fingerprint with weight left. ``weight`` is the
  weight left (always positive; 0 marks an empty slot), ``learned`` the weight
  ever learned, stored negated when the fingerprint has a record in
  ``counts``.
- ``counts``: a record only for fingerprints learned more than once (one
  learned once has one row left and one learned, implicitly), with the same
  fields read as ``weight`` = rows left and ``learned`` = rows ever learned
  (whole numbers, exact in float64).

So forgetting rows learned once, the common case, reads and writes one record
of ``entries``. Deletion is by backward shift (Knuth's Algorithm R): nothing
of a deleted record stays in a table and no tombstones slow later probes.
Capacities are powers of two; the caller grows a table (``rehash``) before an
insertion could push its load above ``MAX_LOAD``.
"""

import numpy as np

from ._config import jit
from .fingerprint import _check_array

STATUS_OK = 0
STATUS_BAD_WEIGHT = 3

# Per-row refusal reasons written by the plan kernel (0: nothing to refuse).
REFUSED_NOT_LEARNED = 1
REFUSED_OVER_WEIGHT = 2
REFUSED_REPEATED = 3

# Load factor above which a table is grown: linear probing stays short
# (expected 2.5 probes for a miss at load 1/2).
MAX_LOAD = 0.5

ENTRY = np.dtype(
    [
        ("hi", np.uint64),
        ("lo", np.uint64),
        ("weight", np.float64),  # entries: weight left; counts: rows left; 0: empty
        ("learned", np.float64),  # entries: weight learned (< 0: see counts); counts: rows
    ]
)

# One request fingerprint, aggregated over the request's repeats.
GROUP = np.dtype(
    [
        ("hi", np.uint64),
        ("lo", np.uint64),
        ("weight", np.float64),  # total weight asked for
        ("largest", np.float64),  # largest single row weight asked for
        ("rows", np.int64),  # rows of the request with this fingerprint
        ("slot", np.int64),  # where the plan found its entry (a hint for apply)
        ("run_ends", np.bool_),  # the slot after it was empty (stays so until apply)
    ]
)

# Records in both tables, rows and weight left, kept up to date by the kernels.
TOTALS = np.dtype(
    [
        ("entries", np.int64),
        ("counted", np.int64),  # records in the counts table
        ("rows", np.int64),
        ("weight", np.float64),
    ]
)

# Every field of an entry, as ``table_entries`` lists them.
ENTRY_FIELDS = np.dtype(
    [
        ("hi", np.uint64),
        ("lo", np.uint64),
        ("weight", np.float64),
        ("learned", np.float64),
        ("rows", np.int64),
        ("learned_rows", np.int64),
    ]
)


@jit
def _home_slot(lo, mask):
    """The slot a fingerprint probes first: its low bits (the fingerprint is mixed)."""
    return np.intp(lo & np.uint64(mask))


@jit
def _probe(table, hi, lo):
    """``(slot, True)`` where ``(hi, lo)`` is, or ``(free slot ending its run, False)``."""
    mask = table.shape[0] - 1
    slot = _home_slot(lo, mask)
    while table[slot]["weight"] != 0.0:
        if table[slot]["hi"] == hi and table[slot]["lo"] == lo:
            return slot, True
        slot = (slot + 1) & mask
    return slot, False


@jit
def _find(table, hi, lo):
    """Slot of fingerprint ``(hi, lo)`` in ``table``, or -1 when it is absent."""
    slot, found = _probe(table, hi, lo)
    return slot if found else -1


@jit
def _write(table, slot, hi, lo, weight, learned):
    """Overwrite every field of ``table[slot]``."""
    record = table[slot]
    record["hi"] = hi
    record["lo"] = lo
    record["weight"] = weight
    record["learned"] = learned


@jit
def _delete(table, slot):
    """Empty ``slot`` and shift later records of its probe run back (Algorithm R).

    A record at ``later`` moves into the hole unless its home slot lies
    cyclically in ``(hole, later]``, where it is still reachable.
    """
    mask = table.shape[0] - 1
    hole = slot
    later = (slot + 1) & mask
    while table[later]["weight"] != 0.0:
        home = _home_slot(table[later]["lo"], mask)
        if ((later - home) & mask) >= ((later - hole) & mask):
            moved = table[later]
            _write(table, hole, moved["hi"], moved["lo"], moved["weight"], moved["learned"])
            hole = later
        later = (later + 1) & mask
    _write(table, hole, np.uint64(0), np.uint64(0), 0.0, 0.0)


@jit
def _row_counts(entries, counts, slot):
    """``(rows left, rows learned, slot in counts or -1)`` of ``entries[slot]``."""
    entry = entries[slot]
    if entry["learned"] > 0.0:
        return np.int64(1), np.int64(1), -1
    counted = _find(counts, entry["hi"], entry["lo"])
    return (
        np.int64(counts[counted]["weight"]),
        np.int64(counts[counted]["learned"]),
        counted,
    )


@jit
def _accumulate(entries, counts, totals, hi, lo, weight, learned, rows, learned_rows):
    """Add weight and rows to the entry of ``(hi, lo)``, creating it if absent.

    Both tables must have a free slot; ``totals`` is updated.
    """
    totals[0]["rows"] += rows
    totals[0]["weight"] += weight
    slot, found = _probe(entries, hi, lo)
    if found:
        old_rows, old_learned_rows, _ = _row_counts(entries, counts, slot)
        rows += old_rows
        learned_rows += old_learned_rows
        entry = entries[slot]
        entry["weight"] += weight
        entry["learned"] = abs(entry["learned"]) + learned
    else:
        _write(entries, slot, hi, lo, weight, learned)
        totals[0]["entries"] += 1
    if learned_rows > 1:
        counted, found = _probe(counts, hi, lo)
        if not found:
            totals[0]["counted"] += 1
        _write(counts, counted, hi, lo, float(rows), float(learned_rows))
        entries[slot]["learned"] = -abs(entries[slot]["learned"])


@jit
def _weights_status(weights):
    """STATUS_BAD_WEIGHT when a weight is negative, NaN or infinite, else STATUS_OK."""
    for i in range(weights.shape[0]):
        if not (0.0 <= weights[i] < np.inf):
            return STATUS_BAD_WEIGHT
    return STATUS_OK


@jit
def _add_kernel(entries, counts, fingerprints, weights, totals):
    """Learn every row with positive weight; update ``totals``.

    A row new to the table, the common case, is written inline; only a
    repeat goes through ``_accumulate``.
    """
    for i in range(fingerprints.shape[0]):
        weight = weights[i]
        if weight > 0.0:
            hi = fingerprints[i, 0]
            lo = fingerprints[i, 1]
            slot, found = _probe(entries, hi, lo)
            if found:
                _accumulate(entries, counts, totals, hi, lo, weight, weight, 1, 1)
            else:
                _write(entries, slot, hi, lo, weight, weight)
                totals[0]["entries"] += 1
                totals[0]["rows"] += 1
                totals[0]["weight"] += weight
    return STATUS_OK


@jit
def _merge_kernel(entries, counts, totals, other_entries, other_counts):
    """Add every entry of another ledger's tables into ``entries`` and ``counts``."""
    for slot in range(other_entries.shape[0]):
        entry = other_entries[slot]
        if entry["weight"] != 0.0:
            rows, learned_rows, _ = _row_counts(other_entries, other_counts, slot)
            _accumulate(
                entries,
                counts,
                totals,
                entry["hi"],
                entry["lo"],
                entry["weight"],
                abs(entry["learned"]),
                rows,
                learned_rows,
            )
    return STATUS_OK


@jit
def _reinsert_kernel(grown, table):
    """Insert every record of ``table`` (distinct fingerprints) into ``grown``."""
    for slot in range(table.shape[0]):
        record = table[slot]
        if record["weight"] != 0.0:
            free, _ = _probe(grown, record["hi"], record["lo"])
            _write(
                grown, free, record["hi"], record["lo"], record["weight"], record["learned"]
            )
    return STATUS_OK


@jit
def _contains_kernel(entries, fingerprints, found):
    """``found[i] = fingerprint i has an entry`` (every entry has weight left)."""
    for i in range(fingerprints.shape[0]):
        found[i] = _find(entries, fingerprints[i, 0], fingerprints[i, 1]) >= 0
    return STATUS_OK


@jit
def _group_request(fingerprints, weights, groups, row_group):
    """Aggregate the request's rows with positive weight by fingerprint.

    Fills ``groups[:n_groups]`` and ``row_group`` (-1 for a zero weight) through
    a scratch open-addressing table of at least twice the request's size;
    returns ``n_groups``.
    """
    n = fingerprints.shape[0]
    capacity = 2
    while capacity < 2 * n:
        capacity *= 2
    mask = capacity - 1
    group_of_slot = np.full(capacity, -1, dtype=np.int64)
    n_groups = 0
    for i in range(n):
        row_group[i] = -1
        weight = weights[i]
        if weight == 0.0:
            continue
        hi = fingerprints[i, 0]
        lo = fingerprints[i, 1]
        slot = _home_slot(lo, mask)
        while True:
            group = group_of_slot[slot]
            if group < 0:
                group = n_groups
                n_groups += 1
                group_of_slot[slot] = group
                record = groups[group]
                record["hi"] = hi
                record["lo"] = lo
                record["weight"] = 0.0
                record["largest"] = 0.0
                record["rows"] = 0
                break
            if groups[group]["hi"] == hi and groups[group]["lo"] == lo:
                break
            slot = (slot + 1) & mask
        record = groups[group]
        record["weight"] += weight
        record["largest"] = max(record["largest"], weight)
        record["rows"] += 1
        row_group[i] = group
    return n_groups


@jit
def _plan_kernel(entries, fingerprints, weights, rtol, groups, refusals):
    """Check a forget request against ``entries`` without changing it.

    ``refusals[i]`` receives 0 (row accepted, or zero weight),
    REFUSED_NOT_LEARNED (no entry), REFUSED_OVER_WEIGHT (asks for more than
    the entry's weight left, ``rtol * learned`` allowed for round-off) or
    REFUSED_REPEATED (each copy fits, the request's copies together do not).

    Returns the number of groups written to ``groups``.
    """
    n = fingerprints.shape[0]
    row_group = np.empty(n, dtype=np.int64)
    n_groups = _group_request(fingerprints, weights, groups, row_group)
    group_refusal = np.zeros(n_groups, dtype=np.int8)
    for group in range(n_groups):
        record = groups[group]
        slot = _find(entries, record["hi"], record["lo"])
        record["slot"] = slot
        if slot < 0:
            group_refusal[group] = REFUSED_NOT_LEARNED
            continue
        # Reading the next slot here, where the loads of all groups overlap,
        # spares apply a dependent cache miss per deletion.
        record["run_ends"] = entries[(slot + 1) & (entries.shape[0] - 1)]["weight"] == 0.0
        allowed = entries[slot]["weight"] + rtol * abs(entries[slot]["learned"])
        if record["largest"] > allowed:
            group_refusal[group] = REFUSED_OVER_WEIGHT
        elif record["weight"] > allowed:
            group_refusal[group] = REFUSED_REPEATED
    for i in range(n):
        refusals[i] = group_refusal[row_group[i]] if row_group[i] >= 0 else 0
    return n_groups


@jit
def _rows_left(rows, learned_rows, learned, weight_left, rtol):
    """Rows still counted once ``weight_left`` of an entry's weight remains.

    ``ceil(weight_left / mean learned row weight)`` less a round-off margin,
    at least 1 (some weight is left) and never more than ``rows`` before.
    """
    mean_weight = learned / learned_rows
    kept = np.ceil(weight_left / mean_weight - rtol * learned_rows)
    return min(rows, max(np.int64(1), np.int64(kept)))


@jit
def _forget_counted(entries, counts, slot, weight_left, rtol, totals):
    """Leave ``weight_left`` in ``entries[slot]``, an entry with a counts record.

    The entry and its counts record are deleted when ``weight_left`` is at
    most ``rtol * learned``; otherwise the rows it keeps are recounted.
    """
    learned = -entries[slot]["learned"]
    rows, learned_rows, counted = _row_counts(entries, counts, slot)
    if weight_left <= rtol * learned:
        totals[0]["entries"] -= 1
        totals[0]["counted"] -= 1
        totals[0]["rows"] -= rows
        totals[0]["weight"] -= entries[slot]["weight"]
        _delete(counts, counted)
        _delete(entries, slot)
    else:
        kept = _rows_left(rows, learned_rows, learned, weight_left, rtol)
        totals[0]["rows"] -= rows - kept
        totals[0]["weight"] -= entries[slot]["weight"] - weight_left
        counts[counted]["weight"] = float(kept)
        entries[slot]["weight"] = weight_left


@jit
def _apply_kernel(entries, counts, groups, rtol, totals):
    """Forget every group of a plan checked on these very tables; update ``totals``.

    An entry whose weight left falls to ``rtol * learned`` or below is
    deleted. Entries learned once (no counts record, one row) are handled
    inline: they are the common case and the loop stays free of calls.
    """
    for group in range(groups.shape[0]):
        hi = groups[group]["hi"]
        lo = groups[group]["lo"]
        slot = groups[group]["slot"]
        # Earlier deletions may have shifted the entry back along its probe run.
        if entries[slot]["hi"] != hi or entries[slot]["lo"] != lo:
            slot = _find(entries, hi, lo)
        if slot < 0 or entries[slot]["weight"] == 0.0:
            continue
        weight = entries[slot]["weight"]
        weight_left = weight - groups[group]["weight"]
        learned = entries[slot]["learned"]
        if learned < 0.0:
            _forget_counted(entries, counts, slot, weight_left, rtol, totals)
        elif weight_left <= rtol * learned:
            totals[0]["entries"] -= 1
            totals[0]["rows"] -= 1
            totals[0]["weight"] -= weight
            if groups[group]["run_ends"] and slot == groups[group]["slot"]:
                # Deletions only shift entries back: the slot after is still empty.
                _write(entries, slot, np.uint64(0), np.uint64(0), 0.0, 0.0)
            else:
                _delete(entries, slot)
        else:
            totals[0]["weight"] -= weight - weight_left
            entries[slot]["weight"] = weight_left
    return STATUS_OK


def _check_table(table):
    """TypeError unless ``table`` is a writeable C-contiguous ENTRY array of 2^k slots."""
    _check_array(table, ENTRY, 1, "table")
    size = table.shape[0]
    if size < 2 or size & (size - 1) or not table.flags.writeable:
        raise TypeError("table must be a writeable ENTRY array of a power-of-two size.")


def _check_request(tables, fingerprints, weights):
    """Checks shared by the wrappers that take fingerprints and their weights."""
    for table in tables:
        _check_table(table)
    _check_array(fingerprints, np.uint64, 2, "fingerprints")
    _check_array(weights, np.float64, 1, "weights")
    if not fingerprints.flags.c_contiguous or fingerprints.shape[1] != 2:
        raise TypeError("fingerprints must be C-contiguous of shape (n, 2).")
    if weights.shape[0] != fingerprints.shape[0]:
        raise ValueError(
            f"{fingerprints.shape[0]} fingerprints but {weights.shape[0]} weights."
        )


def check_weights(weights):
    """ValueError unless every weight is finite and non-negative."""
    _check_array(weights, np.float64, 1, "weights")
    if _weights_status(weights) != STATUS_OK:
        raise ValueError("weights must be finite and non-negative.")


def new_table(capacity):
    """An empty table of ``capacity`` slots (a power of two, at least 2)."""
    return np.zeros(capacity, dtype=ENTRY)


def capacity_for(n_records):
    """Smallest power of two (at least 16) holding ``n_records`` under MAX_LOAD."""
    capacity = 16
    while capacity * MAX_LOAD < n_records:
        capacity *= 2
    return capacity


def rehash(table, capacity):
    """A new table of ``capacity`` slots holding every record of ``table``."""
    _check_table(table)
    grown = new_table(capacity)
    _reinsert_kernel(grown, table)
    return grown


def table_add(entries, counts, fingerprints, weights, totals):
    """Learn the fingerprints with positive weight, in place.

    The caller guarantees valid weights (``check_weights``) and room in both
    tables for one new record per positive weight under MAX_LOAD. ``totals``
    (a TOTALS array of one record) is updated.
    """
    _check_request((entries, counts), fingerprints, weights)
    _add_kernel(entries, counts, fingerprints, weights, totals)


def table_merge(entries, counts, totals, other_entries, other_counts):
    """Add every entry of another ledger's tables (room guaranteed by the caller)."""
    for table in (entries, counts, other_entries, other_counts):
        _check_table(table)
    _merge_kernel(entries, counts, totals, other_entries, other_counts)


def table_contains(entries, fingerprints):
    """Boolean per fingerprint: it has an entry (with weight left)."""
    _check_request((entries,), fingerprints, np.empty(fingerprints.shape[0]))
    found = np.empty(fingerprints.shape[0], dtype=np.bool_)
    _contains_kernel(entries, fingerprints, found)
    return found


def table_plan(entries, fingerprints, weights, rtol):
    """Check a forget request (valid weights, ``check_weights``) without changing it.

    Returns
    -------
    groups : ndarray of GROUP records
        The request aggregated by fingerprint (rows with positive weight).
    refusals : ndarray of shape (n,), int8
        0 or a REFUSED_* reason per request row.
    """
    _check_request((entries,), fingerprints, weights)
    groups = np.empty(fingerprints.shape[0], dtype=GROUP)
    refusals = np.empty(fingerprints.shape[0], dtype=np.int8)
    n_groups = _plan_kernel(entries, fingerprints, weights, float(rtol), groups, refusals)
    return groups[:n_groups], refusals


def table_apply(entries, counts, groups, rtol, totals):
    """Forget the ``groups`` of a plan made by ``table_plan`` on these very tables."""
    _check_table(entries)
    _check_table(counts)
    _check_array(groups, GROUP, 1, "groups")
    _apply_kernel(entries, counts, groups, float(rtol), totals)


def table_entries(entries, counts):
    """Every entry with all its fields (``ENTRY_FIELDS``), in slot order."""
    _check_table(entries)
    _check_table(counts)
    used = np.flatnonzero(entries["weight"] != 0.0)
    listed = np.zeros(used.size, dtype=ENTRY_FIELDS)
    for name in ("hi", "lo", "weight"):
        listed[name] = entries[name][used]
    listed["learned"] = np.abs(entries["learned"][used])
    for i, slot in enumerate(used):
        listed[i]["rows"], listed[i]["learned_rows"], _ = _row_counts(entries, counts, slot)
    return listed
