"""EASE: embarrassingly shallow autoencoder (Steck 2019), a closed-form item-item model.

Steck (2019), "Embarrassingly Shallow Autoencoders for Sparse Data", WWW. With the binary
users x items matrix ``X`` the item-item weights solve

    min_B |X - X B|_F^2 + lambda |B|_F^2   subject to diag(B) = 0

in closed form: ``P = (X^T X + lambda I)^-1`` and ``B = I - P diag(1 / diag(P))``, i.e.
``B_ij = -P_ij / P_jj`` off the diagonal and ``B_jj = 0``. A user's scores are ``x_u B``.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models.base import Recommender

__all__ = ["EASE", "available_memory"]

log = logging.getLogger(__name__)

#: dense (n_items, n_items) float32 matrices alive at the peak of a fit: the Gramian (inverted
#: in place) and the saved/serialised copy or block temporaries; see :meth:`EASE.max_items`
_PEAK_COPIES = 2.5
#: share of the available memory a fit may use
_MEMORY_SHARE = 0.8
#: item columns of X^T X formed per sparse product (bounds its temporary memory)
_GRAM_BLOCK = 2048


def available_memory() -> int:
    """Bytes of memory available to a new allocation on this machine (``MemAvailable``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 1024**3


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m)
    return (
        sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)
        if m.nnz
        else sp.csr_matrix(m.shape, dtype=np.float32)
    )


def ease_weights(x: sp.csr_matrix, regularization: float) -> np.ndarray:
    """Steck's closed form ``B = I - P diag(1/diag(P))``, ``P = (X^T X + lambda I)^-1``.

    Float32 throughout; the Gramian is formed ``_GRAM_BLOCK`` columns at a time and inverted in
    place by LAPACK (Cholesky ``potrf`` + ``potri``, multi-threaded BLAS), so the peak is about
    one dense (n_items, n_items) float32 matrix plus a block.

    Parameters
    ----------
    x : csr_matrix of shape (n_users, n_items)
        Binary interactions.
    regularization : float
        ``lambda`` (> 0).

    Returns
    -------
    ndarray of shape (n_items, n_items) float32, zero diagonal.
    """
    x = sp.csr_matrix(x, dtype=np.float32)
    n = x.shape[1]
    xt = x.T.tocsr()
    G = np.empty((n, n), np.float32)
    for a in range(0, n, _GRAM_BLOCK):
        b = min(n, a + _GRAM_BLOCK)
        G[:, a:b] = (xt @ x[:, a:b]).toarray()
    G[np.diag_indices(n)] += np.float32(regularization)
    # G is symmetric, so its C-ordered memory read as Fortran order is G itself (= G^T): LAPACK
    # factors and inverts it in place. With lower=1 on the Fortran view the inverse is left in
    # the Fortran lower triangle, i.e. the upper triangle of the C-ordered array.
    F = G.T
    c, info = lapack.spotrf(F, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise DeepcutsError(
            f"EASE: X^T X + regularization*I is not positive definite (LAPACK potrf info={info});"
            " increase regularization"
        )
    P, info = lapack.spotri(c, lower=1, overwrite_c=1)
    if info != 0:  # pragma: no cover - potrf succeeded, so the factor is invertible
        raise DeepcutsError(f"EASE: inverting the Cholesky factor failed (info={info})")
    P = np.asarray(P).T  # C-ordered view again (no copy when LAPACK worked in place)
    # copy the upper triangle into the lower one, a block of rows at a time
    bs = 1024
    for a in range(0, n, bs):
        b = min(n, a + bs)
        blk = P[a:b, a:b]
        blk[...] = np.triu(blk) + np.triu(blk, 1).T
        P[b:, a:b] = P[a:b, b:].T
    # B_ij = -P_ij / P_jj (i != j), B_jj = 0  (Steck 2019, eq. 8)
    d = np.ascontiguousarray(np.diag(P)).astype(np.float32)
    P /= -d[None, :]
    P[np.diag_indices(n)] = 0.0
    return np.ascontiguousarray(P, dtype=np.float32)


class EASE(Recommender):
    """Embarrassingly shallow autoencoder (Steck 2019): closed-form item-item regression.

    The item-item matrix ``B`` (zero diagonal) minimises ``|X - X B|^2 + lambda |B|^2`` on the
    binarised training matrix ``X``; ``B = I - P diag(1/diag(P))`` with
    ``P = (X^T X + lambda I)^-1``. A user's scores are ``x_u B`` from their binarised history,
    so users outside the training data are scored from their history the same way (fold-in).

    ``B`` is dense: a fit holds about ``2.5 * 4 * n_items^2`` bytes at its peak and the fitted
    model ``4 * n_items^2`` bytes. :meth:`max_items` says how large a catalogue this machine
    takes; above it :meth:`fit` refuses with what to do instead (keep the most popular items,
    or use the sparse :class:`~deepcuts.models.RP3beta` or :class:`~deepcuts.models.ALS`).

    Parameters
    ----------
    regularization : float, default=500.0
        ``lambda``, the L2 penalty on ``B`` (Steck uses 500 on ML-20M/Netflix and 200 on the
        Million Song Dataset; it grows with the number of users).
    memory_limit : int or None, default=None
        Bytes a fit may use; ``None``: 80% of the memory available when ``fit`` starts.

    Attributes
    ----------
    item_weights_ : ndarray of shape (n_items, n_items) float32
        ``B``; row ``i`` holds how much playing item ``i`` adds to each item's score.

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> model = EASE(regularization=10.0).fit(x)
    >>> model.item_weights_.shape, float(abs(model.item_weights_.diagonal()).max())
    ((30, 30), 0.0)
    >>> len(model.recommend("u0", n=3))
    3
    """

    _state_arrays = ("item_weights_",)
    supports_fold_in = True

    def __init__(self, *, regularization: float = 500.0, memory_limit: int | None = None):
        self.regularization = regularization
        self.memory_limit = memory_limit

    def _check_params(self) -> None:
        r = self.regularization
        if isinstance(r, bool) or not isinstance(r, int | float | np.number):
            raise DeepcutsError(f"regularization must be a number > 0, got {r!r}")
        if not np.isfinite(r) or r <= 0:
            raise DeepcutsError(f"regularization must be a finite number > 0, got {r!r}")
        m = self.memory_limit
        if m is not None and (isinstance(m, bool) or not isinstance(m, int | np.integer) or m <= 0):
            raise DeepcutsError(
                f"memory_limit must be a positive number of bytes or None, got {m!r}"
            )

    @staticmethod
    def memory_needed(n_items: int) -> int:
        """Peak bytes of a fit on ``n_items`` items (dense float32 ``n_items^2`` matrices)."""
        return int(_PEAK_COPIES * 4 * float(n_items) ** 2)

    @classmethod
    def max_items(cls, memory: int | None = None) -> int:
        """The largest catalogue a fit takes with ``memory`` bytes (default: this machine's
        available memory, 80% of it).

        Examples
        --------
        >>> EASE.max_items(10 * 1024**3)
        32768
        """
        budget = _MEMORY_SHARE * available_memory() if memory is None else float(memory)
        return int(np.sqrt(budget / (_PEAK_COPIES * 4)))

    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        n = interactions.n_items
        memory = self.memory_limit
        limit = self.max_items(memory)
        if n > limit:
            budget = _MEMORY_SHARE * available_memory() if memory is None else float(memory)
            raise DeepcutsError(
                f"EASE on {n} items needs about {self.memory_needed(n) / 1024**3:.1f} GiB (dense "
                f"{n} x {n} float32 item-item matrix), but {budget / 1024**3:.1f} GiB are "
                f"available: this machine takes at most {limit} items. Keep the {limit} most "
                "popular items (e.g. deepcuts.data.filter_interactions(x, "
                "min_users_per_item=...)), or use a sparse model: RP3beta (deepcuts train "
                "--model rp3beta) or ALS"
            )
        x = _binary(interactions.matrix)
        self.item_weights_ = ease_weights(x, float(self.regularization))
        log.info("EASE: %d items, lambda=%g", n, self.regularization)

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        # s_u = x_u B on the binarised history (Steck 2019)
        ui = _binary(user_items)
        return np.asarray(ui @ self.item_weights_, dtype=np.float32)

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        return self.item_weights_[np.asarray(item_index)]
