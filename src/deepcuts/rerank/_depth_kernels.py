"""Compiled depth re-ranking (private; used by :mod:`deepcuts.rerank.depth`).

One row of scores ``s`` (one user), item arrays shared by all rows:

* evidence: items with fewer than ``floor`` training listeners are ineligible (``-inf``); the
  others are shrunk toward the row's mean eligible score ``m_u`` in proportion to their support
  (empirical Bayes, James & Stein 1961; Efron & Morris 1975):
  ``s'_ui = m_u + w_i (s_ui - m_u)`` with ``w_i = n_i / (n_i + k)``;
* a *deep* item lies at or below the row's target popularity percentile ``pct_i <= T_u``;
* the first ``m`` positions follow a slot pattern: position ``t >= 1`` (0-based) is a *deep
  slot* when ``floor((t + 1) p_u) > floor(t p_u)``, so every prefix of the list past the first
  item holds about a share ``p_u`` of deep items (a prefix quota as in FA*IR, Zehlike et al.
  2017); position 0 always takes the best match. A deep slot takes the
  best remaining deep item, any other slot the best remaining eligible item; when one kind runs
  out the other fills the slot;
* the picks get scores above every other item of the row (``top + m - t``, ``top`` the row's
  largest ``s'``), the rest keep ``s'``.

Rows with ``p_u <= 0`` are left as they are (depth 0: the neutral ranking exactly).

A block's columns are the catalogue's items or a row's *candidates* (``cand[r, j]`` the item of
column ``j``, ascending, ``-1`` pads whose scores are ``-inf``): the item arrays are read by
item id, and with ascending candidates ties break by item index as in the dense block.
:func:`depth_rows_reference` is the NumPy oracle of the compiled :func:`depth_rows`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["deep_slots", "depth_rows", "depth_rows_reference"]


@njit(inline="always")
def _insert(idx, vals, j, v):
    """Insert item ``j`` with value ``v`` into the sorted buffer (descending, ties by index)."""
    k = idx.shape[0]
    t = k - 1
    while t > 0 and vals[t - 1] < v:
        vals[t] = vals[t - 1]
        idx[t] = idx[t - 1]
        t -= 1
    vals[t] = v
    idx[t] = j


@njit(inline="always")
def _is_deep_slot(t, p):
    # the first position always holds the best match
    return t > 0 and math.floor((t + 1) * p + 1e-9) > math.floor(t * p + 1e-9)


def _depth(scores, cand, eligible, pct, weight, target, share, m, out):
    b, n_items = scores.shape
    dense = cand.shape[0] == 0
    for r in prange(b):
        row = scores[r]
        o = out[r]
        if share[r] <= 0.0:
            for j in range(n_items):
                o[j] = row[j]
            continue
        # prior: mean eligible score of the row (float64 sum)
        total = 0.0
        count = 0
        for j in range(n_items):
            v = row[j]
            if v > -np.inf and v < np.inf and eligible[j if dense else cand[r, j]]:
                total += v
                count += 1
        prior = np.float32(total / count) if count > 0 else np.float32(0.0)
        all_idx = np.full(m, -1, np.int64)
        all_val = np.full(m, -np.inf, np.float32)
        deep_idx = np.full(m, -1, np.int64)
        deep_val = np.full(m, -np.inf, np.float32)
        worst_all = -np.inf
        worst_deep = -np.inf
        top = -np.inf
        t_u = target[r]
        for j in range(n_items):
            v = row[j]
            it = j if dense else cand[r, j]
            if not (v > -np.inf and v < np.inf and eligible[it]):
                o[j] = -np.inf
                continue
            s = prior + weight[it] * (v - prior)
            o[j] = s
            if s > top:
                top = s
            if s > worst_all:
                _insert(all_idx, all_val, j, s)
                worst_all = all_val[m - 1]
            if pct[it] <= t_u and s > worst_deep:
                _insert(deep_idx, deep_val, j, s)
                worst_deep = deep_val[m - 1]
        picks = np.full(m, -1, np.int64)
        ia = 0
        idp = 0
        p = share[r]
        for t in range(m):
            want_deep = _is_deep_slot(t, p)
            c = -1
            for attempt in range(2):
                use_deep = want_deep if attempt == 0 else not want_deep
                if use_deep:
                    while idp < m and deep_idx[idp] >= 0 and _taken(picks, t, deep_idx[idp]):
                        idp += 1
                    if idp < m and deep_idx[idp] >= 0:
                        c = deep_idx[idp]
                        idp += 1
                else:
                    while ia < m and all_idx[ia] >= 0 and _taken(picks, t, all_idx[ia]):
                        ia += 1
                    if ia < m and all_idx[ia] >= 0:
                        c = all_idx[ia]
                        ia += 1
                if c >= 0:
                    break
            if c < 0:
                break
            picks[t] = c
            o[c] = np.float32(top + (m - t))


@njit(inline="always")
def _taken(picks, t, j):
    for q in range(t):
        if picks[q] == j:
            return True
    return False


# parallel over users for batches, serial for a request's few users (thread start-up costs
# more than one row). No fastmath: it assumes finite values, and -inf marks ineligible items.
_depth_parallel = njit(parallel=True, cache=True)(_depth)
_depth_serial = njit(cache=True)(_depth)

#: batches with fewer users than this run the serial kernel
SERIAL_BELOW = 8


def depth_rows(scores, eligible, pct, weight, target, share, m, candidates=None):
    """Depth re-ranking of a score block (see the module docstring).

    Parameters
    ----------
    scores : float32 (b, C)
        ``-inf`` = ineligible; ``C = n_items`` unless ``candidates`` is given.
    eligible : bool (n_items,)
        Items with enough training listeners (``n_i >= floor``).
    pct : float32 (n_items,)
        Popularity percentile of each item (fitted, in [0, 100]).
    weight : float32 (n_items,)
        Shrinkage weight ``n_i / (n_i + k)`` in [0, 1].
    target : float64 (b,)
        Target percentile ``T_u`` of each row.
    share : float64 (b,)
        Deep share ``p_u`` of each row in [0, 1]; ``<= 0`` leaves the row unchanged.
    m : int
        Slots (list positions) arranged, ``>= 1``.
    candidates : int32 (b, C), optional
        The item of each column (ascending per row, ``-1`` pads); None: column j is item j.

    Returns
    -------
    float32 (b, C): the re-ranked block.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if candidates is None:
        cand = np.empty((0, 0), np.int32)
    else:
        cand = np.ascontiguousarray(candidates, dtype=np.int32)
        if cand.shape != scores.shape:
            raise ValueError(f"candidates {cand.shape} and scores {scores.shape} differ in shape")
    out = np.empty_like(scores)
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        return out
    m = int(max(1, min(int(m), scores.shape[1])))
    kern = _depth_parallel if scores.shape[0] >= SERIAL_BELOW else _depth_serial
    kern(
        scores,
        cand,
        np.ascontiguousarray(eligible, dtype=np.bool_),
        np.ascontiguousarray(pct, dtype=np.float32),
        np.ascontiguousarray(weight, dtype=np.float32),
        np.ascontiguousarray(target, dtype=np.float64),
        np.ascontiguousarray(share, dtype=np.float64),
        m,
        out,
    )
    return out


def deep_slots(share: float, m: int) -> np.ndarray:
    """Which of the first ``m`` positions are deep slots for deep share ``share``.

    Position 0 never is: the list always starts with the best match.

    >>> deep_slots(0.5, 6).astype(int).tolist()
    [0, 1, 0, 1, 0, 1]
    >>> deep_slots(1.0, 4).astype(int).tolist()
    [0, 1, 1, 1]
    """
    t = np.arange(int(m), dtype=np.float64)
    return (t > 0) & (np.floor((t + 1) * share + 1e-9) > np.floor(t * share + 1e-9))


def depth_rows_reference(scores, eligible, pct, weight, target, share, m, candidates=None):
    """NumPy oracle of :func:`depth_rows` (plain loops over rows; tests only)."""
    scores = np.asarray(scores, dtype=np.float32)
    out = scores.copy()
    b, n_items = scores.shape
    m = int(max(1, min(int(m), n_items)))
    pct = np.asarray(pct, np.float32)
    weight = np.asarray(weight, np.float32)
    eligible = np.asarray(eligible, bool)
    for r in range(b):
        if share[r] <= 0:
            continue
        ids = np.arange(n_items) if candidates is None else np.maximum(candidates[r], 0)
        row = scores[r]
        ok = eligible[ids] & np.isfinite(row)
        prior = np.float32(row[ok].astype(np.float64).mean()) if ok.any() else np.float32(0)
        s = np.where(ok, prior + weight[ids] * (row - prior), -np.inf).astype(np.float32)
        order = np.lexsort((np.arange(n_items), -s))
        order = order[np.isfinite(s[order])]
        deep = order[pct[ids][order] <= target[r]]
        slots = deep_slots(share[r], m)
        picks: list[int] = []
        for t in range(m):
            first, second = (deep, order) if slots[t] else (order, deep)
            c = next((int(j) for j in first[:m] if j not in picks), None)
            if c is None:
                c = next((int(j) for j in second[:m] if j not in picks), None)
            if c is None:
                break
            picks.append(c)
        top = s[order[0]] if len(order) else np.float32(0)
        for t, c in enumerate(picks):
            s[c] = np.float32(float(top) + (m - t))
        out[r] = s
    return out
