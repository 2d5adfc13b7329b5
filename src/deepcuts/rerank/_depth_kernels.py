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
import scipy.sparse as sp
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


@njit(inline="always")
def _shrink_row(row, cand, r, eligible, pct, weight, t_u, o, all_idx, all_val, deep_idx, deep_val):
    """Shrunk scores ``s'`` of row ``r`` into ``o`` (``-inf`` = ineligible), the best
    ``len(all_idx)`` columns into ``all_idx``/``all_val`` and the best ``len(deep_idx)`` columns at
    or under the target percentile ``t_u`` into ``deep_idx``/``deep_val`` (sorted buffers).
    Returns the row's top ``s'``. ``cand`` of shape (0, 0) means column j is item j."""
    n_items = row.shape[0]
    dense = cand.shape[0] == 0
    # prior: mean eligible score of the row (float64 sum)
    total = 0.0
    count = 0
    for j in range(n_items):
        v = row[j]
        if v > -np.inf and v < np.inf and eligible[j if dense else cand[r, j]]:
            total += v
            count += 1
    prior = np.float32(total / count) if count > 0 else np.float32(0.0)
    m = all_idx.shape[0]
    pool = deep_idx.shape[0]
    worst_all = -np.inf
    worst_deep = -np.inf
    top = -np.inf
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
            worst_deep = deep_val[pool - 1]
    return top


@njit(inline="always")
def _taken(picks, t, j):
    for q in range(t):
        if picks[q] == j:
            return True
    return False


@njit(inline="always")
def _fill_slots(all_idx, deep, p, top, o):
    """Arrange one row's list of ``m = len(all_idx)`` slots in place.

    Slot ``t`` takes the next not yet picked column of ``deep`` when it is a deep slot
    (:func:`_is_deep_slot`) and of ``all_idx`` otherwise, falling back to the other list when
    its own is used up (``-1`` ends a list); the picked columns get ``top + (m - t)`` so they
    rank first, in slot order.
    """
    m = all_idx.shape[0]
    n_deep = deep.shape[0]
    picks = np.full(m, -1, np.int64)
    ia = 0
    idp = 0
    for t in range(m):
        want_deep = _is_deep_slot(t, p)
        c = -1
        for attempt in range(2):
            use_deep = want_deep if attempt == 0 else not want_deep
            if use_deep:
                while idp < n_deep and deep[idp] >= 0 and _taken(picks, t, deep[idp]):
                    idp += 1
                if idp < n_deep and deep[idp] >= 0:
                    c = deep[idp]
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


def _depth(scores, cand, eligible, pct, weight, target, share, m, out):
    b, n_items = scores.shape
    for r in prange(b):
        row = scores[r]
        o = out[r]
        if share[r] <= 0.0:
            for j in range(n_items):
                o[j] = row[j]
            continue
        all_idx = np.full(m, -1, np.int64)
        all_val = np.full(m, -np.inf, np.float32)
        deep_idx = np.full(m, -1, np.int64)
        deep_val = np.full(m, -np.inf, np.float32)
        top = _shrink_row(row, cand, r, eligible, pct, weight, target[r], o,
                          all_idx, all_val, deep_idx, deep_val)  # fmt: skip
        _fill_slots(all_idx, deep_idx, share[r], top, o)


# parallel over users for batches, serial for a request's few users (thread start-up costs
# more than one row). No fastmath: it assumes finite values, and -inf marks ineligible items.
_depth_parallel = njit(parallel=True, cache=True)(_depth)
_depth_serial = njit(cache=True)(_depth)

#: batches with fewer users than this run the serial kernel
SERIAL_BELOW = 8


def _candidates(candidates, scores):
    """The kernels' ``cand`` argument: (b, C) int32 item ids, or (0, 0) for a dense block."""
    if candidates is None:
        return np.empty((0, 0), np.int32)
    cand = np.ascontiguousarray(candidates, dtype=np.int32)
    if cand.shape != scores.shape:
        raise ValueError(f"candidates {cand.shape} and scores {scores.shape} differ in shape")
    return cand


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
    cand = _candidates(candidates, scores)
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


# ---------------------------------------------------------------------------- tail-first + taste
#
# deep="tail-first": the same evidence (floor, shrinkage ``s'``) and slot pattern, but a deep slot
# takes the best remaining item of a *pool* of the row's ``P`` best deep items by a blend of the
# base score and the listener's taste evidence:
#
#   e_ui = 1/|L_i| sum_{v in L_i} |H_v ∩ H_u| / sqrt(|H_v| |H_u|)
#
# (user-kNN evidence, Herlocker et al. 1999: the mean cosine between the histories of the item's
# training listeners ``L_i``, at most 32 of them, and the listener's history ``H_u``), and
#
#   b_ui = (1 - tau) (s'_ui - min s') / (max s' - min s') + tau (e_ui - min e) / (max e - min e)
#
# with min / max over the pool. Where the catalogue's items carry content (tags), the evidence
# term is ``(1 - c) minmax(e) + c minmax(g)`` with ``g_ui`` the cosine between the item's tf-idf
# tag vector and the listener's profile (their items' vectors weighted by ``log(1 + plays)``):
# a rare item's tags are evidence that does not depend on its few listeners.
# ``tau = 0`` orders the deep slots by ``s'`` alone, as
# :func:`depth_rows`. The other slots take the best remaining eligible items by ``s'``, and the
# items not picked keep ``s'`` (shrinkage is evidence for the whole ranking; its strength is
# picked on validation).


def _overlap(r, h_ptr, h_idx, it_ptr, it_idx, n_users):
    """``|H_v ∩ H_u|`` for every training user ``v`` (row ``r`` = listener ``u``), through the
    inverted index (item -> its training listeners): one pass over the listeners of the
    listener's items, instead of one over the histories of every candidate's listeners."""
    common = np.zeros(n_users, np.int32)
    for k in range(h_ptr[r], h_ptr[r + 1]):
        j = h_idx[k]
        for q in range(it_ptr[j], it_ptr[j + 1]):
            common[it_idx[q]] += 1
    return common


def _evidence_one(j, common, h_len, lis_ptr, lis_idx, tr_ptr):
    """e_uj for one item: mean cosine of its sampled listeners' histories with the row's."""
    a, z = lis_ptr[j], lis_ptr[j + 1]
    if z == a or h_len == 0:
        return np.float32(0.0)
    acc = 0.0
    for q in range(a, z):
        v = lis_idx[q]
        c = common[v]
        if c > 0:
            acc += c / math.sqrt((tr_ptr[v + 1] - tr_ptr[v]) * h_len)
    return np.float32(acc / (z - a))


def _profile(r, h_ptr, h_idx, h_val, c_ptr, c_idx, c_val, n_feat):
    """The row's content profile: its items' feature vectors weighted by ``log(1 + plays)``,
    unit length (all zeros when none of its items has features)."""
    prof = np.zeros(n_feat, np.float32)
    for k in range(h_ptr[r], h_ptr[r + 1]):
        j = h_idx[k]
        w = math.log1p(max(h_val[k], 0.0))
        for q in range(c_ptr[j], c_ptr[j + 1]):
            prof[c_idx[q]] += w * c_val[q]
    norm = math.sqrt(float(np.sum(prof * prof)))
    if norm > 0:
        prof /= norm
    return prof


def _content_one(j, prof, c_ptr, c_idx, c_val):
    """g_uj: cosine of item ``j``'s (unit) feature vector with the row's unit profile."""
    acc = 0.0
    for q in range(c_ptr[j], c_ptr[j + 1]):
        acc += c_val[q] * prof[c_idx[q]]
    return np.float32(acc)


_overlap_jit = njit(inline="always")(_overlap)
_evidence_one_jit = njit(inline="always")(_evidence_one)
_profile_jit = njit(inline="always")(_profile)
_content_one_jit = njit(inline="always")(_content_one)


@njit(inline="always")
def _minmax(v, n):
    """``v[:n]`` scaled to [0, 1] in place (all zeros when constant)."""
    lo = np.float32(np.inf)
    hi = np.float32(-np.inf)
    for q in range(n):
        lo = min(lo, v[q])
        hi = max(hi, v[q])
    for q in range(n):
        v[q] = (v[q] - lo) / (hi - lo) if hi > lo else np.float32(0.0)


def _tail_first(scores, cand, eligible, pct, weight, target, share, m, pool, taste,
                h_ptr, h_idx, h_val, lis_ptr, lis_idx, tr_ptr, it_ptr, it_idx,
                c_ptr, c_idx, c_val, n_feat, mix, out):  # fmt: skip
    b, n_items = scores.shape
    dense = cand.shape[0] == 0
    for r in prange(b):
        row = scores[r]
        o = out[r]
        if share[r] <= 0.0:
            for j in range(n_items):
                o[j] = row[j]
            continue
        all_idx = np.full(m, -1, np.int64)
        all_val = np.full(m, -np.inf, np.float32)
        deep_idx = np.full(pool, -1, np.int64)
        deep_val = np.full(pool, -np.inf, np.float32)
        top = _shrink_row(row, cand, r, eligible, pct, weight, target[r], o,
                          all_idx, all_val, deep_idx, deep_val)  # fmt: skip
        n_deep = 0
        while n_deep < pool and deep_idx[n_deep] >= 0:
            n_deep += 1
        # blend of base score and taste evidence over the deep pool
        blend = np.empty(n_deep, np.float32)
        if n_deep > 0:
            ev = np.zeros(n_deep, np.float32)
            h_len = h_ptr[r + 1] - h_ptr[r]
            if taste > 0.0 and h_len > 0:
                common = _overlap_jit(r, h_ptr, h_idx, it_ptr, it_idx, tr_ptr.shape[0] - 1)
                for q in range(n_deep):  # the pool holds columns: evidence is by item id
                    jq = deep_idx[q] if dense else cand[r, deep_idx[q]]
                    ev[q] = _evidence_one_jit(jq, common, h_len, lis_ptr, lis_idx, tr_ptr)
                _minmax(ev, n_deep)
                if mix > 0.0 and n_feat > 0:
                    prof = _profile_jit(r, h_ptr, h_idx, h_val, c_ptr, c_idx, c_val, n_feat)
                    cv = np.zeros(n_deep, np.float32)
                    for q in range(n_deep):
                        jq = deep_idx[q] if dense else cand[r, deep_idx[q]]
                        cv[q] = _content_one_jit(jq, prof, c_ptr, c_idx, c_val)
                    _minmax(cv, n_deep)
                    for q in range(n_deep):
                        ev[q] = np.float32((1.0 - mix) * ev[q] + mix * cv[q])
            s_hi = deep_val[0]
            s_lo = deep_val[n_deep - 1]
            for q in range(n_deep):
                bs = (deep_val[q] - s_lo) / (s_hi - s_lo) if s_hi > s_lo else np.float32(1.0)
                blend[q] = np.float32((1.0 - taste) * bs + taste * ev[q])
        # the pool by blend, ties by pool order (a stable sort)
        order = np.argsort(-blend, kind="mergesort")
        _fill_slots(all_idx, deep_idx[:n_deep][order], share[r], top, o)


_tail_first_parallel = njit(parallel=True, cache=True)(_tail_first)
_tail_first_serial = njit(cache=True)(_tail_first)


def _evidence_rows(items, h_ptr, h_idx, lis_ptr, lis_idx, tr_ptr, it_ptr, it_idx, out):
    for r in prange(items.shape[0]):
        common = _overlap_jit(r, h_ptr, h_idx, it_ptr, it_idx, tr_ptr.shape[0] - 1)
        h_len = h_ptr[r + 1] - h_ptr[r]
        for q in range(items.shape[1]):
            j = items[r, q]
            if j >= 0:
                out[r, q] = _evidence_one_jit(j, common, h_len, lis_ptr, lis_idx, tr_ptr)


_evidence_rows_jit = njit(parallel=True, cache=True)(_evidence_rows)


def _csr_arrays(m):
    return (np.ascontiguousarray(m.indptr, dtype=np.int64),
            np.ascontiguousarray(m.indices, dtype=np.int32))  # fmt: skip


def taste_evidence(items, history, listeners, train, item_users=None):
    """Taste evidence ``e_ui`` of items for listeners (compiled, parallel over rows).

    Parameters
    ----------
    items : int (b, c)
        Item indices per row (-1 = none: evidence 0).
    history : csr (b, n_items)
        The listeners' histories ``H_u`` (binary use of the pattern).
    listeners : csr (n_items, n_users)
        The sampled training listeners ``L_i`` of each item (pattern only).
    train : csr (n_users, n_items)
        Training histories ``H_v``.
    item_users : csr (n_items, n_users), optional
        ``train`` transposed (every item's training listeners); computed when not given.

    Returns
    -------
    float32 (b, c)
    """
    items = np.ascontiguousarray(items, dtype=np.int64)
    out = np.zeros(items.shape, np.float32)
    if items.size == 0:
        return out
    h_ptr, h_idx = _csr_arrays(history)
    lis_ptr, lis_idx = _csr_arrays(listeners)
    tr_ptr, _ = _csr_arrays(train)
    it_ptr, it_idx = _csr_arrays(sp.csr_matrix(train.T) if item_users is None else item_users)
    _evidence_rows_jit(items, h_ptr, h_idx, lis_ptr, lis_idx, tr_ptr, it_ptr, it_idx, out)
    return out


def taste_evidence_reference(items, history, listeners, train):
    """NumPy oracle of :func:`taste_evidence` (set arithmetic; tests only)."""
    items = np.asarray(items, dtype=np.int64)
    out = np.zeros(items.shape, np.float32)
    for r in range(items.shape[0]):
        h = set(history.indices[history.indptr[r] : history.indptr[r + 1]].tolist())
        for q, j in enumerate(items[r]):
            who = listeners.indices[listeners.indptr[j] : listeners.indptr[j + 1]] if j >= 0 else []
            if not len(who) or not h:
                continue
            sims = []
            for v in who:
                hv = set(train.indices[train.indptr[v] : train.indptr[v + 1]].tolist())
                sims.append(len(hv & h) / math.sqrt(len(hv) * len(h)) if hv else 0.0)
            out[r, q] = np.float32(np.mean(sims))
    return out


def tail_first_rows(scores, eligible, pct, weight, target, share, m, pool, taste, history,
                    listeners, train, item_users=None, candidates=None, content=None,
                    mix=0.0):  # fmt: skip
    """Tail-first depth re-ranking with taste evidence (see the comment above the kernel).

    Parameters as :func:`depth_rows`, and
    pool : int
        Deep items considered for the deep slots (the ``pool`` best deep items by ``s'``).
    taste : float in [0, 1]
        Weight ``tau`` of the taste evidence in the deep slots' blend.
    history, listeners, train, item_users : csr
        As :func:`taste_evidence`; ``history`` has the ``b`` rows of ``scores``.
    candidates : int32 (b, C), optional
        The item of each column, as in :func:`depth_rows`.
    content : csr (n_items, n_features), optional
        Unit-length item feature vectors (tf-idf tags); rows without features are empty.
    mix : float in [0, 1]
        Share ``c`` of the evidence term given to the content similarity (with ``content``).
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    cand = _candidates(candidates, scores)
    out = np.empty_like(scores)
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        return out
    m = int(max(1, min(int(m), scores.shape[1])))
    pool = int(max(m, min(int(pool), scores.shape[1])))
    h_ptr, h_idx = _csr_arrays(history)
    lis_ptr, lis_idx = _csr_arrays(listeners)
    tr_ptr, _ = _csr_arrays(train)
    it_ptr, it_idx = _csr_arrays(sp.csr_matrix(train.T) if item_users is None else item_users)
    h_val = np.ascontiguousarray(history.data, dtype=np.float32)
    if content is None or mix <= 0:
        c_ptr, c_idx, c_val, n_feat = _NO_PTR, _NO_IDX, _NO_VAL, 0
    else:
        c_ptr, c_idx = _csr_arrays(content)
        c_val, n_feat = np.ascontiguousarray(content.data, dtype=np.float32), content.shape[1]
    kern = _tail_first_parallel if scores.shape[0] >= SERIAL_BELOW else _tail_first_serial
    kern(
        scores,
        cand,
        np.ascontiguousarray(eligible, dtype=np.bool_),
        np.ascontiguousarray(pct, dtype=np.float32),
        np.ascontiguousarray(weight, dtype=np.float32),
        np.ascontiguousarray(target, dtype=np.float64),
        np.ascontiguousarray(share, dtype=np.float64),
        m,
        pool,
        float(taste),
        h_ptr, h_idx, h_val, lis_ptr, lis_idx, tr_ptr, it_ptr, it_idx,
        c_ptr, c_idx, c_val, int(n_feat), float(mix),
        out,
    )  # fmt: skip
    return out


_NO_PTR = np.zeros(1, np.int64)
_NO_IDX = np.zeros(0, np.int32)
_NO_VAL = np.zeros(0, np.float32)


def content_similarity_reference(items, history, content):
    """NumPy oracle of the content evidence ``g_ui`` (tests only): cosine of each item's unit
    feature vector with the row's profile, ``sum_j log(1 + plays_uj) c_j`` scaled to unit length."""
    items = np.asarray(items, dtype=np.int64)
    c = sp.csr_matrix(content, dtype=np.float64)
    h = sp.csr_matrix(history, dtype=np.float64)
    w = sp.csr_matrix((np.log1p(np.maximum(h.data, 0)), h.indices, h.indptr), shape=h.shape)
    prof = np.asarray(w @ c.toarray())
    norm = np.linalg.norm(prof, axis=1, keepdims=True)
    prof = np.where(norm > 0, prof / np.where(norm > 0, norm, 1), 0)
    dense = c.toarray()
    out = np.zeros(items.shape, np.float32)
    for r in range(items.shape[0]):
        ok = items[r] >= 0
        out[r, ok] = dense[items[r, ok]] @ prof[r]
    return out


def tail_first_rows_reference(scores, eligible, pct, weight, target, share, m, pool, taste,
                              history, listeners, train, candidates=None, content=None,
                              mix=0.0):  # fmt: skip
    """NumPy oracle of :func:`tail_first_rows` (plain loops over rows; tests only)."""
    scores = np.asarray(scores, dtype=np.float32)
    out = scores.copy()
    b, n_items = scores.shape
    m = int(max(1, min(int(m), n_items)))
    pool = int(max(m, min(int(pool), n_items)))
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
        deep = order[pct[ids][order] <= target[r]][:pool]
        blend = np.zeros(len(deep), np.float32)
        if len(deep):
            be = np.zeros(len(deep), np.float32)
            if taste > 0 and history[r].nnz:
                ev = taste_evidence_reference(ids[deep][None, :], history[r], listeners, train)[0]
                be = _minmax_reference(ev)
                if content is not None and mix > 0:
                    g = content_similarity_reference(ids[deep][None, :], history[r], content)[0]
                    be = ((1.0 - mix) * be + mix * _minmax_reference(g)).astype(np.float32)
            sv = s[deep]
            bs = (sv - sv[-1]) / (sv[0] - sv[-1]) if sv[0] > sv[-1] else np.ones(len(deep))
            blend = ((1.0 - taste) * bs + taste * be).astype(np.float32)
        # pool order by blend, ties by pool position (stable sort)
        deep_by_blend = deep[np.argsort(-blend, kind="stable")]
        slots = deep_slots(share[r], m)
        picks: list[int] = []
        for t in range(m):
            first, second = (deep_by_blend, order[:m]) if slots[t] else (order[:m], deep_by_blend)
            c = next((int(j) for j in first if j not in picks), None)
            if c is None:
                c = next((int(j) for j in second if j not in picks), None)
            if c is None:
                break
            picks.append(c)
        top = s[order[0]] if len(order) else np.float32(0)
        for t, c in enumerate(picks):
            s[c] = np.float32(float(top) + (m - t))
        out[r] = s
    return out


@njit(cache=True, parallel=True)
def _sample_rows(indptr, indices, keys, lo, hi, k, out_ptr, out_idx):
    base = indptr[lo]
    for i in prange(lo, hi):
        s, e, o = indptr[i], indptr[i + 1], out_ptr[i]
        if e - s <= k:
            for j in range(s, e):
                out_idx[o + j - s] = indices[j]
            continue
        sel = np.sort(np.argsort(keys[s - base : e - base], kind="mergesort")[:k])
        for t in range(k):
            out_idx[o + t] = indices[s + sel[t]]


#: entries of the item -> listeners matrix given random keys at a time (8 bytes each)
SAMPLE_CHUNK = 1 << 22


def sample_rows(m: sp.csr_matrix, k: int, seed: int) -> sp.csr_matrix:
    """At most ``k`` entries of each row of ``m``: the ``k`` with the smallest seeded keys.

    Entry ``j`` (in ``m``'s order: rows in turn, sorted indices) gets the ``j``-th draw of
    ``np.random.default_rng(seed).random``; rows with at most ``k`` entries keep all of them.
    The keys are drawn ``SAMPLE_CHUNK`` entries at a time, whole rows per chunk (the stream is
    the same as one draw of every key), so memory stays at the result plus a chunk of keys:
    the one-shot version held five 8-byte arrays per training pair (2.2 GiB at 48M pairs).
    :func:`sample_rows_reference` is the NumPy oracle.
    """
    m = sp.csr_matrix(m)
    m.sort_indices()
    n_rows = m.shape[0]
    indptr = np.ascontiguousarray(m.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(m.indices, dtype=np.int32)
    out_ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.minimum(np.diff(indptr), k), out=out_ptr[1:])
    out_idx = np.empty(out_ptr[-1], np.int32)
    rng = np.random.default_rng(seed)
    lo = 0
    while lo < n_rows:  # a loop over chunks of rows (a dozen at 48M pairs)
        hi = int(np.searchsorted(indptr, indptr[lo] + SAMPLE_CHUNK, side="right")) - 1
        hi = min(max(hi, lo + 1), n_rows)
        keys = rng.random(int(indptr[hi] - indptr[lo]))
        _sample_rows(indptr, indices, keys, lo, hi, int(k), out_ptr, out_idx)
        lo = hi
    return sp.csr_matrix((np.ones(len(out_idx), np.float32), out_idx, out_ptr), shape=m.shape)


def sample_rows_reference(m: sp.csr_matrix, k: int, seed: int) -> sp.csr_matrix:
    """NumPy oracle of :func:`sample_rows` (every key at once, a lexsort by row then key)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    key = np.random.default_rng(seed).random(len(row))
    order = np.lexsort((key, row))
    rank = np.arange(len(row)) - m.indptr[row[order]]
    keep = np.sort(order[rank < k])
    return sp.csr_matrix(
        (np.ones(len(keep), np.float32), (row[keep], m.indices[keep])), shape=m.shape
    )


def _minmax_reference(v):
    v = np.asarray(v, np.float32)
    span = v.max() - v.min()
    return ((v - v.min()) / span if span > 0 else np.zeros(len(v))).astype(np.float32)
