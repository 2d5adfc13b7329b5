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
The default 0.3 was the best of 0.03, 0.1, 0.3 and 1 on Last.fm 2K and of 0.1 and 0.3 on a
generated power-law matrix (``benchmarks/spark_als.py``, docs/distributed.md); Spark's own
default is 0.1.
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

__all__ = ["SparkALS"]

log = logging.getLogger(__name__)

#: weightings whose value for a pair depends on that pair's count only (computable per row)
ROW_LOCAL_WEIGHTINGS = ("raw", "log", "mild_negative")


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
    regularization : float, default=0.3
        Spark's ``regParam``: scaled by each user's (item's) number of positive ratings, unlike
        deepcuts' ALS (see the module notes).
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
        Wall time of Spark's ``ALS.fit`` (ratings preparation included).

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
        regularization: float = 0.3,
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
            "factors iterations regularization alpha weighting nonnegative blocks "
            "checkpoint_interval random_state spark"
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
        for name in ("regularization", "alpha"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float | np.number)
                or not np.isfinite(v)
                or v < 0
            ):
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")
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
        from pyspark.ml.recommendation import ALS as _SparkALS
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
        est = _SparkALS(
            rank=int(self.factors),
            maxIter=int(self.iterations),
            regParam=float(self.regularization),
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
        self.model_ = checked(lambda: est.fit(ratings))
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
        return float(self.regularization) * self.nnz_ / max(self.n_users_, 1)

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
