"""Optional preprocessing of play counts before training.

"Heard it on the radio": a user who played a globally popular item only once or twice and never
came back has probably met it by chance (radio, a playlist, a friend) and did not take to it.
:func:`radio_mask` marks those pairs; :func:`deepcuts.data.weighting.radio_penalty` turns them
into a mild negative *weight* and gives every other pair an ordinary weighting (``log(1 + x)``
by default). This module does not import :mod:`deepcuts.data.weighting` (the dependency runs
one way: weighting -> preprocessing; issue 14).

The result is a signed weight matrix in the convention of :mod:`deepcuts.data.weighting` (a
negative weight is an observed dislike), registered there as the weighting
``"radio"``: ``ALS(weighting="radio")`` or ``ALS(weighting="radio:max_plays=2,value=-1")``
trains on it, with preference 0 and confidence ``1 + alpha * |value|`` for penalised pairs (see
:mod:`deepcuts.models.als`). :class:`~deepcuts.data.Interactions` itself keeps non-negative
counts; the penalty is applied where the counts become weights.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DeepcutsError

__all__ = ["radio_mask"]


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
