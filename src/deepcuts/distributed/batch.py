"""Top-n recommendations for every user, computed in the Spark executors.

The user vectors stay distributed (one pandas batch of users at a time); the item side (item
factors, training popularity, item metadata) is broadcast once. Each executor scores its users
with the exact code path of :meth:`deepcuts.models.Recommender.rank_index`: ``x_u . y_i`` in
float32, then :func:`deepcuts.models.base.rank_candidates` (played items masked, the
re-rankers of :func:`deepcuts.rerank.build_rerankers`: the depth knob and its evidence floor,
the rarity knob, the obscurity band, MMR diversity, the artist cap; the compiled top-k), so
the lists equal a local model's lists for the same factors.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.distributed._session import active_session, require_spark
from deepcuts.exceptions import DeepcutsError
from deepcuts.models.base import rank_candidates
from deepcuts.rerank import build_rerankers

__all__ = ["recommend_all"]

log = logging.getLogger(__name__)

_OUT_SCHEMA = "uidx int, rank int, iidx int, score float"


class _ItemStats:
    """What re-rankers read from ``model.interactions_``: item statistics, and the training
    plays only where the depth knob's evidence needs them (``matrix``)."""

    def __init__(
        self,
        popularity: np.ndarray,
        n_users: int,
        items: pd.DataFrame | None,
        matrix: sp.csr_matrix | None = None,
    ):
        self._popularity = np.asarray(popularity, np.int64)
        self.n_users = int(n_users)
        self.n_items = len(self._popularity)
        self.shape = (self.n_users, self.n_items)
        self.items = items
        self._matrix = matrix

    def item_popularity(self) -> np.ndarray:
        return self._popularity

    @property
    def has_matrix(self) -> bool:
        return self._matrix is not None

    @property
    def matrix(self) -> sp.csr_matrix:
        if self._matrix is None:
            raise DeepcutsError("the training matrix was not broadcast (only with depth=)")
        return self._matrix


class _ItemSide:
    """A stand-in for a fitted model inside an executor: item factors and item statistics."""

    def __init__(self, item_factors, popularity, n_users, items, matrix=None):
        self.item_factors_ = np.ascontiguousarray(item_factors, np.float32)
        self.interactions_ = _ItemStats(popularity, n_users, items, matrix)
        self.n_items = self.interactions_.n_items


def _rank_batches(batches, *, side_bc, n, filter_played, knobs, chunk):
    item_side = side_bc.value
    Yt = np.ascontiguousarray(item_side.item_factors_.T)
    rerankers = build_rerankers(**knobs)
    n_items = Yt.shape[1]
    for b in batches:
        uidx_all = b["uidx"].to_numpy(np.int32)
        feats = b["features"].to_numpy()
        played = b["played"].to_numpy()
        for start in range(0, len(b), chunk):
            sl = slice(start, start + chunk)
            uidx = uidx_all[sl]
            X = (
                np.stack(feats[sl]).astype(np.float32)
                if len(uidx)
                else np.zeros((0, Yt.shape[0]), np.float32)
            )
            lists = [np.asarray(p if p is not None else [], np.int32) for p in played[sl]]
            lens = np.array([len(p) for p in lists], np.int64)
            indptr = np.r_[0, np.cumsum(lens)]
            cols = np.concatenate(lists) if lists else np.zeros(0, np.int32)
            ui = sp.csr_matrix(
                (np.ones(len(cols), np.float32), cols, indptr), shape=(len(uidx), n_items)
            )
            if item_side.interactions_.has_matrix:  # the depth knob: histories with counts
                ui = item_side.interactions_.matrix[uidx]
            idx, val = rank_candidates(
                item_side, uidx, ui, n, None, X @ Yt,
                filter_played=filter_played, rerankers=rerankers,
            )  # fmt: skip
            valid = idx >= 0
            yield pd.DataFrame(
                {
                    "uidx": np.repeat(uidx, valid.sum(axis=1)).astype(np.int32),
                    "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
                    "iidx": idx[valid].astype(np.int32),
                    "score": val[valid].astype(np.float32),
                }
            )


def _sources(spark, model):
    """(user rows DataFrame uidx, features, played; item factors; popularity; n_users;
    user ids DataFrame uidx -> user; item ids DataFrame iidx -> item; items metadata)."""
    from pyspark.sql import functions as F

    from deepcuts.distributed.als import SparkALS
    from deepcuts.distributed.readers import SparkInteractions

    if isinstance(model, SparkALS):
        model._check_fitted()
        Y = model.item_factors_
        ratings = model.ratings_
        played = ratings.groupBy("uidx").agg(F.collect_list("iidx").alias("played"))
        uf = model.model_.userFactors.select(F.col("id").alias("uidx"), "features")
        users = uf.join(played, "uidx", "left")
        pop_df = ratings.groupBy("iidx").count().toPandas()
        pop = np.zeros(model.n_items_, np.int64)
        pop[pop_df["iidx"].to_numpy(np.int64)] = pop_df["count"].to_numpy(np.int64)
        data = model.data_
        if isinstance(data, SparkInteractions):
            user_ids = data.users
            item_ids = data.items.select("iidx", "item")
            items = None
        else:
            user_ids, item_ids, items = _local_ids(spark, data)
        return users, Y, pop, model.n_users_, user_ids, item_ids, items
    x = getattr(model, "interactions_", None)
    if x is None or getattr(model, "user_factors_", None) is None:
        raise DeepcutsError(
            "recommend_all needs a fitted SparkALS or a fitted factor model (deepcuts ALS); "
            "call fit first"
        )
    U = np.asarray(model.user_factors_, np.float32)
    m = x.matrix
    pdf = pd.DataFrame(
        {
            "uidx": np.arange(x.n_users, dtype=np.int32),
            "features": list(U),
            "played": np.split(m.indices.astype(np.int32), m.indptr[1:-1]),
        }
    )
    users = spark.createDataFrame(pdf, "uidx int, features array<float>, played array<int>")
    user_ids, item_ids, items = _local_ids(spark, x)
    return users, model.item_factors_, x.item_popularity(), x.n_users, user_ids, item_ids, items


def _training_plays(model, n_users: int, n_items: int) -> sp.csr_matrix:
    """The training (user, item) pairs with their play counts, a CSR matrix of shape (n_users,
    n_items): the pattern is the taste evidence's, and the counts weigh a listener's items in
    the content evidence's tag profile, as in the local path."""
    from deepcuts.distributed.als import SparkALS

    if isinstance(model, SparkALS):
        pairs = model.ratings_.select("uidx", "iidx", "count").toPandas()
        rows, cols = pairs["uidx"].to_numpy(np.int64), pairs["iidx"].to_numpy(np.int64)
        plays = pairs["count"].to_numpy(np.float32)
    else:
        coo = model.interactions_.matrix.tocoo()
        rows, cols, plays = coo.row, coo.col, coo.data.astype(np.float32)
    m = sp.csr_matrix((plays, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    m.sort_indices()
    return m


def _local_ids(spark, x):
    users = pd.DataFrame(
        {"uidx": np.arange(x.n_users, dtype=np.int32), "user": x.user_map.ids.astype(str)}
    )
    items = pd.DataFrame(
        {"iidx": np.arange(x.n_items, dtype=np.int32), "item": x.item_map.ids.astype(str)}
    )
    meta = None
    if x.items is not None:  # what re-rankers read: the artist cap's artists, the depth
        # knob's tags (its content evidence)
        used = [c for c in ("artist", "tags") if c in x.items.columns]
        if used:
            meta = x.items[[c for c in ("item", *used) if c in x.items.columns]]
            meta = meta.reset_index(drop=True)
    return spark.createDataFrame(users), spark.createDataFrame(items), meta


def recommend_all(
    model,
    n: int = 10,
    *,
    rarity: float | None = None,
    band=None,
    diversity: float | None = None,
    artist_cap: int | None = None,
    depth=None,
    floor: int | None = None,
    taste: float | None = None,
    filter_played: bool = True,
    output=None,
    spark=None,
    chunk: int = 1024,
):
    """Every user's top ``n`` items, computed in the Spark executors.

    Parameters
    ----------
    model : SparkALS or deepcuts ALS
        A fitted :class:`~deepcuts.distributed.SparkALS` (its factors stay in Spark) or any
        fitted deepcuts factor model with ``user_factors_`` and ``item_factors_``.
    n : int, default=10
    rarity, band, diversity, artist_cap : optional
        The knobs of :func:`deepcuts.rerank.build_rerankers` (the rarity knob in [-3, 3], the
        obscurity band "LOW:HIGH", MMR diversity in [0, 1], items per artist).
    depth : float in [0, 1] or str, optional
        The depth knob (:class:`~deepcuts.rerank.DepthKnob`: 0 = neutral, 1 = deepest,
        ``"mine"``, ``"mine+0.2"``), as in the local ``recommend`` and the service.
    floor : int, optional
        The depth knob's evidence floor (fewest training listeners, default 3); only with
        ``depth``.
    taste : float in [0, 1], optional
        The depth knob's weight of taste evidence (default 0.5); only with ``depth``. The
        evidence reads training histories: with ``depth`` the training plays (user, item, count
        triples) are broadcast to the executors with the item side.
    filter_played : bool, default=True
        Leave out the items each user played in training.
    output : path or URI, optional
        Also write the result as Parquet there (overwriting).
    spark : SparkSession, optional
    chunk : int, default=1024
        Users scored at once inside an executor (memory: ``chunk * n_items * 4`` bytes).

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``user``, ``rank`` (1-based), ``item``, ``score`` (the score a local model
        reports: after the rarity knob; re-rankers that only re-order, the depth knob, MMR and
        the artist cap, keep the model's scores).
    """
    require_spark()
    from pyspark.sql import functions as F

    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise DeepcutsError(f"n must be a positive integer, got {n!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise DeepcutsError(f"chunk must be a positive integer, got {chunk!r}")
    knobs = {
        "rarity": rarity,
        "band": band,
        "diversity": diversity,
        "artist_cap": artist_cap,
        "depth": depth,
        "floor": floor,
        "taste": taste,
    }
    build_rerankers(**knobs)  # validate on the driver: bad knobs fail before any Spark job
    spark = active_session(spark)
    users, Y, pop, n_users, user_ids, item_ids, items = _sources(spark, model)
    if artist_cap is not None and (items is None or "artist" not in items.columns):
        raise DeepcutsError("artist_cap needs track-level data with an item 'artist' column")
    train = None
    if depth is not None:  # the depth knob's taste evidence reads the training histories
        train = _training_plays(model, n_users, len(pop))
    side = spark.sparkContext.broadcast(_ItemSide(Y, pop, n_users, items, train))
    ranked = users.mapInPandas(
        partial(
            _rank_batches,
            side_bc=side,
            n=int(n),
            filter_played=bool(filter_played),
            knobs=knobs,
            chunk=int(chunk),
        ),
        _OUT_SCHEMA,
    )
    out = (
        ranked.join(user_ids, "uidx")
        .join(item_ids, "iidx")
        .select(F.col("user"), F.col("rank"), F.col("item"), F.col("score"))
    )
    if output is not None:
        out.write.mode("overwrite").parquet(str(output))
        log.info("wrote recommendations to %s", output)
    return out
