"""Warm the compiled (numba) kernels a request can reach, before a model is served.

With an empty numba cache (a fresh install, a new deepcuts version) the first call of each
compiled kernel compiles it: issue 14 measured 12.1 s for the first fold-in request and 5.1 s for
a request sent meanwhile. :func:`warm_up` runs every request path once on the model about to be
served (ranking, each knob, fold-in, personas), so that the service reports ready only when
requests no longer wait on the compiler. With a warm cache it takes a fraction of a second.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from deepcuts.exceptions import DeepcutsError
from deepcuts.rerank import build_rerankers

__all__ = ["warm_up"]

log = logging.getLogger(__name__)

#: knob settings whose re-rankers run compiled code (depth and MMR kernels, top-k selection)
_KNOBS = (
    {},
    {"depth": 0.6},
    {"depth": "mine+0.2", "floor": 2},
    {"rarity": 0.9},
    {"band": "10:90"},
    {"diversity": 0.3},
)
#: rows of a batched request from which the depth and MMR kernels run in parallel threads
_BATCH = 8


def warm_up(handle) -> float:
    """Run each compiled request path once on ``handle``'s model; returns the seconds taken.

    Parameters
    ----------
    handle : ModelHandle
        The model about to be served (:class:`deepcuts.serving.service.ModelHandle`).

    Returns
    -------
    float
        Wall-clock seconds (the compilation time when the numba cache was empty).
    """
    t0 = time.perf_counter()
    m = handle.model
    x = m.interactions_
    lengths = np.diff(x.matrix.indptr)
    if x.n_users == 0 or lengths.max(initial=0) == 0:
        return 0.0
    u = int(np.argmax(lengths))  # a user with plays
    row = x.matrix[u : u + 1]
    uidx = np.array([u], np.int32)
    n = min(10, x.n_items)
    many = np.argsort(-lengths, kind="stable")[:_BATCH].astype(np.int32)  # a batched request
    for knobs in _KNOBS:
        for users in (uidx, many):  # the serial and the parallel kernels
            try:
                m.rank_index(users, x.matrix[users], n, rerankers=build_rerankers(**knobs))
            except DeepcutsError as e:  # e.g. a tiny catalogue with no item above the floor
                log.debug("warm-up with %s skipped: %s", knobs, e)
    if m.supports_fold_in:  # a listener outside the training data (history fold-in)
        m.rank_index(np.array([-1], np.int32), row, n)
    if handle.fold is not None:
        handle.fold.scores(handle.fold.solve(row)[0][None, :])
    if "persona" in getattr(m, "_score_options", ()):
        m.rank_index(uidx, row, n, persona=0)
        m.rank_index(uidx, row, n, blend=True)
    seconds = time.perf_counter() - t0
    log.info("compiled request kernels warmed in %.2f s", seconds)
    return seconds
