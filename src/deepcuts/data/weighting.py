"""Weighting of raw play counts before training.

Every function maps a CSR matrix of counts (n_users, n_items) to a new CSR matrix with the same
sparsity pattern (float32); stored zeros are never created except by :func:`mild_negative`, whose
values may be negative by design. :func:`apply_weighting` selects one by name, so models and the
CLI can take ``weighting="bm25"`` or ``weighting="confidence:alpha=40"``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from deepcuts.data.preprocessing import radio_mask
from deepcuts.exceptions import DeepcutsError

__all__ = [
    "WEIGHTINGS",
    "apply_weighting",
    "bm25",
    "bm25_implicit",
    "confidence",
    "linear_confidence",
    "log_scale",
    "mild_negative",
    "parse_weighting",
    "radio_penalty",
    "raw",
    "tfidf",
]


def _with_data(m: sp.csr_matrix, data: np.ndarray) -> sp.csr_matrix:
    m = sp.csr_matrix(m)
    return sp.csr_matrix((data.astype(np.float32), m.indices.copy(), m.indptr.copy()), m.shape)


def raw(m: sp.csr_matrix) -> sp.csr_matrix:
    """Counts unchanged (as float32)."""
    return _with_data(m, np.asarray(sp.csr_matrix(m).data, np.float64))


def log_scale(m: sp.csr_matrix, *, eta: float = 1.0) -> sp.csr_matrix:
    """``log(x + eta)``; with ``eta=1`` a single play maps to log 2 > 0.

    >>> import scipy.sparse as sp
    >>> log_scale(sp.csr_matrix([[0.0, 1.0]]), eta=1.0).data.astype(float).round(4).tolist()
    [0.6931]
    """
    if eta <= 0:
        raise DeepcutsError(f"eta must be > 0, got {eta}")
    return _with_data(m, np.log(sp.csr_matrix(m).data.astype(np.float64) + eta))


def confidence(m: sp.csr_matrix, *, alpha: float = 40.0, eps: float = 1.0) -> sp.csr_matrix:
    """Log confidence of Hu, Koren, Volinsky (2008), eq. 6: ``c = 1 + alpha * log(1 + x / eps)``.

    >>> import scipy.sparse as sp
    >>> confidence(sp.csr_matrix([[0.0, 1.0]]), alpha=1.0, eps=1.0).data.astype(float).round(4).tolist()
    [1.6931]
    """
    if alpha < 0 or eps <= 0:
        raise DeepcutsError(f"need alpha >= 0 and eps > 0, got alpha={alpha}, eps={eps}")
    d = sp.csr_matrix(m).data.astype(np.float64)
    return _with_data(m, 1.0 + alpha * np.log1p(d / eps))


def linear_confidence(m: sp.csr_matrix, *, alpha: float = 40.0) -> sp.csr_matrix:
    """Linear confidence of Hu, Koren, Volinsky (2008): ``c = 1 + alpha * x``."""
    if alpha < 0:
        raise DeepcutsError(f"alpha must be >= 0, got {alpha}")
    return _with_data(m, 1.0 + alpha * sp.csr_matrix(m).data.astype(np.float64))


def bm25(m: sp.csr_matrix, *, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """Okapi BM25 weighting: users (rows) are documents, items (columns) are terms.

    ``w = idf(i) * x * (k1 + 1) / (x + k1 * (1 - b + b * len(u) / avglen))`` with
    ``idf(i) = log(n_rows / df(i))`` and ``len(u)`` the row's number of stored items.

    This is *deepcuts'* BM25, not ``implicit``'s ``bm25_weight``: that one uses
    ``idf(i) = log(n_rows) - log(1 + df(i))``, measures a row's length by the *sum* of its
    counts (plays) rather than its number of items, and defaults to ``k1=100, b=0.8``. For
    implicit's form use :func:`bm25_implicit` (weighting name ``"bm25-implicit"``).

    >>> import scipy.sparse as sp
    >>> w = bm25(sp.csr_matrix([[3.0, 0.0], [1.0, 2.0]]))
    >>> [round(v, 4) for v in w.data.tolist()]
    [0.0, 0.0, 0.8714]
    """
    m = sp.csr_matrix(m)
    n_users = m.shape[0]
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    idf = np.log(n_users / np.maximum(df, 1.0))
    lengths = np.diff(m.indptr).astype(np.float64)
    avg = lengths.mean() if n_users else 1.0
    row_len = np.repeat(lengths / max(avg, 1e-12), np.diff(m.indptr))
    x = m.data.astype(np.float64)
    w = x * (k1 + 1.0) / (x + k1 * (1.0 - b + b * row_len)) * idf[m.indices]
    return _with_data(m, w)


def bm25_implicit(m: sp.csr_matrix, *, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """BM25 exactly as the ``implicit`` package's ``bm25_weight(X, K1, B)`` computes it.

    ``w = idf(i) * x * (k1 + 1) / (x + k1 * (1 - b + b * plays(u) / mean plays))`` with
    ``idf(i) = log(n_rows) - log(1 + df(i))`` and ``plays(u)`` the row's sum of counts;
    ``k1=100, b=0.8`` are implicit's defaults (its ``BM25Recommender`` uses 1.2 and 0.75).
    Rows are documents, columns terms (transpose for item-item BM25).

    >>> import scipy.sparse as sp
    >>> w = bm25_implicit(sp.csr_matrix([[3.0, 0.0], [1.0, 2.0]]))
    >>> [round(v, 4) for v in w.data.tolist()]
    [-1.1928, -0.4055, 0.0]
    """
    m = sp.csr_matrix(m)
    n_rows = m.shape[0]
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    idf = np.log(max(n_rows, 1)) - np.log1p(df)
    sums = np.asarray(m.sum(axis=1), np.float64).ravel()
    avg = sums.mean() if n_rows else 1.0
    norm = np.repeat((1.0 - b) + b * sums / (avg if avg > 0 else 1.0), np.diff(m.indptr))
    x = m.data.astype(np.float64)
    return _with_data(m, x * (k1 + 1.0) / (k1 * norm + x) * idf[m.indices])


def tfidf(m: sp.csr_matrix) -> sp.csr_matrix:
    """TF-IDF: ``sqrt(x) * log(n_users / df(i))`` (sub-linear term frequency)."""
    m = sp.csr_matrix(m)
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    idf = np.log(m.shape[0] / np.maximum(df, 1.0))
    return _with_data(m, np.sqrt(m.data.astype(np.float64)) * idf[m.indices])


def mild_negative(
    m: sp.csr_matrix, *, shift: float = 0.1, offset: float = 2.0, base: float = 2.0
) -> sp.csr_matrix:
    """The "one listen is a mild negative" transform: ``log_base(x + shift) - offset``.

    With the defaults, 1 play -> -1.86, 4 plays -> 0.03, 100 plays -> 4.6: a user who played an
    artist once or twice and never came back probably did not like it. Values below zero are
    negative preferences; models that need non-negative confidences take ``abs`` of the result
    as confidence and its sign as preference.
    """
    if shift <= 0 or base <= 1:
        raise DeepcutsError(f"need shift > 0 and base > 1, got shift={shift}, base={base}")
    d = sp.csr_matrix(m).data.astype(np.float64)
    return _with_data(m, np.log(d + shift) / np.log(base) - offset)


def radio_penalty(
    matrix: sp.csr_matrix,
    *,
    max_plays: float = 2,
    popular_quantile: float = 0.99,
    value: float = -0.5,
    base="log",
) -> sp.csr_matrix:
    """Signed weights: ``value`` for "heard it on the radio" pairs, ``base`` weighting elsewhere.

    Parameters
    ----------
    matrix : csr_matrix of shape (n_users, n_items)
        Play counts.
    max_plays, popular_quantile
        Which pairs are penalised (see :func:`radio_mask`).
    value : float, default=-0.5
        Their weight: a mild negative, in [-10, 0). With ALS it means preference 0 with
        confidence ``1 + alpha * |value|`` (an unobserved pair has confidence 1).
    base : str or callable, default="log"
        Weighting of the other pairs (:func:`deepcuts.data.weighting.apply_weighting`).

    Returns
    -------
    csr_matrix of shape (n_users, n_items) float32, same sparsity pattern.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix([[1.0, 1.0], [50.0, 0.0], [2.0, 0.0]])
    >>> radio_penalty(m, popular_quantile=0.5, base="raw").data.tolist()
    [-0.5, 1.0, 50.0, -0.5]
    """
    if not np.isfinite(value) or not -10.0 <= value < 0.0:
        raise DeepcutsError(f"value must be a mild negative weight in [-10, 0), got {value!r}")
    if isinstance(base, str) and base.partition(":")[0].strip() == "radio":
        raise DeepcutsError("base must be another weighting than 'radio', e.g. 'log' or 'raw'")
    m = sp.csr_matrix(matrix, dtype=np.float32)
    m.sort_indices()
    mask = radio_mask(m, max_plays=max_plays, popular_quantile=popular_quantile)
    w = apply_weighting(m, base)
    if w.nnz != m.nnz or not np.array_equal(w.indices, m.indices):
        raise DeepcutsError(f"base weighting {base!r} must keep the sparsity pattern of the counts")
    data = w.data.astype(np.float32, copy=True)
    data[mask] = np.float32(value)
    return sp.csr_matrix((data, w.indices.copy(), w.indptr.copy()), shape=m.shape)


WEIGHTINGS: dict[str, Callable[..., sp.csr_matrix]] = {
    "raw": raw,
    "log": log_scale,
    "confidence": confidence,
    "linear": linear_confidence,
    "bm25": bm25,
    "bm25-implicit": bm25_implicit,
    "tfidf": tfidf,
    "mild_negative": mild_negative,
    # "heard it on the radio": chance listens of popular items as a mild negative
    "radio": radio_penalty,
}


def parse_weighting(spec: str) -> tuple[str, dict[str, float]]:
    """Parse ``"name"`` or ``"name:key=value,key=value"``.

    >>> parse_weighting("confidence:alpha=40,eps=2")
    ('confidence', {'alpha': 40.0, 'eps': 2.0})
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in WEIGHTINGS:
        raise DeepcutsError(f"unknown weighting {name!r}; choose one of {sorted(WEIGHTINGS)}")
    params: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise DeepcutsError(f"weighting parameter {part!r} must look like key=value")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise DeepcutsError(
                f"weighting parameter {key!r} must be a number, got {value!r}"
            ) from None
    return name, params


def apply_weighting(m: sp.csr_matrix, weighting: str | Callable | None, **params) -> sp.csr_matrix:
    """Apply a weighting given by name/spec string, callable, or ``None`` (= raw)."""
    if weighting is None:
        return raw(m)
    if callable(weighting):
        return weighting(m, **params)
    name, parsed = parse_weighting(weighting)
    parsed.update(params)
    try:
        return WEIGHTINGS[name](m, **parsed)
    except TypeError as e:
        raise DeepcutsError(f"bad parameter for weighting {name!r}: {e}") from None
