"""``SparkALS``: Spark MLlib's implicit-feedback ALS with deepcuts' confidence conventions.

Confidence mapping
------------------
deepcuts' :class:`~deepcuts.models.ALS` uses ``c_ui = 1 + alpha * w(x_ui)`` with ``w`` a count
transform (``weighting="log"``: ``w(x) = log(1 + x)``). Spark's ``ALS(implicitPrefs=True)`` uses
``c_ui = 1 + alpha * |r_ui|`` with preference ``p_ui = 1`` if ``r_ui > 0`` else 0, so SparkALS
trains Spark on the ratings ``r_ui = w(x_ui)`` computed in the executors with deepcuts' own
:func:`~deepcuts.data.weighting.apply_weighting` (a vectorised ``pandas_udf``): the same
confidence and preference for every pair, including ``"mild_negative"``'s negative weights,
which both libraries read as a dislike with confidence ``1 + alpha * |w|``.

Regularisation mapping
----------------------
Spark scales the penalty of each vector by its number of positive ratings (ALS-WR, Zhou et
al. 2008): user ``u``'s normal equations get ``regularization * n_u * I`` where deepcuts (like
``implicit``) adds an unscaled ``regularization * I``. ``SparkALS.regularization`` is Spark's
``regParam``; the exported model's ``regularization`` (used to fold in new users) is the
equivalent unscaled value for a user of average activity, ``regParam * nnz / n_users``.

Choosing regParam (``regularization="auto"``, the default)
---------------------------------------------------------
The best penalty depends on the data (0.3 on Last.fm 2K, other values elsewhere), so no
constant is built in. ``fit`` holds out ``validation_fraction`` of the positive pairs of every
user with at least two of them (chosen by a seeded hash of the pair, so the split does not
depend on Spark's partitioning), trains on the rest with the same factors and iterations, and
scores NDCG@10 of the held-out pairs for up to ``validation_users`` of those users (played
items excluded). The search walks the sorted ``regularization_grid`` from Spark's own default
0.1 in the improving direction and stops at the first value that does not improve (a line
search on a log grid: usually 3 fits). Scores within ``REG_TOLERANCE`` (1%) of the best one
are a tie, won by the smallest value (:func:`select_regularization`), and the search steps
further down while smaller values still tie. The final model is then trained on all the data
with the winner. Pin a number to skip the search. See docs/distributed.md.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.data.weighting import apply_weighting, parse_weighting
from deepcuts.distributed._session import active_session, checked, require_spark
from deepcuts.distributed.readers import SparkInteractions
from deepcuts.exceptions import DeepcutsError, NotFittedError

__all__ = ["REG_TOLERANCE", "SparkALS", "search_regularization", "select_regularization"]

log = logging.getLogger(__name__)

#: weightings whose value for a pair depends on that pair's count only (computable per row)
ROW_LOCAL_WEIGHTINGS = ("raw", "log", "mild_negative")

#: regParam values ``regularization="auto"`` searches (a log grid, about 3 per decade)
DEFAULT_REG_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
#: where the search starts: Spark MLlib's own default regParam
_REG_START = 0.1
#: validation scores within this share of the best one are a tie, won by the smallest regParam
REG_TOLERANCE = 0.01


def select_regularization(scores, tolerance: float = REG_TOLERANCE) -> float:
    """The selection rule of ``regularization="auto"`` over ``(regParam, score)`` pairs.

    ``scores``: a mapping ``{regParam: validation score}`` or an iterable of pairs (higher
    scores are better). Every value scoring at least ``best - tolerance * |best|`` ties with the
    best one; the smallest of them wins (the weakest penalty that is as accurate as any).

    Examples
    --------
    >>> select_regularization({0.1: 0.300, 0.3: 0.404, 1.0: 0.405})
    0.3
    >>> select_regularization({0.1: 0.300, 0.3: 0.404, 1.0: 0.405}, tolerance=0.0)
    1.0
    """
    pairs = [(float(v), float(s)) for v, s in dict(scores).items()]
    if not pairs:
        raise DeepcutsError("select_regularization needs at least one (value, score) pair")
    best = max(s for _, s in pairs)
    floor = best - float(tolerance) * abs(best)
    return min(v for v, s in pairs if s >= floor)


def search_regularization(
    grid, score, *, start: float = _REG_START, tolerance: float = REG_TOLERANCE
) -> tuple[float, dict[float, float]]:
    """The line search of ``regularization="auto"``: (chosen value, ``{value: score}`` tried).

    ``score(value)`` is called at most once per value of the sorted ``grid``. The walk starts
    at the grid value nearest ``start`` (on a log scale), moves in the improving direction
    while the next value scores strictly higher, then keeps stepping to smaller values while
    they stay within ``tolerance`` of the best score, and returns
    :func:`select_regularization` of everything it scored.
    """
    grid = sorted({float(v) for v in grid})
    scores: dict[float, float] = {}

    def at(i: int) -> float:
        if grid[i] not in scores:
            scores[grid[i]] = float(score(grid[i]))
        return scores[grid[i]]

    dist = [abs(np.log10(max(v, 1e-12) / start)) for v in grid]
    i = int(np.argmin(dist))
    at(i)
    step = 0
    if i + 1 < len(grid) and at(i + 1) > at(i):
        step, i = 1, i + 1
    elif i > 0 and at(i - 1) > at(i):
        step, i = -1, i - 1
    while step and 0 <= i + step < len(grid) and at(i + step) > at(i):
        i += step
    # below the smallest tie, a smaller untried value may tie as well: try it
    j = grid.index(select_regularization(scores, tolerance))
    while j > 0 and grid[j - 1] not in scores:
        at(j - 1)
        if select_regularization(scores, tolerance) != grid[j - 1]:
            break
        j -= 1
    return select_regularization(scores, tolerance), dict(sorted(scores.items()))


def _weights(counts: pd.Series, spec: str) -> pd.Series:
    """``w(count)`` with deepcuts' own weighting code (a column of one-entry rows)."""
    x = counts.to_numpy(np.float64)
    n = len(x)
    m = sp.csr_matrix((x, np.zeros(n, np.int32), np.arange(n + 1)), shape=(n, 1))
    return pd.Series(apply_weighting(m, spec).data.astype(np.float64))


class SparkALS:
    """Implicit-feedback ALS trained by Spark MLlib, exportable to a deepcuts model.

    Parameters
    ----------
    factors : int, default=64
        Length of each vector (Spark's ``rank``).
    iterations : int, default=15
        Alternations (Spark's ``maxIter``).
    regularization : float or "auto", default="auto"
        Spark's ``regParam``: scaled by each user's (item's) number of positive ratings, unlike
        deepcuts' ALS (see the module notes). ``"auto"``: chosen from ``regularization_grid``
        on a validation split of the training data (module notes); a number pins it.
    regularization_grid : sequence of float, default=(0.01, 0.03, 0.1, 0.3, 1, 3)
        Candidates of ``"auto"``.
    validation_fraction : float, default=0.2
        Share of each user's positive pairs held out for ``"auto"``.
    validation_users : int, default=2000
        Most users scored on the driver for ``"auto"`` (a seeded sample of those with
        held-out pairs); their factors, plays and all item factors are collected.
    alpha : float, default=1.0
        Confidence slope: ``c_ui = 1 + alpha * w(x_ui)``.
    weighting : {"log", "raw", "mild_negative"} or "name:key=value", default="log"
        Count transform ``w`` of :func:`deepcuts.data.weighting.apply_weighting`; only the
        transforms that need no whole-matrix statistics (bm25 and tfidf do) are accepted.
    nonnegative : bool, default=False
        Non-negative factors (Spark's NNLS solver).
    blocks : int, optional
        Spark's ``numUserBlocks`` and ``numItemBlocks``; default the session's default
        parallelism (Spark's own default, 10, is slow on a small local session).
    checkpoint_interval : int, default=10
        Checkpoint every this many iterations when the Spark context has a checkpoint
        directory (long lineages otherwise overflow the stack on big clusters).
    random_state : int or None, default=None
        Seed of Spark's initial factors; same seed, same data, same partitioning: same model.
    spark : SparkSession, optional
        Default: the active session, else a :func:`~deepcuts.distributed.local_session`.

    Attributes
    ----------
    model_ : pyspark.ml.recommendation.ALSModel
    data_ : SparkInteractions or Interactions
        The training data as given (a Spark DataFrame is read into SparkInteractions).
    ratings_ : pyspark.sql.DataFrame
        ``uidx, iidx, count, rating`` as trained on (persisted).
    n_users_, n_items_, nnz_ : int
    fit_seconds_ : float
        Wall time of ``fit``: ratings preparation, the ``"auto"`` search and the final fit.
    regularization_ : float
        The regParam of the final model (the pinned value, or the one ``"auto"`` chose).
    validation_scores_ : dict
        ``{regParam: NDCG@10}`` on the validation split for every value ``"auto"`` tried
        (empty when pinned).

    Examples
    --------
    >>> from deepcuts.data import load_lastfm2k
    >>> model = SparkALS(factors=32, iterations=10, random_state=0)  # doctest: +SKIP
    >>> als = model.fit(load_lastfm2k()).to_deepcuts()  # doctest: +SKIP
    >>> als.save("spark-als")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        iterations: int = 15,
        regularization: float | str = "auto",
        regularization_grid=DEFAULT_REG_GRID,
        validation_fraction: float = 0.2,
        validation_users: int = 2000,
        alpha: float = 1.0,
        weighting: str = "log",
        nonnegative: bool = False,
        blocks: int | None = None,
        checkpoint_interval: int = 10,
        random_state: int | None = None,
        spark=None,
    ):
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.regularization_grid = regularization_grid
        self.validation_fraction = validation_fraction
        self.validation_users = validation_users
        self.alpha = alpha
        self.weighting = weighting
        self.nonnegative = nonnegative
        self.blocks = blocks
        self.checkpoint_interval = checkpoint_interval
        self.random_state = random_state
        self.spark = spark

    def get_params(self) -> dict:
        """Hyperparameters as a dict."""
        names = (
            "factors iterations regularization regularization_grid validation_fraction "
            "validation_users alpha weighting nonnegative blocks checkpoint_interval "
            "random_state spark"
        ).split()
        return {k: getattr(self, k) for k in names}

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.get_params().items() if k != "spark"}
        return f"SparkALS({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def integer(name, v, minimum):
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < minimum:
                raise DeepcutsError(f"{name} must be an integer >= {minimum}, got {v!r}")

        integer("factors", self.factors, 1)
        integer("iterations", self.iterations, 1)
        integer("checkpoint_interval", self.checkpoint_interval, 1)
        if self.blocks is not None:
            integer("blocks", self.blocks, 1)
        if self.random_state is not None:
            integer("random_state", self.random_state, 0)
        integer("validation_users", self.validation_users, 1)

        def number(name, v):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float | np.number)
                or not np.isfinite(v)
                or v < 0
            ):
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")

        if not (isinstance(self.regularization, str) and self.regularization == "auto"):
            if isinstance(self.regularization, str):
                raise DeepcutsError(
                    f"regularization must be a number >= 0 or 'auto', got {self.regularization!r}"
                )
            number("regularization", self.regularization)
        number("alpha", self.alpha)
        grid = self.regularization_grid
        if isinstance(grid, str) or not hasattr(grid, "__len__") or len(grid) == 0:
            raise DeepcutsError(
                f"regularization_grid must be a non-empty sequence of numbers, got {grid!r}"
            )
        for v in grid:
            number("every regularization_grid value", v)
        f = self.validation_fraction
        if isinstance(f, bool) or not isinstance(f, int | float | np.number) or not 0 < f < 1:
            raise DeepcutsError(f"validation_fraction must be in (0, 1), got {f!r}")
        if not isinstance(self.weighting, str):
            raise DeepcutsError(
                f"SparkALS needs a weighting name ({', '.join(ROW_LOCAL_WEIGHTINGS)}), got "
                f"{self.weighting!r}"
            )
        name, _ = parse_weighting(self.weighting)
        if name not in ROW_LOCAL_WEIGHTINGS:
            raise DeepcutsError(
                f"weighting {self.weighting!r} is not supported by SparkALS: it needs whole-matrix "
                f"statistics or already is a confidence; use one of {', '.join(ROW_LOCAL_WEIGHTINGS)}"
            )

    # ------------------------------------------------------------------ fitting
    def _ratings(self, spark, data):
        """(SparkInteractions or Interactions, DataFrame uidx, iidx, count)."""
        from pyspark.sql import DataFrame

        if isinstance(data, Interactions):
            coo = data.matrix.tocoo()
            pdf = pd.DataFrame(
                {
                    "uidx": coo.row.astype(np.int32),
                    "iidx": coo.col.astype(np.int32),
                    "count": coo.data.astype(np.float64),
                }
            )
            return data, spark.createDataFrame(pdf), (data.n_users, data.n_items, data.nnz)
        if isinstance(data, DataFrame):
            from deepcuts.distributed.readers import from_frame

            data = from_frame(data, spark=spark)
        if isinstance(data, SparkInteractions):
            return (
                data,
                data.indexed().select("uidx", "iidx", "count"),
                (
                    data.n_users,
                    data.n_items,
                    data.nnz,
                ),
            )
        raise DeepcutsError(
            f"SparkALS.fit expects SparkInteractions (deepcuts.distributed.read_*), a Spark "
            f"DataFrame with columns user, item[, count] or deepcuts Interactions, got "
            f"{type(data).__name__}"
        )

    def fit(self, data) -> SparkALS:
        """Fit from scratch. Returns self.

        Parameters
        ----------
        data : SparkInteractions, pyspark DataFrame or Interactions
            Play counts: a distributed reader's result, a Spark DataFrame with columns
            ``user``, ``item`` and optionally ``count`` (summed per pair), or local
            :class:`~deepcuts.data.Interactions` (its user and item order is kept).
        """
        require_spark()
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        self._check_params()
        spark = active_session(self.spark)
        t0 = time.perf_counter()
        data, counts, (n_users, n_items, nnz) = self._ratings(spark, data)
        spec = self.weighting

        def weigh_batch(counts: pd.Series) -> pd.Series:
            return _weights(counts, spec)

        weigh = F.pandas_udf(weigh_batch, "double")
        ratings = (
            counts.filter(F.col("count") > 0)
            .withColumn("rating", weigh(F.col("count")).cast("float"))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        blocks = int(self.blocks or spark.sparkContext.defaultParallelism)
        self.validation_scores_ = {}
        if isinstance(self.regularization, str):  # "auto"
            reg = self._choose_regularization(spark, ratings, blocks, int(n_items))
        else:
            reg = float(self.regularization)
        est = self._estimator(reg, blocks)
        self.model_ = checked(lambda: est.fit(ratings))
        self.regularization_ = reg
        self.fit_seconds_ = time.perf_counter() - t0
        self.data_ = data
        self.ratings_ = ratings
        self.n_users_, self.n_items_, self.nnz_ = int(n_users), int(n_items), int(nnz)
        self._factors = None
        log.info(
            "SparkALS trained %d iterations on %d users x %d items (%d pairs) in %.1fs",
            self.iterations, n_users, n_items, nnz, self.fit_seconds_,
        )  # fmt: skip
        return self

    def _estimator(self, reg: float, blocks: int):
        from pyspark.ml.recommendation import ALS as _SparkALS

        est = _SparkALS(
            rank=int(self.factors),
            maxIter=int(self.iterations),
            regParam=float(reg),
            alpha=float(self.alpha),
            implicitPrefs=True,
            nonnegative=bool(self.nonnegative),
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            checkpointInterval=int(self.checkpoint_interval),
            userCol="uidx",
            itemCol="iidx",
            ratingCol="rating",
            coldStartStrategy="drop",
        )
        if self.random_state is not None:
            est.setSeed(int(self.random_state))
        return est

    def _validation_split(self, ratings):
        """``ratings`` with a boolean column ``valid``: ``validation_fraction`` of each user's
        positive pairs (``clip(round(f * n), 1, n - 1)`` of them when ``n >= 2``), picked by a
        seeded hash of (user, item) so that the split does not depend on the partitioning."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        seed = 0 if self.random_state is None else int(self.random_state)
        f = float(self.validation_fraction)
        pos = F.col("rating") > 0
        n = F.sum(pos.cast("int")).over(Window.partitionBy("uidx"))
        order = Window.partitionBy("uidx", "pos").orderBy(
            F.xxhash64("uidx", "iidx", F.lit(seed)), "iidx"
        )
        n_valid = F.when(n >= 2, F.least(F.greatest(F.floor(n * f + 0.5), F.lit(1)), n - 1))
        return (
            ratings.withColumn("pos", pos)
            .withColumn("n_valid", F.coalesce(n_valid, F.lit(0)))
            .withColumn("valid", F.col("pos") & (F.row_number().over(order) <= F.col("n_valid")))
            .drop("pos", "n_valid")
        )

    def _choose_regularization(self, spark, ratings, blocks: int, n_items: int) -> float:
        """``regularization="auto"``: the line search of the module notes; fills
        ``validation_scores_`` and returns the chosen regParam."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        from deepcuts.models.als import _ndcg_at_k  # driver only: executors never import it

        seed = 0 if self.random_state is None else int(self.random_state)
        split = self._validation_split(ratings).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            train = split.filter(~F.col("valid")).select("uidx", "iidx", "count", "rating")
            # the scored users: a seeded sample of those with held-out pairs
            users = (
                split.filter(F.col("valid"))
                .select("uidx")
                .distinct()
                .orderBy(F.xxhash64("uidx", F.lit(seed + 1)), "uidx")
                .limit(int(self.validation_users))
            )
            sample = np.sort(checked(lambda: users.toPandas())["uidx"].to_numpy(np.int64))
            if len(sample) == 0:
                reg = float(min(self.regularization_grid, key=lambda v: abs(v - _REG_START)))
                log.warning(
                    "regularization='auto': no user has two positive pairs to hold one out; "
                    "using regParam %g", reg
                )  # fmt: skip
                return reg
            picked = spark.createDataFrame(pd.DataFrame({"uidx": sample.astype(np.int32)}))
            pairs = checked(
                lambda: (
                    split.join(F.broadcast(picked), "uidx")
                    .select("uidx", "iidx", "valid")
                    .toPandas()
                )
            )
            rows = np.searchsorted(sample, pairs["uidx"].to_numpy(np.int64))
            cols = pairs["iidx"].to_numpy(np.int64)
            is_valid = pairs["valid"].to_numpy(bool)

            def csr(mask):
                return sp.csr_matrix(
                    (np.ones(int(mask.sum()), np.float32), (rows[mask], cols[mask])),
                    shape=(len(sample), n_items),
                )

            seen, held = csr(~is_valid), csr(is_valid)

            def score(reg: float) -> float:
                model = checked(lambda: self._estimator(reg, blocks).fit(train))
                Y = _collect_factors(model.itemFactors, n_items, int(self.factors))
                uf = model.userFactors.join(
                    F.broadcast(picked.withColumnRenamed("uidx", "id")), "id"
                )
                X = np.zeros((len(sample), int(self.factors)), np.float32)
                pdf = uf.toPandas()
                if len(pdf):
                    at = np.searchsorted(sample, pdf["id"].to_numpy(np.int64))
                    X[at] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
                value = float(_ndcg_at_k(X, Y, seen, held, 10))
                log.info(
                    "regularization='auto': regParam %g -> validation NDCG@10 %.4f", reg, value
                )
                return value

            chosen, scores = search_regularization(self.regularization_grid, score)
            self.validation_scores_ = scores
            return chosen
        finally:
            split.unpersist()

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this SparkALS instance is not fitted yet; call fit first")

    # ------------------------------------------------------------------ factors
    def factors_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """User and item factors collected to the driver, float32 C-contiguous.

        Returns
        -------
        user_factors : ndarray of shape (n_users, factors) float32
        item_factors : ndarray of shape (n_items, factors) float32
            Rows in the training data's user and item order (zeros for a user or item without
            a positive rating, which Spark gives no vector).
        """
        self._check_fitted()
        if self._factors is None:
            self._factors = (
                _collect_factors(self.model_.userFactors, self.n_users_, int(self.factors)),
                _collect_factors(self.model_.itemFactors, self.n_items_, int(self.factors)),
            )
        return self._factors

    @property
    def user_factors_(self) -> np.ndarray:
        return self.factors_arrays()[0]

    @property
    def item_factors_(self) -> np.ndarray:
        return self.factors_arrays()[1]

    @property
    def equivalent_regularization_(self) -> float:
        """deepcuts' unscaled penalty for a user of average activity: ``regParam * nnz/n_users``."""
        self._check_fitted()
        return float(self.regularization_) * self.nnz_ / max(self.n_users_, 1)

    def to_interactions(self) -> Interactions:
        """The training data as local :class:`Interactions` (collected if it is in Spark)."""
        self._check_fitted()
        return self.data_ if isinstance(self.data_, Interactions) else self.data_.to_interactions()

    def to_deepcuts(self):
        """A fitted :class:`deepcuts.models.ALS` holding Spark's factors and the training data.

        It saves and loads like any deepcuts model (``.npz`` + JSON manifest), recommends,
        takes the re-rankers (rarity knob, band, MMR) and folds in new listeners; its
        ``regularization`` is :attr:`equivalent_regularization_` (used to fold in new users).
        Collects the factors and the play counts on the driver.

        Returns
        -------
        deepcuts.models.ALS
        """
        from deepcuts.models.als import ALS

        self._check_fitted()
        U, Y = self.factors_arrays()
        m = ALS(
            factors=int(self.factors),
            iterations=int(self.iterations),
            regularization=self.equivalent_regularization_,
            reg_scaling="none",  # Spark's scaled penalty is mapped onto an unscaled one
            alpha=float(self.alpha),
            weighting=self.weighting,
            solver="cholesky",  # Spark solves each vector exactly
            random_state=self.random_state,
        )
        m.user_factors_ = np.ascontiguousarray(U, np.float32).copy()
        m.item_factors_ = np.ascontiguousarray(Y, np.float32).copy()
        m.loss_history_ = np.zeros(0, np.float64)
        m.validation_history_ = np.zeros(0, np.float64)
        m.n_iterations_ = int(self.iterations)
        m.interactions_ = self.to_interactions()
        m._reset_caches()
        return m


def _collect_factors(df, n: int, f: int) -> np.ndarray:
    pdf = df.toPandas()
    out = np.zeros((n, f), np.float32)
    if len(pdf):
        ids = pdf["id"].to_numpy(np.int64)
        out[ids] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return np.ascontiguousarray(out)
