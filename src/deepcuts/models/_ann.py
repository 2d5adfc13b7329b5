"""Approximate top-k candidates for large catalogues (inner-product search, re-ranked exactly).

Exact top-k reads every item vector per request: at 384k songs x 64 factors that is ~100 MB
of memory traffic per user. :class:`ItemIndex` is an inverted-file index with the
inner-product metric: k-means cells over the item vectors, and a query scans only the
``nprobe`` cells whose centroids score highest, returning a few hundred *candidates*. The
models then score those candidates exactly with their own scoring and apply filters and
re-rankers to that candidate block (:func:`deepcuts.models.base.rank_candidates`), so the
discovery knob, personas, filters and diversity keep working.

From :data:`FASTSCAN_MIN_ITEMS` items up the cells hold 4-bit product-quantisation codes
(faiss ``IndexIVFPQFastScan``, André et al. 2017: ``d / 2`` sub-quantisers of 16 centroids,
scanned with SIMD lookup tables in registers) instead of the raw vectors (``IndexIVFFlat``):
a cell scan costs a fraction of reading float32 vectors and the index is ~1/10 of the item
factors' size. The codes only *propose* candidates; their order comes from the exact
re-scoring, so the coarse codes cost little recall (measured on 100k clustered 64-d vectors,
300 candidates, 64 of 1024 cells: recall@20 0.989 with codes, 0.995 with raw vectors, at
0.11 vs 0.26 ms per single query and 0.03 vs 0.17 ms per query in batch).

Why faiss IVF (measured on ALS factors of 384,546 songs x 64, ``benchmarks/scale.py`` and
docs/scale.md): recall@20 0.97-0.98 after exact re-ranking of 300 candidates at 0.5-0.7 ms
per user, a 20-30 s build on 2 cores, the inner product used directly, and a plain byte
array for storage in the model's ``.npz`` (no pickle). The graph indexes measured beside it
(hnswlib and usearch with inner product, voyager, faiss HNSW on the MIPS-to-L2 transform)
stayed at recall 0.24-0.69 with 300-600 candidates and took 50-150 s to build; pynndescent
gave no result within 300 s.

faiss is an optional dependency (``pip install deepcuts[ann]``); ``ann="auto"`` falls back to
exact scoring without it.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from deepcuts.exceptions import DeepcutsError

__all__ = [
    "ANN_AUTO_MIN_ITEMS",
    "FASTSCAN_MIN_ITEMS",
    "ItemIndex",
    "ann_available",
    "resolve_ann",
]

log = logging.getLogger(__name__)

#: ``ann="auto"`` switches the index on at this many items. Measured (benchmarks/scale.py,
#: docs/scale.md): at 38k songs the index gives no gain (batch top-20 0.18 ms/user with it,
#: 0.17 ms exact), at 384k songs it is 6x faster than exact (0.91 vs 5.65 ms/user); 50k sits
#: just above the break-even, where the index's build time (seconds) starts to pay.
ANN_AUTO_MIN_ITEMS = 50_000

#: from this many items the index stores 4-bit PQ codes (IVFPQFastScan), below it raw vectors:
#: product quantisation needs 16 training points per centroid and several per cell, and on a
#: few thousand items a flat scan is already cheap
FASTSCAN_MIN_ITEMS = 4096

#: the two index kinds (ItemIndex ``kind``)
INDEX_KINDS = ("auto", "ivfpq-fastscan", "ivf-flat")

#: searches of fewer queries than this run single-threaded (see ItemIndex.search)
SMALL_BATCH = 64
#: the same where OpenMP's idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``, which ``deepcuts
#: serve`` sets): a team then costs no spinning, and a served batch of ~18 requests searched at
#: 136 instead of 190-210 us of wall time per query on two busy cores, at the same CPU time
#: (384k songs, nprobe 128; the service's p99 at 1M users fell from ~23 to 11-19 ms, issue 15)
SMALL_BATCH_PASSIVE = 8

_INSTALL_HINT = (
    "approximate top-k needs faiss: install it with `pip install deepcuts[ann]` (or "
    "`pip install faiss-cpu`), or pass ann=False for exact scoring"
)


def ann_available() -> bool:
    """Whether the optional ANN library (faiss) can be imported.

    >>> isinstance(ann_available(), bool)
    True
    """
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _omp_threads() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise DeepcutsError(_INSTALL_HINT) from None
    return faiss


def resolve_ann(ann, n_items: int) -> bool:
    """Whether a model with ``ann`` and ``n_items`` items uses the index.

    ``"auto"``: on at ``n_items >= ANN_AUTO_MIN_ITEMS`` when faiss is installed, else exact.
    ``True``: on (raises :class:`DeepcutsError` with the install command without faiss).
    ``False``: exact.

    >>> resolve_ann(False, 10**6), resolve_ann("auto", 100)
    (False, False)
    """
    if ann is False or ann is None:
        return False
    if ann is True:
        _faiss()
        return True
    if ann == "auto":
        return n_items >= ANN_AUTO_MIN_ITEMS and ann_available()
    raise DeepcutsError(f"ann must be 'auto', True or False, got {ann!r}")


class ItemIndex:
    """Inner-product candidate search over item vectors (faiss IVF, exact re-ranking outside).

    Parameters
    ----------
    nlist : int or None
        Number of k-means cells; ``None``: ``4 * sqrt(n_items)`` rounded to a power of two
        (1024-2048 cells at 384k items).
    nprobe : int or None
        Cells scanned per query; ``None``: enough cells to scan 1/16 of the items and at least
        4096 of them (128 of 2048 cells at 384k songs gave recall@20 0.986 after exact
        re-ranking of 300 candidates, 64 cells 0.914; docs/scale.md).
    random_state : int, default=0
        Seed of the k-means training sample and initialisation.
    kind : {"auto", "ivfpq-fastscan", "ivf-flat"}, default="auto"
        What the cells hold: 4-bit PQ codes (faiss ``IndexIVFPQFastScan``) or the raw vectors
        (``IndexIVFFlat``). ``"auto"``: codes from :data:`FASTSCAN_MIN_ITEMS` items up.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(2000, 16)).astype(np.float32)
    >>> index = ItemIndex(nlist=16, nprobe=16).build(Y)  # doctest: +SKIP
    >>> index.search(Y[:2], 5).shape  # doctest: +SKIP
    (2, 5)
    """

    def __init__(
        self,
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        random_state: int = 0,
        kind: str = "auto",
    ):
        if kind not in INDEX_KINDS:
            raise DeepcutsError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
        self.nlist = nlist
        self.nprobe = nprobe
        self.random_state = random_state
        self.kind = kind
        self._index = None
        self.n_items = 0
        self.dim = 0

    # ------------------------------------------------------------------ build / search
    def build(self, item_vectors: np.ndarray) -> ItemIndex:
        """Train the cells and add every item vector (row ``i`` is item index ``i``)."""
        faiss = _faiss()
        Y = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if Y.ndim != 2 or len(Y) == 0:
            raise DeepcutsError(f"item_vectors must be a non-empty 2-D array, got {Y.shape}")
        n, f = Y.shape
        nlist = self.nlist
        if nlist is None:
            nlist = 1 << max(3, round(math.log2(4 * math.sqrt(n))))
        nlist = int(max(1, min(nlist, n // 39 if n >= 39 * 8 else max(1, n // 8))))
        # scan at least 1/16 of the items and at least 4096 of them: recall@20 0.986 after
        # exact re-ranking of 300 candidates on 384k songs, where 1/32 gave 0.914 (docs/scale.md)
        target = max(n / 16, 4096)
        nprobe = self.nprobe if self.nprobe is not None else math.ceil(nlist * target / n)
        self.nlist_, self.nprobe_ = nlist, int(min(nprobe, nlist))
        kind = self.kind
        if kind == "auto":
            kind = "ivfpq-fastscan" if n >= FASTSCAN_MIN_ITEMS else "ivf-flat"
        self.kind_ = kind
        quantizer = faiss.IndexFlatIP(f)
        if kind == "ivfpq-fastscan":
            # d/2 sub-quantisers of 2 dimensions (4 bits each): 32 bytes per 64-d item
            m = f // 2 if f % 2 == 0 and f >= 2 else f
            index = faiss.IndexIVFPQFastScan(quantizer, f, nlist, m, 4, faiss.METRIC_INNER_PRODUCT)
            index.pq.cp.seed = int(self.random_state)
        else:
            index = faiss.IndexIVFFlat(quantizer, f, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(self.random_state)
        rng = np.random.default_rng(self.random_state)
        # 64 points per cell is plenty for k-means (and for 16 PQ centroids per
        # sub-quantiser); more only costs training time
        sample = Y if n <= 64 * nlist else Y[np.sort(rng.choice(n, 64 * nlist, replace=False))]
        index.train(sample)
        index.add(Y)
        index.nprobe = self.nprobe_
        self._index = index
        self.n_items, self.dim = n, f
        log.info("built an %s index: %d items, %d cells, nprobe %d", kind, n, nlist, self.nprobe_)
        return self

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Candidate item indices, shape (b, k) int64, best first; ``-1`` pads short lists."""
        if self._index is None:
            raise DeepcutsError("the item index is not built; call build first")
        Q = np.ascontiguousarray(queries, dtype=np.float32)
        if Q.ndim != 2 or Q.shape[1] != self.dim:
            raise DeepcutsError(f"queries must have shape (b, {self.dim}), got {Q.shape}")
        k = int(min(k, self.n_items))
        if len(Q) == 0 or k <= 0:
            return np.empty((len(Q), max(k, 0)), np.int64)
        faiss = _faiss()
        passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
        if len(Q) < (SMALL_BATCH_PASSIVE if passive else SMALL_BATCH):
            # a request's few queries run on the calling thread: an OpenMP team per request
            # spins idle cores that concurrent requests need (p99 x6 in the service)
            faiss.omp_set_num_threads(1)
        elif passive and len(Q) < SMALL_BATCH:
            # a served batch: at least 4 queries (~0.5 ms) per thread, so waking a sleeping
            # thread stays small next to its work on machines with many cores
            faiss.omp_set_num_threads(max(1, min(_omp_threads(), len(Q) // 4)))
        else:
            faiss.omp_set_num_threads(_omp_threads())
        _, idx = self._index.search(Q, k)
        return idx.astype(np.int64, copy=False)

    def add(self, item_vectors: np.ndarray) -> None:
        """Append vectors of new items (indices ``n_items, n_items + 1, ...``) to the cells."""
        if self._index is None:
            raise DeepcutsError("the item index is not built; call build first")
        Y = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self._index.add(Y)
        self.n_items += len(Y)

    # ------------------------------------------------------------------ persistence
    def to_array(self) -> np.ndarray:
        """The index in faiss's own binary format, as a uint8 array (stored in the model npz)."""
        return np.asarray(_faiss().serialize_index(self._index), dtype=np.uint8)

    def params(self) -> dict:
        """JSON-able settings for the model manifest."""
        return {
            "library": "faiss",
            "kind": self.kind_,
            "nlist": int(self.nlist_),
            "nprobe": int(self.nprobe_),
            "n_items": int(self.n_items),
            "dim": int(self.dim),
            "random_state": int(self.random_state),
        }

    @classmethod
    def from_array(cls, data: np.ndarray, params: dict) -> ItemIndex:
        """Rebuild an index saved with :meth:`to_array` (raises without faiss)."""
        faiss = _faiss()
        kind = {"IVFFlat-IP": "ivf-flat"}.get(params.get("kind"), params.get("kind", "ivf-flat"))
        if kind not in INDEX_KINDS[1:]:
            raise DeepcutsError(f"saved item index has an unknown kind {kind!r}; re-save the model")
        out = cls(nlist=params["nlist"], nprobe=params["nprobe"],
                  random_state=params.get("random_state", 0), kind=kind)  # fmt: skip
        out.kind_ = kind
        out._index = faiss.deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
        out._index.nprobe = int(params["nprobe"])
        out.nlist_, out.nprobe_ = int(params["nlist"]), int(params["nprobe"])
        out.n_items, out.dim = int(out._index.ntotal), int(out._index.d)
        if out.n_items != params["n_items"] or out.dim != params["dim"]:
            raise DeepcutsError(
                f"saved item index holds {out.n_items} x {out.dim} vectors, the manifest says "
                f"{params['n_items']} x {params['dim']}; re-save the model"
            )
        return out
