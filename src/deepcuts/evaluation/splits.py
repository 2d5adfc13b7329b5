"""Train/test splits of an interaction matrix.

Every splitter takes an :class:`~deepcuts.data.Interactions` and returns ``(train, test)``: two
``Interactions`` with the *same* user and item maps (so row ``u`` / column ``i`` mean the same
listener / artist in both) whose non-zeros partition the original ones. Timestamps, when
present, follow their entries. All random choices take a ``random_state``; the work is
vectorised over the non-zeros (no Python loop over users).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError

__all__ = [
    "SPLITS",
    "leave_last_out_split",
    "random_split",
    "split",
    "user_holdout_split",
]


def _check_fraction(test_fraction: float) -> float:
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise DeepcutsError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return f


def _partition(x: Interactions, is_test: np.ndarray) -> tuple[Interactions, Interactions]:
    """Split the stored entries of ``x`` by the boolean mask ``is_test`` (aligned with data)."""
    m = x.matrix
    rows = np.repeat(np.arange(x.n_users, dtype=np.int32), np.diff(m.indptr))
    out = []
    for mask in (~is_test, is_test):
        part = sp.csr_matrix(
            (m.data[mask], (rows[mask], m.indices[mask])), shape=m.shape, dtype=np.float32
        )
        part.sort_indices()
        # entries are unique and already in row-major, column-sorted order, so the timestamps
        # selected by the same mask stay aligned with ``part.data``
        ts = None if x.timestamps is None else np.asarray(x.timestamps)[mask]
        out.append(x.with_matrix(part, timestamps=ts))
    return out[0], out[1]


def random_split(
    x: Interactions, *, test_fraction: float = 0.15, random_state: int = 0
) -> tuple[Interactions, Interactions]:
    """Mask a random ``test_fraction`` of all (user, item) pairs into the test set.

    This is the protocol of the founding study (15% of the non-zeros masked). Users may end up
    with nothing in train or nothing in test.

    Parameters
    ----------
    x : Interactions
        Shape (n_users, n_items).
    test_fraction : float, default=0.15
        Fraction of stored pairs moved to test (``round(test_fraction * nnz)`` of them).
    random_state : int, default=0

    Returns
    -------
    train, test : Interactions
        Same shape and id maps as ``x``.

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(30, 12, random_state=0)
    >>> train, test = random_split(x, test_fraction=0.2, random_state=0)
    >>> train.nnz + test.nnz == x.nnz, test.nnz == round(0.2 * x.nnz)
    (True, True)
    """
    f = _check_fraction(test_fraction)
    rng = np.random.default_rng(random_state)
    n_test = int(round(f * x.nnz))
    is_test = np.zeros(x.nnz, dtype=bool)
    is_test[rng.choice(x.nnz, size=n_test, replace=False)] = True
    return _partition(x, is_test)


def _rank_within_rows(indptr: np.ndarray, key: np.ndarray) -> np.ndarray:
    """0-based rank of each stored entry within its row when ordered by ``key`` ascending."""
    n_rows = len(indptr) - 1
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    order = np.lexsort((key, rows))  # by row, then key
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - np.repeat(indptr[:-1], np.diff(indptr))
    return rank


def user_holdout_split(
    x: Interactions,
    *,
    test_fraction: float = 0.2,
    min_items: int = 2,
    random_state: int = 0,
) -> tuple[Interactions, Interactions]:
    """Hold out a random ``test_fraction`` of each user's items.

    A user with ``n >= min_items`` items gets ``clip(round(test_fraction * n), 1, n - 1)`` of
    them (rounded half up: ``0.35 * 90 = 31.5`` gives 32) (chosen uniformly at random) in test, so every such user keeps at least one item in
    train and has at least one in test. Users with fewer than ``min_items`` items keep all of
    them in train.

    Parameters
    ----------
    x : Interactions
        Shape (n_users, n_items).
    test_fraction : float, default=0.2
    min_items : int, default=2
        Users with fewer items are not split (must be >= 2).
    random_state : int, default=0

    Returns
    -------
    train, test : Interactions

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(30, 12, random_state=0)
    >>> train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    >>> bool((train.matrix.getnnz(axis=1) >= 1).all()), train.nnz + test.nnz == x.nnz
    (True, True)
    """
    f = _check_fraction(test_fraction)
    if int(min_items) < 2:
        raise DeepcutsError(f"min_items must be >= 2, got {min_items!r}")
    rng = np.random.default_rng(random_state)
    m = x.matrix
    n = np.diff(m.indptr)
    # round half up so the count does not depend on NumPy's banker's rounding
    # f * n in floating point misses exact halves (0.35 * 90 = 31.499999...): round it to 9
    # decimals first, so that the documented half-up rule holds (issue 14: 32, not 31)
    n_test = np.clip(np.floor(np.round(f * n, 9) + 0.5), 1, np.maximum(n - 1, 1)).astype(np.int64)
    n_test[n < int(min_items)] = 0
    rank = _rank_within_rows(m.indptr, rng.random(x.nnz))
    is_test = rank < np.repeat(n_test, n)
    return _partition(x, is_test)


def leave_last_out_split(
    x: Interactions, *, n_last: int = 1, min_items: int = 2, random_state: int = 0
) -> tuple[Interactions, Interactions]:
    """Put each user's ``n_last`` most recently played items in test (needs timestamps).

    Recency is the timestamp of a pair's last listen (``Interactions.timestamps``). Ties are
    broken at random (seeded). A user keeps at least one item in train: users with fewer than
    ``max(min_items, n_last + 1)`` items keep everything in train.

    Parameters
    ----------
    x : Interactions
        Shape (n_users, n_items), with ``timestamps``.
    n_last : int, default=1
    min_items : int, default=2
    random_state : int, default=0

    Returns
    -------
    train, test : Interactions

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["a", "a", "a", "b"], "item": ["x", "y", "z", "x"],
    ...                    "count": [1, 2, 3, 4], "time": [10, 30, 20, 5]})
    >>> train, test = leave_last_out_split(Interactions.from_frame(df, time_col="time"))
    >>> test.to_frame()[["user", "item"]].values.tolist()
    [['a', 'y']]
    """
    if x.timestamps is None:
        raise DeepcutsError(
            "leave-last-out needs timestamps, but these interactions have none; read them with "
            "a timestamped reader (Last.fm 1K, ListenBrainz, or a CSV with a time column) or use "
            "the user-holdout split"
        )
    if int(n_last) < 1:
        raise DeepcutsError(f"n_last must be >= 1, got {n_last!r}")
    rng = np.random.default_rng(random_state)
    m = x.matrix
    n = np.diff(m.indptr)
    ts = np.asarray(x.timestamps, dtype=np.float64)
    # descending time; random tie-break in [0, 0.5) seconds keeps distinct times in order
    key = -ts + rng.random(x.nnz) * 0.5
    rank = _rank_within_rows(m.indptr, key)
    n_test = np.where(n >= max(int(min_items), int(n_last) + 1), int(n_last), 0)
    is_test = rank < np.repeat(n_test, n)
    return _partition(x, is_test)


#: splitter name -> function (names used by ``deepcuts evaluate --split``)
SPLITS: dict[str, Callable[..., tuple[Interactions, Interactions]]] = {
    "random": random_split,
    "user-holdout": user_holdout_split,
    "leave-last-out": leave_last_out_split,
}


def split(x: Interactions, method: str = "user-holdout", **kw) -> tuple[Interactions, Interactions]:
    """Split by name: ``"random"``, ``"user-holdout"`` or ``"leave-last-out"``.

    Keyword arguments go to the splitter (``test_fraction`` is ignored by leave-last-out).
    """
    if method not in SPLITS:
        raise DeepcutsError(f"unknown split {method!r}; choose one of {sorted(SPLITS)}")
    if method == "leave-last-out":
        kw.pop("test_fraction", None)
    return SPLITS[method](x, **kw)
