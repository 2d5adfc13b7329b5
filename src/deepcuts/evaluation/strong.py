"""Strong generalisation (Liang, Krishnan, Hoffman, Jebara 2018, "Variational Autoencoders for
Collaborative Filtering", WWW): models are trained on one set of users and evaluated on
*held-out users* they never saw. Each held-out user's items are split at random: the model
folds in 80% of them (its recommendations come from that history alone) and is scored on the
other 20%. Recall@k is normalised by ``min(k, n_test)`` as in the paper, so the published tables
(EASE, Mult-VAE, tuned iALS on ML-20M and the Million Song Dataset) can be reproduced with the
same numbers of held-out users.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from deepcuts.data.interactions import Interactions
from deepcuts.evaluation.metrics.accuracy import ndcg_at_k
from deepcuts.evaluation.protocol import Evaluation, _check_k
from deepcuts.evaluation.splits import _partition, _rank_within_rows
from deepcuts.exceptions import DeepcutsError

__all__ = ["StrongSplit", "evaluate_strong", "strong_generalization_split"]

log = logging.getLogger(__name__)


class StrongSplit(NamedTuple):
    """The parts of a strong-generalisation split.

    Attributes
    ----------
    train : Interactions
        Every play of the training users, shape (n_train_users, n_items); only items with a
        training play are kept (Liang et al.), so every model can score every item.
    fold_in : Interactions
        The held-out users' plays given to the model, shape (n_heldout, n_items), same item map.
    test : Interactions
        Their remaining plays, scored; same user and item maps as ``fold_in``.
    """

    train: Interactions
    fold_in: Interactions
    test: Interactions


def strong_generalization_split(
    x: Interactions,
    *,
    heldout_users: int | float = 0.1,
    test_fraction: float = 0.2,
    min_items: int = 5,
    random_state: int = 0,
) -> StrongSplit:
    """Split users into training and held-out users; split each held-out user's items.

    Parameters
    ----------
    x : Interactions
        Shape (n_users, n_items).
    heldout_users : int or float, default=0.1
        Number of held-out users (an int, e.g. 50000 for MSD as in Liang et al.) or their share
        of the users (a float in (0, 1)).
    test_fraction : float, default=0.2
        Share of a held-out user's items that is scored (``floor(test_fraction * n)``, at
        least 1); the rest is folded in.
    min_items : int, default=5
        Held-out users are drawn among users with at least this many items (Liang et al.
        split users with 5 or more).
    random_state : int, default=0

    Returns
    -------
    StrongSplit

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(100, 30, 3, random_state=0)
    >>> s = strong_generalization_split(x, heldout_users=20, random_state=0)
    >>> s.train.n_users, s.fold_in.n_users, s.fold_in.nnz + s.test.nnz + s.train.nnz == x.nnz
    (80, 20, True)
    """
    if not isinstance(x, Interactions):
        raise TypeError("x must be deepcuts.data.Interactions")
    if not 0.0 < float(test_fraction) < 1.0:
        raise DeepcutsError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if int(min_items) < 2:
        raise DeepcutsError(f"min_items must be >= 2, got {min_items!r}")
    n_items_u = x.matrix.getnnz(axis=1)
    eligible = np.flatnonzero(n_items_u >= int(min_items))
    if isinstance(heldout_users, float) and not isinstance(heldout_users, bool):
        if not 0.0 < heldout_users < 1.0:
            raise DeepcutsError(
                f"heldout_users as a share must be in (0, 1), got {heldout_users!r}"
            )
        n_out = max(1, int(round(heldout_users * x.n_users)))
    elif isinstance(heldout_users, int | np.integer) and not isinstance(heldout_users, bool):
        n_out = int(heldout_users)
    else:
        raise DeepcutsError(f"heldout_users must be an int or a float, got {heldout_users!r}")
    if not 1 <= n_out < x.n_users or n_out > len(eligible):
        raise DeepcutsError(
            f"heldout_users={heldout_users!r} gives {n_out} held-out users, but there are "
            f"{x.n_users} users, {len(eligible)} with >= {min_items} items; ask for fewer"
        )
    rng = np.random.default_rng(random_state)
    out = np.sort(rng.choice(eligible, size=n_out, replace=False))
    is_out = np.zeros(x.n_users, bool)
    is_out[out] = True
    train_users = np.flatnonzero(~is_out)
    items = np.flatnonzero(x.matrix[train_users].getnnz(axis=0) > 0)
    train = x.subset(users=train_users, items=items)
    held = x.subset(users=out, items=items)
    dropped = int(x.matrix[out].nnz - held.nnz)
    if dropped:
        log.info(
            "strong split: %d held-out plays of items no training user played dropped", dropped
        )
    n = np.diff(held.matrix.indptr)
    n_test = np.maximum(np.floor(float(test_fraction) * n), 1).astype(np.int64)
    n_test[n < 2] = 0  # a user left with one item keeps it for fold-in
    rank = _rank_within_rows(held.matrix.indptr, rng.random(held.nnz))
    fold_in, test = _partition(held, rank < np.repeat(n_test, n))
    return StrongSplit(train, fold_in, test)


def evaluate_strong(
    model,
    split: StrongSplit,
    *,
    k: int | Sequence[int] = (20, 50),
    batch_size: int = 512,
    show_progress: bool = False,
) -> Evaluation:
    """Fold each held-out user's history into ``model`` and score its top-k lists.

    Parameters
    ----------
    model : Recommender
        Fitted on ``split.train`` (an unfitted model is fitted on it first); must fold in new
        histories (``supports_fold_in``).
    split : StrongSplit
    k : int or sequence of int, default=(20, 50)
    batch_size : int, default=512
    show_progress : bool, default=False

    Returns
    -------
    Evaluation
        Per held-out user (``user``, ``n_fold_in``, ``n_test``, ``recall@k``, ``ndcg@k``) and
        their means. ``recall@k = hits@k / min(k, n_test)`` (Liang et al. 2018); ``ndcg@k``
        with binary gains. Users without test items are skipped.

    Examples
    --------
    >>> from deepcuts.models import Popularity, RP3beta
    >>> from deepcuts.testing import planted_blocks
    >>> s = strong_generalization_split(planted_blocks(150, 30, 3, random_state=0),
    ...                                 heldout_users=30, random_state=0)
    >>> _, means = evaluate_strong(RP3beta(neighbors=10), s, k=5)
    >>> _, pop = evaluate_strong(Popularity(), s, k=5)
    >>> sorted(means), round(means["recall@5"], 2), round(pop["recall@5"], 2)
    (['ndcg@5', 'recall@5'], 0.85, 0.32)
    """
    if not isinstance(split, StrongSplit):
        raise TypeError("split must be a StrongSplit from strong_generalization_split")
    if not getattr(model, "supports_fold_in", False):
        raise DeepcutsError(
            f"{type(model).__name__} cannot fold in new users' histories; strong "
            "generalisation needs a model with supports_fold_in (ALS, EASE, RP3beta, ItemKNN)"
        )
    ks = _check_k(k)
    train, fold_in, test = split
    if not hasattr(model, "interactions_"):
        model.fit(train)
    else:
        fitted = model.interactions_
        if fitted.item_map != train.item_map or fitted.user_map != train.user_map:
            raise DeepcutsError(
                "the model was fitted on other data than split.train (held-out users must stay "
                "unseen); refit it on split.train"
            )
    users = np.flatnonzero(test.matrix.getnnz(axis=1) > 0).astype(np.int32)
    kmax = max(ks)
    rec = np.full((len(users), kmax), -1, np.int64)
    starts = range(0, len(users), int(batch_size))
    for s in tqdm(starts, desc="strong", unit="batch", disable=not show_progress):
        sl = slice(s, s + int(batch_size))
        idx, _, _ = model.rank_index(
            np.full(len(users[sl]), -1, np.int32), fold_in.matrix[users[sl]], kmax
        )
        rec[sl, : idx.shape[1]] = idx
    test_rows = test.matrix[users]
    n_rel = test_rows.getnnz(axis=1)
    cols = {
        "user": test.user_map.external(users),
        "n_fold_in": fold_in.matrix.getnnz(axis=1)[users],
        "n_test": n_rel,
    }
    rel = test_rows.tocsr()
    hits_all = np.zeros(rec.shape, bool)
    for b in range(0, len(users), 4096):  # membership of each listed item in the test row
        sl = slice(b, b + 4096)
        dense = rel[sl].toarray() > 0
        hits_all[sl] = np.take_along_axis(dense, np.maximum(rec[sl], 0), axis=1) & (rec[sl] >= 0)
    for kk in ks:
        cols[f"recall@{kk}"] = hits_all[:, :kk].sum(axis=1) / np.minimum(kk, n_rel)
        cols[f"ndcg@{kk}"] = ndcg_at_k(rec, test_rows, kk)
    per_user = pd.DataFrame(cols)
    means = {
        f"{m}@{kk}": float(per_user[f"{m}@{kk}"].mean()) for kk in ks for m in ("recall", "ndcg")
    }
    return Evaluation(per_user, means)
