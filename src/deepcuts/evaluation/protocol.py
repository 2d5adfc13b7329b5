"""The evaluation protocol: rank held-out users' items in batches and score the lists.

:func:`evaluate` ranks every test user's items with the model (played training items filtered
out, optional re-rankers applied) and computes per-user metrics plus their means and the
catalogue-level metrics; :func:`sweep` repeats it over values of one hyperparameter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from deepcuts.data.interactions import Interactions
from deepcuts.evaluation.metrics import (
    arp,
    artist_discovery,
    catalogue_coverage,
    genre_fit,
    gini_exposure,
    hit_rate_at_k,
    intra_list_diversity,
    item_vectors_from_matrix,
    long_tail_mask,
    long_tail_recall,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    tag_matrix,
    thin_share,
)
from deepcuts.exceptions import DeepcutsError

__all__ = ["DEFAULT_METRICS", "METRICS", "Evaluation", "evaluate", "score_lists", "sweep"]

log = logging.getLogger(__name__)

#: per-user metrics (a value per user; the mean is reported); new_artist / new_track need an
#: item metadata column ``artist`` (track data), genre_fit a column ``tags``; those and
#: longtail_recall, thin are not in DEFAULT_METRICS
_PER_USER = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "novelty", "arp",
             "diversity", "new_artist", "new_track", "longtail_recall", "thin",
             "genre_fit")  # fmt: skip
#: catalogue metrics (one value over all evaluated users' lists)
_CATALOGUE = ("coverage", "gini")
#: every metric name :func:`evaluate` knows
METRICS = _PER_USER + _CATALOGUE
DEFAULT_METRICS = ("precision", "recall", "ndcg", "map", "coverage", "novelty", "diversity",
                   "gini", "arp")  # fmt: skip


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`; unpacks as ``per_user, means``.

    Attributes
    ----------
    per_user : pandas.DataFrame
        One row per evaluated user: ``user`` (external id), ``n_train``, ``n_test`` and a column
        ``"<metric>@<k>"`` per per-user metric and cut-off.
    means : dict
        ``"<metric>@<k>" -> float``: the mean over users of each per-user metric (users where
        it is undefined skipped) and the catalogue metrics (coverage, gini).
    """

    per_user: pd.DataFrame
    means: dict


def _check_split(train: Interactions, test: Interactions) -> None:
    if not isinstance(train, Interactions) or not isinstance(test, Interactions):
        raise TypeError("train and test must be deepcuts.data.Interactions")
    if train.shape != test.shape or train.user_map != test.user_map:
        raise DeepcutsError(
            "train and test must share user and item maps (shape "
            f"{train.shape} vs {test.shape}); build them with deepcuts.evaluation splits"
        )


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise DeepcutsError(f"unknown metric(s) {bad}; choose from {list(METRICS)}")
    return metrics


def _check_k(k) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, int | np.integer) else tuple(k)
    if not ks or any(not isinstance(v, int | np.integer) or v < 1 for v in ks):
        raise DeepcutsError(f"k must be positive integers, got {k!r}")
    return tuple(sorted({int(v) for v in ks}))


def _prepare_model(model, train: Interactions):
    if not hasattr(model, "interactions_"):
        log.info("fitting %r on the training split", model)
        return model.fit(train)
    fitted = model.interactions_
    if fitted.shape != train.shape or fitted.nnz != train.nnz:
        raise DeepcutsError(
            f"the model was fitted on other data ({fitted.shape}, {fitted.nnz} pairs) than the "
            f"training split ({train.shape}, {train.nnz} pairs); fit it on the training split "
            "so held-out items stay unseen"
        )
    return model


def evaluate(
    model,
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    metrics: Iterable[str] = DEFAULT_METRICS,
    rerankers: Sequence = (),
    users=None,
    batch_size: int = 512,
    item_vectors=None,
    filter_played: bool = True,
    show_progress: bool = False,
    **score_kw,
) -> Evaluation:
    """Evaluate a model's top-k lists against held-out items.

    Parameters
    ----------
    model : Recommender
        Fitted on ``train`` (an unfitted model is fitted on ``train`` first).
    train, test : Interactions
        A split from :mod:`deepcuts.evaluation.splits` (same id maps), shape (n_users, n_items).
    k : int or sequence of int, default=(10, 20)
        Cut-offs; lists of length ``max(k)`` are ranked once and cut.
    metrics : iterable of str, default=DEFAULT_METRICS
        Names from :data:`METRICS`: precision, recall, ndcg, map (accuracy, binary relevance);
        novelty and arp (from *training* popularity); diversity (intra-list, from
        ``item_vectors`` or the training matrix's item columns); coverage and gini
        (catalogue-level); new_artist and new_track (track data with an item ``artist``
        column: share of the list by artists the user never played / new tracks by artists
        the user played, :func:`~deepcuts.evaluation.metrics.artist_discovery`);
        longtail_recall (recall over held-out items outside the 20% most listened training
        items), thin (share of the list with fewer than 3 training listeners) and genre_fit
        (share of tagged list items carrying one of the user's top tags; needs an item
        metadata column ``tags``), see :mod:`deepcuts.evaluation.metrics.longtail` and
        :func:`~deepcuts.evaluation.metrics.genre_fit`.
    rerankers : sequence of Reranker, default=()
        Applied to the scores before the top ``max(k)`` are taken.
    users : array-like of external user ids, optional
        Users to evaluate; default every user with at least one test item.
    batch_size : int, default=512
        Users ranked per call to ``model.rank_index``.
    item_vectors : ndarray of shape (n_items, d) or sparse, optional
        Item representation for intra-list diversity.
    filter_played : bool, default=True
        Never recommend training items (the usual protocol).
    show_progress : bool, default=False
        tqdm bar over batches.
    **score_kw
        Passed to the model's scoring (e.g. ``persona=``).

    Returns
    -------
    Evaluation
        ``(per_user DataFrame, means dict)``.

    Examples
    --------
    >>> from deepcuts.data import load_lastfm2k
    >>> from deepcuts.evaluation import user_holdout_split
    >>> from deepcuts.models import Popularity
    >>> train, test = user_holdout_split(load_lastfm2k(), test_fraction=0.2, random_state=0)
    >>> per_user, means = evaluate(Popularity(), train, test, k=10, metrics=["recall", "coverage"])
    >>> len(per_user), round(means["recall@10"], 4), round(means["coverage@10"], 4)
    (1884, 0.0705, 0.0015)
    """
    _check_split(train, test)
    ks = _check_k(k)
    metrics = _check_metrics(metrics)
    if int(batch_size) < 1:
        raise DeepcutsError(f"batch_size must be >= 1, got {batch_size!r}")
    model = _prepare_model(model, train)
    n_test = test.matrix.getnnz(axis=1)
    if users is None:
        uidx = np.flatnonzero(n_test > 0).astype(np.int32)
    else:
        uidx = train.user_map.index(np.atleast_1d(np.asarray(users, dtype=object)))
    kmax = max(ks)
    rec = np.full((len(uidx), kmax), -1, dtype=np.int64)
    starts = range(0, len(uidx), int(batch_size))
    for s in tqdm(starts, desc="evaluate", unit="batch", disable=not show_progress):
        sl = slice(s, s + int(batch_size))
        idx, _, _ = model.rank_index(
            uidx[sl],
            train.matrix[uidx[sl]],
            kmax,
            filter_played=filter_played,
            rerankers=rerankers,
            **score_kw,
        )
        rec[sl, : idx.shape[1]] = idx
    return score_lists(rec, uidx, train, test, k=ks, metrics=metrics, item_vectors=item_vectors)


def score_lists(
    rec: np.ndarray,
    user_index: np.ndarray,
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    metrics: Iterable[str] = DEFAULT_METRICS,
    item_vectors=None,
) -> Evaluation:
    """Score ranked lists made elsewhere (e.g. by another library) with the same metrics.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int
        Internal item indices, best first, ``-1`` padding; ``n >= max(k)``.
    user_index : ndarray of shape (b,) int
        Internal user index of each row (rows of ``train`` / ``test``).
    train, test : Interactions
    k, metrics, item_vectors
        As in :func:`evaluate`.

    Returns
    -------
    Evaluation
    """
    _check_split(train, test)
    ks = _check_k(k)
    metrics = _check_metrics(metrics)
    rec = np.asarray(rec, dtype=np.int64)
    uidx = np.asarray(user_index, dtype=np.int64)
    if rec.ndim != 2 or rec.shape[0] != len(uidx) or rec.shape[1] < max(ks):
        raise DeepcutsError(f"rec must have shape (len(user_index), >= {max(ks)}), got {rec.shape}")
    test_rows = test.matrix[uidx]
    pop = train.item_popularity()
    n_users = train.n_users
    cols: dict[str, np.ndarray] = {
        "user": train.user_map.external(uidx),
        "n_train": train.matrix.getnnz(axis=1)[uidx],
        "n_test": test_rows.getnnz(axis=1),
    }
    means: dict[str, float] = {}
    if "diversity" in metrics and item_vectors is None:
        item_vectors = item_vectors_from_matrix(train.matrix)
    accuracy = {
        "precision": precision_at_k,
        "recall": recall_at_k,
        "ndcg": ndcg_at_k,
        "map": map_at_k,
        "mrr": mrr_at_k,
        "hit_rate": hit_rate_at_k,
    }
    discovery = {}
    if "new_artist" in metrics or "new_track" in metrics:
        from deepcuts.rerank.artist import item_artist_codes

        item_artist = item_artist_codes(train)
        train_rows = train.matrix[uidx]
        for k in ks:
            discovery[k] = artist_discovery(rec, train_rows, item_artist, k)
    long_tail = long_tail_mask(pop) if "longtail_recall" in metrics else None
    tags = None
    if "genre_fit" in metrics:
        items = train.items
        if items is None or "tags" not in items.columns:
            raise DeepcutsError(
                "genre_fit needs the item metadata column 'tags' (lists of tags per item); "
                "load data with tags (e.g. load_lastfm2k) or leave genre_fit out"
            )
        tags = tag_matrix(items["tags"].tolist())
    for k in ks:
        for m in metrics:
            name = f"{m}@{k}"
            if m == "longtail_recall":
                cols[name] = long_tail_recall(rec, test_rows, long_tail, k)
            elif m == "thin":
                cols[name] = thin_share(rec, pop, 3, k)
            elif m == "genre_fit":
                cols[name] = genre_fit(rec, train.matrix[uidx], tags, k)
            elif m == "new_artist":
                cols[name] = discovery[k][0]
            elif m == "new_track":
                cols[name] = discovery[k][1]
            elif m in accuracy:
                cols[name] = accuracy[m](rec, test_rows, k)
            elif m == "novelty":
                cols[name] = novelty(rec, pop, n_users, k)
            elif m == "arp":
                cols[name] = arp(rec, pop, n_users, k)
            elif m == "diversity":
                cols[name] = intra_list_diversity(rec, item_vectors=item_vectors, k=k)
            elif m == "coverage":
                means[name] = catalogue_coverage(rec, train.n_items, k)
            elif m == "gini":
                means[name] = gini_exposure(rec, train.n_items, k)
    per_user = pd.DataFrame(cols)
    ordered: dict[str, float] = {}
    for k in ks:
        for m in metrics:
            name = f"{m}@{k}"
            if name in means:
                ordered[name] = means[name]
            else:
                v = per_user[name].to_numpy(np.float64)
                ordered[name] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return Evaluation(per_user, ordered)


def sweep(
    model_factory: Callable[..., object],
    param_name: str,
    values: Iterable,
    train: Interactions,
    test: Interactions,
    *,
    fixed: dict | None = None,
    show_progress: bool = False,
    **evaluate_kw,
) -> pd.DataFrame:
    """Evaluate one model per value of a hyperparameter.

    Parameters
    ----------
    model_factory : callable
        ``model_factory(**{param_name: value, **fixed})`` returns an unfitted model (a model
        class works).
    param_name : str
    values : iterable
    train, test : Interactions
    fixed : dict, optional
        Other hyperparameters, the same for every value.
    **evaluate_kw
        Passed to :func:`evaluate` (``k``, ``metrics``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per value: the parameter, ``fit_s`` (fit seconds), ``eval_s`` and the means.

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> from deepcuts.evaluation import user_holdout_split
    >>> from deepcuts.models import ItemKNN
    >>> train, test = user_holdout_split(planted_blocks(60, 30), random_state=0)
    >>> t = sweep(ItemKNN, "k", [2, 10], train, test, k=5, metrics=["ndcg"])
    >>> t.columns.tolist()
    ['k', 'fit_s', 'eval_s', 'ndcg@5']
    """
    rows = []
    for v in tqdm(list(values), desc=f"sweep {param_name}", disable=not show_progress):
        model = model_factory(**{param_name: v, **(fixed or {})})
        t0 = time.perf_counter()
        model.fit(train)
        t1 = time.perf_counter()
        _, means = evaluate(model, train, test, **evaluate_kw)
        t2 = time.perf_counter()
        rows.append({param_name: v, "fit_s": t1 - t0, "eval_s": t2 - t1, **means})
        log.info("%s=%r: %s", param_name, v, means)
    return pd.DataFrame(rows)
