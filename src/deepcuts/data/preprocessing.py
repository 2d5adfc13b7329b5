"""Optional preprocessing of play counts before training.

"Heard it on the radio": a user who played a globally popular item only once or twice and never
came back has probably met it by chance (radio, a playlist, a friend) and did not take to it.
:func:`radio_penalty` turns those pairs into a mild negative *weight*; every other pair gets an
ordinary weighting (``log(1 + x)`` by default).

The result is a signed weight matrix in the convention of :mod:`deepcuts.data.weighting` (a
negative weight is an observed dislike), so it is also registered there as the weighting
``"radio"``: ``ALS(weighting="radio")`` or ``ALS(weighting="radio:max_plays=2,value=-1")``
trains on it, with preference 0 and confidence ``1 + alpha * |value|`` for penalised pairs (see
:mod:`deepcuts.models.als`). :class:`~deepcuts.data.Interactions` itself keeps non-negative
counts; the penalty is applied where the counts become weights.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DeepcutsError

__all__ = ["radio_mask", "radio_penalty"]


def _check(max_plays, popular_quantile) -> None:
    if not np.isfinite(max_plays) or max_plays < 1:
        raise DeepcutsError(
            f"max_plays must be >= 1 (plays counted as a chance listen), got {max_plays!r}"
        )
    if not 0.0 <= popular_quantile < 1.0:
        raise DeepcutsError(
            f"popular_quantile must be in [0, 1) (0.99 = the top 1% of items by listeners), "
            f"got {popular_quantile!r}"
        )


def radio_mask(
    matrix: sp.csr_matrix, *, max_plays: float = 2, popular_quantile: float = 0.99
) -> np.ndarray:
    """Which stored pairs are "heard it on the radio", aligned with ``matrix.data``.

    A pair ``(u, i)`` is marked when ``0 < x_ui <= max_plays`` and item ``i`` is globally
    popular: its number of listeners is at least the ``popular_quantile`` quantile of the
    listener counts of all items.

    Parameters
    ----------
    matrix : csr_matrix of shape (n_users, n_items)
        Play counts.
    max_plays : float, default=2
        Largest play count that still counts as a chance listen.
    popular_quantile : float, default=0.99
        Items at or above this quantile of listeners per item are "popular" (0.99: top 1%).

    Returns
    -------
    ndarray of shape (nnz,) bool

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix([[1.0, 1.0], [50.0, 0.0], [2.0, 0.0]])
    >>> radio_mask(m, popular_quantile=0.5).tolist()  # item 0 has 3 listeners, item 1 has 1
    [True, False, False, True]
    """
    _check(max_plays, popular_quantile)
    m = sp.csr_matrix(matrix)
    if m.nnz == 0:
        return np.zeros(0, bool)
    listeners = np.bincount(m.indices, minlength=m.shape[1])
    threshold = np.quantile(listeners, popular_quantile)
    popular = listeners >= max(threshold, 1)
    return (m.data > 0) & (m.data <= max_plays) & popular[m.indices]


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
    from deepcuts.data.weighting import apply_weighting  # weighting registers this function

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
