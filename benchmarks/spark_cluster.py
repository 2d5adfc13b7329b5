"""SparkALS on a Spark standalone cluster vs the local ALS (the anchor), same data, same settings.

Starts a master and two workers on this machine (``deepcuts.distributed.standalone_cluster``:
Spark's own Master and Worker daemons, 1 core and 1 GB each) unless ``--master`` names a
running cluster, trains ``SparkALS`` there (driver in this process, executors on the workers)
and the local ``deepcuts.models.ALS`` with equal settings: 64 factors, 15 iterations,
confidence ``1 + log(1 + plays)``, the ALS-WR penalty ``regParam * n_u`` (``reg_scaling=
"activity"``), exact solves (``solver="cholesky"``, as Spark's), regParam 0.3 pinned on both
so that the two engines are compared like with like. Data: Last.fm 2K
(``deepcuts.data.load_lastfm2k()``), 20% of each user's items held out (seed 0); both models
are scored by ``deepcuts.evaluation.evaluate`` on all test users.

Prints ``name = value`` lines (times in seconds, measured in this run; the cluster's fit
includes uploading and weighting the ratings) and writes them to ``--out``.

Usage::

    python benchmarks/spark_cluster.py --out docs/spark-cluster.json
    python benchmarks/spark_cluster.py --master spark://head:7077   # an existing cluster
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from deepcuts.data import load_lastfm2k
from deepcuts.distributed import SparkALS, cluster_session, standalone_cluster
from deepcuts.evaluation import evaluate, user_holdout_split
from deepcuts.models import ALS


def scores(model, train, test) -> dict:
    ev = evaluate(model, train, test, k=(10, 20), metrics=("ndcg", "recall"))[1]
    return {"ndcg@10": float(ev["ndcg@10"]), "recall@20": float(ev["recall@20"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--master", help="spark://HOST:PORT of a running cluster (default: start one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=0.3)
    ap.add_argument("--out", help="also write the numbers as JSON")
    args = ap.parse_args()

    train, test = user_holdout_split(load_lastfm2k(), test_fraction=0.2, random_state=0)
    settings = dict(
        factors=args.factors, iterations=args.iterations,
        regularization=args.regularization, random_state=0,
    )  # fmt: skip
    res: dict = {}
    t_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        master = args.master
        if master is None:
            t0 = time.perf_counter()
            cluster = stack.enter_context(standalone_cluster(workers=args.workers, cores=1))
            master = cluster.master_url
            res["cluster_start_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        spark = cluster_session(
            master,
            executor_memory="1g",
            conf={"spark.driver.host": "127.0.0.1", "spark.pyspark.python": sys.executable}
            if args.master is None
            else None,
        )
        stack.callback(spark.stop)
        res["session_start_s"] = time.perf_counter() - t0
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
        model = SparkALS(**settings, spark=spark).fit(train)
        res["cluster_executors"] = int(executors)
        res["cluster_fit_s"] = model.fit_seconds_
        cl = scores(model.to_deepcuts(), train, test)
    ALS(factors=args.factors, iterations=1, random_state=0).fit(train)  # numba warm-up
    t0 = time.perf_counter()
    local = ALS(**settings, reg_scaling="activity", solver="cholesky").fit(train)
    res["local_fit_s"] = time.perf_counter() - t0
    lo = scores(local, train, test)
    for k in ("ndcg@10", "recall@20"):
        res[f"cluster_{k}"] = cl[k]
        res[f"local_{k}"] = lo[k]
        res[f"cluster_over_local_{k}"] = cl[k] / lo[k]
    res["cluster_over_local_fit"] = res["cluster_fit_s"] / res["local_fit_s"]
    res["total_s"] = time.perf_counter() - t_all
    for k, v in res.items():
        print(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}")
    holds = abs(res["cluster_over_local_ndcg@10"] - 1) <= 0.05
    print(f"target_ndcg_within_5pct = {holds}")
    if args.out:
        meta = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
            "master": args.master or f"standalone, {args.workers} workers x 1 core x 1g",
            "settings": settings,
            "data": "Last.fm 2K, user_holdout_split(test_fraction=0.2, random_state=0)",
        }
        Path(args.out).write_text(json.dumps({**meta, "results": res}, indent=1) + "\n")


if __name__ == "__main__":
    main()
