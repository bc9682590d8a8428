"""A ledger of what an estimator learned: keyed fingerprints of rows, never the rows.

``Ledger`` records every learned (row, target) pair as a keyed 128-bit
fingerprint with the total weight learned for it, and checks a forget request
against it before anything is changed: a row that was never learned, was
already forgotten, or would lose more weight than it has left is refused.
When a row's weight reaches zero its fingerprint is deleted, so the ledger
keeps nothing about forgotten rows.

What the ledger is, for a compliance reader: it cannot list or reconstruct
the rows it saw, but whoever holds it (it pickles with its key) can confirm a
guessed row with ``contains``; treat it like the model, which also carries
the learned rows' influence. See ``sklunlearn._numba.fingerprint`` for the
fingerprint (NH with a 128-bit random key; distinct rows collide with
probability about 2^-128) and ``sklunlearn._numba.ledger_table`` for the
tables that count them.
"""

import secrets

import numpy as np
from scipy import sparse

from ._numba import fingerprint as _fp
from ._numba import ledger_table as _table

__all__ = ["ForgetPlan", "Ledger"]

# Round-off allowance, relative to an entry's learned weight: forgetting
# 0.1 + 0.2 of a row learned with weight 0.3 must empty it.
WEIGHT_RTOL = 1e-9

# Values per dense block when fingerprinting sparse rows (8 MiB of float64).
SPARSE_BLOCK_VALUES = 1 << 20

# Positions listed per refusal reason before "...".
MAX_POSITIONS_SHOWN = 10

_REASONS = {
    _table.REFUSED_NOT_LEARNED: "never learned or already forgotten",
    _table.REFUSED_OVER_WEIGHT: "asking to forget more weight than is left",
    _table.REFUSED_REPEATED: (
        "listed more than once, together asking to forget more weight than is left"
    ),
}


class ForgetPlan:
    """A checked forget request, to be committed with ``Ledger.apply``.

    Made by ``Ledger.plan_forget``; valid only for the ledger state it was made
    on (any later ``add``, ``apply`` or ``merge`` makes it stale). Not meant
    to be built directly.

    Parameters
    ----------
    groups : ndarray
        The table entries the request changes and the weight each loses (the
        ledger's internal record layout).
    state : object
        Token of the ledger state the plan was checked against.
    n_rows : int
        Rows of the request with positive weight.
    weight : float
        Total weight the request forgets.

    Attributes
    ----------
    n_rows : int
        Rows of the request with positive weight.
    weight : float
        Total weight the request forgets.
    """

    __slots__ = ("_groups", "_state", "n_rows", "weight")

    def __init__(self, groups, state, n_rows, weight):
        self._groups = groups
        self._state = state
        self.n_rows = n_rows
        self.weight = weight

    def __repr__(self):
        return f"ForgetPlan(n_rows={self.n_rows}, weight={self.weight!r})"


class Ledger:
    """Keyed 128-bit fingerprints of learned rows and targets, with their weight.

    Identical (row, target) pairs share one entry that counts their weight and
    rows. Rows are fingerprinted in canonical form: float64, -0.0 equal to
    0.0, the target appended as one more float64 (classifiers pass the class
    index). The key is 128 random bits from the operating system, drawn per
    instance, never derived from the data: two ledgers of the same rows store
    unrelated fingerprints.

    Parameters
    ----------
    n_features : int
        Number of features of every row.

    Attributes
    ----------
    n_features : int
        As given.
    total_weight : float
        Sum of the weight left (kept up to date incrementally, exact to
        round-off; 0.0 exactly when the ledger is empty).
    n_rows : int
        Rows with weight left, counting repeats (see Notes).

    Notes
    -----
    Counting rows. An entry counts the rows learned into it. Forgetting part of
    its weight keeps ``ceil(weight_left / mean_row_weight)`` rows (less a
    round-off margin; never more than before, at least one while weight is
    left), where ``mean_row_weight`` is the entry's learned weight over its
    learned rows. A row of weight 1 forgotten as 0.5 + 0.5 stays counted until
    the second half; three copies of weight 1 forgotten with weight 1 leave two.
    When copies of one row were learned with different weights the count is
    this estimate (the ledger cannot tell which copy a partial forget took
    weight from).

    Merging. ``merge`` adds another ledger with the same key (a ``copy`` of
    this one that learned other rows, e.g. a chunk fingerprinted elsewhere):
    fingerprints are only comparable under one key.

    Storage. Open-addressing hash tables of 32-byte structured records (see
    ``sklunlearn._numba.ledger_table``) at load between 1/4 and 1/2: 64 to
    128 bytes per distinct row, plus 64 to 128 bytes for each distinct row
    learned more than once (its row count). ``add`` reserves a record for
    every row of its batch, new or not, so learning rows again can leave the
    table sized for every row learned, repeats included (under 128 bytes per
    row learned); the tables never shrink after forgets.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.ledger import Ledger
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> y = np.array([1.0, 0.0])
    >>> ledger = Ledger(n_features=2)
    >>> ledger.add(X, y, np.ones(2))
    >>> ledger.apply(ledger.plan_forget(X[:1], y[:1], np.ones(1)))
    >>> ledger.contains(X, y)
    array([False,  True])
    >>> len(ledger), ledger.n_rows, ledger.total_weight
    (1, 1, 1.0)
    """

    def __init__(self, n_features):
        if not isinstance(n_features, (int, np.integer)) or n_features < 0:
            raise ValueError(f"n_features must be a non-negative int, got {n_features!r}.")
        self.n_features = int(n_features)
        secret = np.frombuffer(secrets.token_bytes(16), dtype=np.uint64).copy()
        self._secret = secret
        self._key = _fp.expand_key(secret, self.n_features + 1)
        self._table = _table.new_table(_table.capacity_for(0))
        self._counts = _table.new_table(_table.capacity_for(0))
        self._totals = np.zeros(1, dtype=_table.TOTALS)
        self._state = self._new_state()

    @staticmethod
    def _new_state():
        """A fresh random token: a plan is valid only for the token it was made on."""
        return secrets.randbits(64)

    def __len__(self):
        return int(self._totals[0]["entries"])

    @property
    def total_weight(self):
        """Sum of the weight left over all rows."""
        return float(self._totals[0]["weight"]) if len(self) else 0.0

    @property
    def n_rows(self):
        """Rows with weight left, counting repeats."""
        return int(self._totals[0]["rows"])

    def __repr__(self):
        return (
            f"Ledger(n_features={self.n_features}, distinct rows={len(self)}, "
            f"rows={self.n_rows}, total_weight={self.total_weight!r})"
        )

    def _fingerprints(self, X, y):
        """Checked fingerprints of ``X`` and ``y``."""
        is_sparse = sparse.issparse(X)
        if (
            not (is_sparse or isinstance(X, np.ndarray))
            or X.ndim != 2
            or X.shape[1] != self.n_features
        ):
            shape = getattr(X, "shape", None)
            raise ValueError(f"X must have shape (n, {self.n_features}), got {shape}.")
        y = np.ascontiguousarray(y, dtype=np.float64)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
        if X.dtype != np.float64:
            raise ValueError(f"X must be a float64 array, got {X.dtype}.")
        if is_sparse:
            return self._sparse_fingerprints(X.tocsr(), y)
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(
                X
            )  # a strided view (a pandas slice): the kernels read rows
        return _fp.fingerprint_rows(X, y, self._key)

    def _sparse_fingerprints(self, X, y):
        """Fingerprints of a CSR matrix's rows, densified one block at a time.

        A row is fingerprinted in its dense canonical form, so a sparse and a
        dense copy of it are the same row.
        """
        fingerprints = np.empty((X.shape[0], 2), dtype=np.uint64)
        size = max(1, SPARSE_BLOCK_VALUES // max(self.n_features, 1))
        for start in range(0, X.shape[0], size):
            stop = min(start + size, X.shape[0])
            fingerprints[start:stop] = _fp.fingerprint_rows(
                X[start:stop].toarray(), y[start:stop], self._key
            )
        return fingerprints

    @staticmethod
    def _weights(weights, n):
        """``weights`` as a contiguous float64 array of ``n`` finite values >= 0."""
        if weights is None:
            return np.ones(n)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {weights.shape}.")
        _table.check_weights(weights)
        return weights

    def _reserve(self, n_new):
        """Grow both tables so that ``n_new`` more records keep them under MAX_LOAD."""
        totals = self._totals[0]
        for name, used in (("_table", totals["entries"]), ("_counts", totals["counted"])):
            capacity = _table.capacity_for(int(used) + n_new)
            if capacity > getattr(self, name).shape[0]:
                setattr(self, name, _table.rehash(getattr(self, name), capacity))

    def _shrink_counts(self):
        """Shrink the counts table back after ``_reserve`` made room for a batch.

        Most batches repeat no row: then the reserved table is empty and is
        replaced without a pass over it.
        """
        capacity = _table.capacity_for(int(self._totals[0]["counted"]))
        if capacity < self._counts.shape[0]:
            if self._totals[0]["counted"] == 0:
                self._counts = _table.new_table(capacity)
            else:
                self._counts = _table.rehash(self._counts, capacity)

    def add(self, X, y, weights=None):
        """Learn rows: add their weight to their fingerprints' entries, in place.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, n_features), float64
            Rows, finite.
        y : ndarray of shape (n,), float64
            Targets, finite.
        weights : ndarray of shape (n,), default=None
            Non-negative weights; None means ones. Zero-weight rows are not
            recorded.
        """
        fingerprints = self._fingerprints(X, y)
        weights = self._weights(weights, X.shape[0])
        self._reserve(int(np.count_nonzero(weights)))
        try:
            _table.table_add(self._table, self._counts, fingerprints, weights, self._totals)
        finally:
            self._shrink_counts()
        self._state = self._new_state()

    def plan_forget(self, X, y, weights=None):
        """Check a forget request without changing anything.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, n_features), float64
            Rows to forget.
        y : ndarray of shape (n,), float64
            Their targets.
        weights : ndarray of shape (n,), default=None
            Weight to forget per row; None means ones. Zero-weight rows are
            accepted and ignored.

        Returns
        -------
        plan : ForgetPlan
            To commit with ``apply`` on this ledger, before it changes.

        Raises
        ------
        ValueError
            When a row with positive weight was never learned, was already
            forgotten, or would lose more weight than it has left (the copies
            of a row listed in one request count together). The message gives
            how many rows and their positions in the request, by reason.
        """
        fingerprints = self.fingerprint(X, y)
        weights = self._weights(weights, X.shape[0])
        return self._plan(fingerprints, weights, rows=(X, y))

    def plan_forget_fingerprints(self, fingerprints, weights=None):
        """:meth:`plan_forget` for rows fingerprinted already (by :meth:`fingerprint`).

        The rows may have been fingerprinted elsewhere (on the workers of a
        cluster) by a :meth:`spawn` of this ledger; positions in a refusal's
        message are positions in ``fingerprints``.

        Parameters
        ----------
        fingerprints : ndarray of shape (n, 2), uint64
            Fingerprints of the rows to forget, made with this ledger's key.
        weights : ndarray of shape (n,), default=None
            Weight to forget per row; None means ones. Zero-weight rows are
            accepted and ignored.

        Returns
        -------
        plan : ForgetPlan
            To commit with ``apply`` on this ledger, before it changes.

        Raises
        ------
        ValueError
            When ``fingerprints`` is not of shape (n, 2), or for the reasons
            :meth:`plan_forget` gives.
        """
        fingerprints = np.ascontiguousarray(fingerprints, dtype=np.uint64)
        if fingerprints.ndim != 2 or fingerprints.shape[1] != 2:
            raise ValueError(
                f"fingerprints must have shape (n, 2), got {fingerprints.shape}."
            )
        weights = self._weights(weights, fingerprints.shape[0])
        return self._plan(fingerprints, weights)

    def _plan(self, fingerprints, weights, rows=None):
        """The plan of checked ``fingerprints``; ``rows``, the ``(X, y)`` they are
        of, if known, let a refusal's message advise on rows learned as float32."""
        groups, refusals = _table.table_plan(
            self._table, fingerprints, weights, WEIGHT_RTOL
        )
        if refusals.any():
            not_learned = np.flatnonzero(refusals == _table.REFUSED_NOT_LEARNED)
            advice = None
            if rows is not None and not_learned.size:
                advice = self._float32_advice(*rows, not_learned)
            raise ValueError(_refusal_message(refusals, advice))
        return ForgetPlan(
            groups, self._state, int(groups["rows"].sum()), float(groups["weight"].sum())
        )

    def _float32_advice(self, X, y, positions):
        """Advice when the rows at ``positions`` were learned as float32, else None.

        The ledger sees every row as float64, so a float64 copy of a row an
        estimator learned in float32 is another row; rounded to float32 it is
        the learned one.
        """
        X = X.tocsr() if sparse.issparse(X) else X
        y = np.asarray(y, dtype=np.float64)[positions]
        with np.errstate(over="ignore"):  # out of float32's range: not such a row
            rounded = X[positions].astype(np.float32).astype(np.float64)
            y_rounded = y.astype(np.float32).astype(np.float64)
        values = rounded.data if sparse.issparse(rounded) else rounded
        if not (np.isfinite(values).all() and np.isfinite(y_rounded).all()):
            return None
        for targets, what in ((y, "X"), (y_rounded, "X and y")):
            if self.contains(rounded, targets).all():
                return (
                    f"Rounded to float32 they are rows that were learned: pass {what} "
                    "as float32 (e.g. X.astype(np.float32)), as they were learned"
                )
        return None

    def apply(self, plan):
        """Commit a plan made by ``plan_forget`` on this very ledger state, in place.

        Entries whose weight reaches zero (within a relative 1e-9 of their
        learned weight) are deleted.

        Parameters
        ----------
        plan : ForgetPlan
            A plan made by :meth:`plan_forget` or
            :meth:`plan_forget_fingerprints` on this ledger, in its current
            state.

        Raises
        ------
        ValueError
            When ``plan`` was made on another ledger or an earlier state of
            this one (nothing is changed).
        """
        if not isinstance(plan, ForgetPlan) or plan._state != self._state:
            raise ValueError(
                "This forget plan was not made on this ledger in its current state; "
                "make a new one with plan_forget. Nothing was changed."
            )
        _table.table_apply(
            self._table, self._counts, plan._groups, WEIGHT_RTOL, self._totals
        )
        if len(self) == 0:
            self._totals[0]["weight"] = 0.0
        self._state = self._new_state()

    def contains(self, X, y):
        """Whether each row (with its target) was learned and has weight left.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, n_features), float64
            Rows, as the estimator validated them.
        y : ndarray of shape (n,), float64
            Their targets.

        Returns
        -------
        found : ndarray of shape (n,), bool
            True where the row with its target has weight left.
        """
        return _table.table_contains(self._table, self._fingerprints(X, y))

    def fingerprint(self, X, y):
        """Keyed fingerprints of rows and targets, as :meth:`add` would record them.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, n_features), float64
            Rows, as the estimator validated them.
        y : ndarray of shape (n,), float64
            Their targets.

        Returns
        -------
        fingerprints : ndarray of shape (n, 2), uint64
            One keyed 128-bit fingerprint per row, as two 64-bit words.
        """
        return self._fingerprints(X, y)

    def spawn(self):
        """An empty ledger with this one's key: what it learns can be merged back.

        Cheap (no entries are copied), so it can be sent to the workers of a
        cluster to fingerprint their chunks of rows; ``merge`` its entries, or
        plan with :meth:`plan_forget_fingerprints`, on this ledger.
        """
        clone = object.__new__(Ledger)
        clone.__dict__.update(self.__dict__)
        clone._table = _table.new_table(_table.capacity_for(0))
        clone._counts = _table.new_table(_table.capacity_for(0))
        clone._totals = np.zeros(1, dtype=_table.TOTALS)
        clone._state = self._new_state()
        return clone

    def copy(self):
        """An independent copy with the same key (fingerprints stay comparable)."""
        clone = object.__new__(Ledger)
        clone.__dict__.update(self.__dict__)
        clone._table = self._table.copy()
        clone._counts = self._counts.copy()
        clone._totals = self._totals.copy()
        return clone

    def merge(self, other):
        """Add every entry of ``other``, a ledger with the same key, in place.

        Parameters
        ----------
        other : Ledger
            Made by ``copy()`` of this ledger (or of a common ancestor) and
            then fed other rows.

        Raises
        ------
        ValueError
            When ``other`` has another key or feature count: its fingerprints
            are not comparable.
        """
        if not isinstance(other, Ledger) or not np.array_equal(other._secret, self._secret):
            raise ValueError(
                "Can only merge a ledger with the same key (a copy of this one); "
                "fingerprints under different keys are not comparable."
            )
        self._reserve(len(other))
        try:
            _table.table_merge(
                self._table, self._counts, self._totals, other._table, other._counts
            )
        finally:
            self._shrink_counts()
        self._state = self._new_state()


def _refusal_message(refusals, advice=None):
    """The ValueError text for a refused request: counts and positions by reason,
    then ``advice`` when there is some."""
    refused = np.flatnonzero(refusals)
    parts = []
    for reason, text in _REASONS.items():
        positions = np.flatnonzero(refusals == reason)
        if positions.size:
            shown = ", ".join(str(p) for p in positions[:MAX_POSITIONS_SHOWN])
            more = ", ..." if positions.size > MAX_POSITIONS_SHOWN else ""
            rows, where = (
                ("row", "position") if positions.size == 1 else ("rows", "positions")
            )
            parts.append(f"{positions.size} {rows} {text} ({where} {shown}{more})")
    return (
        f"Cannot forget {refused.size} of the {refusals.size} rows requested: "
        + "; ".join(parts)
        + ("" if advice is None else f". {advice}")
        + ". Nothing was changed."
    )
