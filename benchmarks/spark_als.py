"""Spark ALS (``deepcuts.distributed.SparkALS``) vs deepcuts' local ALS, the anchor.

Both are trained on the same split (``deepcuts.evaluation.user_holdout_split``, 20% of each
user's items held out, seed 0) of

(a) the bundled Last.fm 2K (``deepcuts.data.load_lastfm2k()``) and
(b) a generated power-law matrix (``powerlaw_matrix`` of ``benchmarks/als.py``: Pareto user
    activity, Zipf item popularity, home genres) at ``--powerlaw-scale`` of its full size,

with the same confidence ``c_ui = 1 + alpha * log(1 + plays)`` (``weighting="log"``, alpha 1),
the same number of factors and iterations, and both scored by ``deepcuts.evaluation.evaluate``
(Spark's factors are exported to a deepcuts ALS with ``SparkALS.to_deepcuts()``, so ranking,
filtering of played items and metrics are the same code). The penalties differ by design:
deepcuts adds ``0.01 * I`` to every vector (unscaled), Spark ``regParam * n_u * I`` (ALS-WR);
``--regs`` sweeps Spark's ``regParam`` on (a) (``--powerlaw-regs`` on (b)) to validate
SparkALS's default, and each Spark row is followed by a local fit whose unscaled penalty is
Spark's for a user of average activity (``regParam * nnz / n_users``,
``SparkALS.equivalent_regularization_``), which separates the effect of ALS-WR's per-user
scaling from that of a stronger penalty.

Times are wall-clock seconds measured in this run: the local fit (after a warm-up fit so numba's
compilation is excluded), Spark's fit (ratings upload and weighting included, on a
``local[--cores]`` session started before timing) and the batch top-10 of every user
(``recommend_all`` writing Parquet vs the exported model's ``recommend``). The ratio column is
Spark / local: above 1 means Spark is slower. On one small machine Spark is expected to be
slower; what it buys is that the data and the solve are spread over a cluster.

Usage::

    python benchmarks/spark_als.py                       # both datasets (about 10 minutes)
    python benchmarks/spark_als.py --datasets lastfm2k   # the reg sweep on Last.fm 2K only
    python benchmarks/spark_als.py --out docs/spark-benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from als import _interactions, powerlaw_matrix  # noqa: E402  (benchmarks/als.py)

from deepcuts.data import load_lastfm2k  # noqa: E402
from deepcuts.distributed import SparkALS, local_session, recommend_all  # noqa: E402
from deepcuts.evaluation import evaluate, user_holdout_split  # noqa: E402
from deepcuts.models import ALS  # noqa: E402


def dataset(name: str, scale: float):
    if name == "lastfm2k":
        x = load_lastfm2k()
    else:
        x = _interactions(
            powerlaw_matrix(int(200_000 * scale), int(50_000 * scale), int(9_000_000 * scale))
        )
    return user_holdout_split(x, test_fraction=0.2, random_state=0)


def scores(model, train, test, users) -> dict:
    ev = evaluate(model, train, test, k=(10, 20), metrics=("ndcg", "recall"), users=users)
    return {"ndcg@10": ev[1]["ndcg@10"], "recall@20": ev[1]["recall@20"]}


def run(args) -> list[dict]:
    spark = local_session(cores=args.cores, memory=args.memory)
    rows = []
    for name in args.datasets:
        train, test = dataset(name, args.powerlaw_scale)
        idx = np.flatnonzero(test.matrix.getnnz(axis=1) > 0)
        if args.eval_users and len(idx) > args.eval_users:
            idx = np.sort(np.random.default_rng(0).choice(idx, args.eval_users, replace=False))
        users = train.user_map.external(idx)
        desc = f"{name} ({train.n_users} users x {train.n_items} items, {train.nnz} train pairs)"
        print(f"== {desc}", flush=True)

        def make_local():
            return ALS(
                factors=args.factors, iterations=args.iterations, regularization=0.01,
                reg_scaling="none", random_state=0,
            )  # fmt: skip

        ALS(factors=args.factors, iterations=1, random_state=0).fit(train)  # numba warm-up
        t0 = time.perf_counter()
        local = make_local().fit(train)
        local_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        local.recommend(train.user_map.ids, n=10)
        local_batch = time.perf_counter() - t0
        anchor = {
            "dataset": name, "engine": "deepcuts ALS (local, anchor)", "reg": 0.01,
            "fit_s": local_fit, "batch_s": local_batch, **scores(local, train, test, users),
        }  # fmt: skip
        rows.append(anchor)
        print(anchor, flush=True)
        # the first Spark job of a session also warms up the JVM's JIT: not timed
        SparkALS(
            factors=args.factors, iterations=1, regularization=0.1, random_state=0, spark=spark
        ).fit(train)
        regs = args.regs if name == "lastfm2k" else args.powerlaw_regs
        for reg in regs:
            model = SparkALS(
                factors=args.factors, iterations=args.iterations, regularization=reg,
                random_state=0, spark=spark,
            ).fit(train)  # fmt: skip
            als = model.to_deepcuts()
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                recommend_all(model, n=10, output=os.path.join(tmp, "recs"), spark=spark)
                batch = time.perf_counter() - t0
            row = {
                "dataset": name, "engine": f"Spark ALS (local[{args.cores}])", "reg": reg,
                "fit_s": model.fit_seconds_, "batch_s": batch, **scores(als, train, test, users),
            }  # fmt: skip
            model.ratings_.unpersist()
            rows.append(row)
            print(row, flush=True)
            # the local model with Spark's penalty for a user of average activity, unscaled
            equiv = model.equivalent_regularization_
            t0 = time.perf_counter()
            same = ALS(
                factors=args.factors, iterations=args.iterations, regularization=equiv,
                reg_scaling="none", random_state=0,
            ).fit(train)  # fmt: skip
            row = {
                "dataset": name, "engine": "deepcuts ALS (local, reg = Spark's x mean n_u)",
                "reg": equiv, "fit_s": time.perf_counter() - t0, "batch_s": np.nan,
                **scores(same, train, test, users),
            }  # fmt: skip
            rows.append(row)
            print(row, flush=True)
    spark.stop()
    return rows


def fmt(v: float, digits: int = 2) -> str:
    return "-" if not np.isfinite(v) else f"{v:.{digits}f}"


def markdown(rows: list[dict]) -> str:
    t = pd.DataFrame(rows)
    out = [
        "| dataset | engine | reg | fit s | fit ratio | batch top-10 s | batch ratio | "
        "NDCG@10 | recall@20 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in t.groupby("dataset", sort=False):
        a = g.iloc[0]
        for _, r in g.iterrows():
            out.append(
                f"| {name} | {r.engine} | {r.reg:g} | {r.fit_s:.2f} | {r.fit_s / a.fit_s:.1f} | "
                f"{fmt(r.batch_s)} | {fmt(r.batch_s / a.batch_s, 1)} | {r['ndcg@10']:.4f} | "
                f"{r['recall@20']:.4f} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["lastfm2k", "powerlaw"])
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regs", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0])
    ap.add_argument("--powerlaw-regs", type=float, nargs="+", default=[0.1, 0.3])
    ap.add_argument("--powerlaw-scale", type=float, default=0.1)
    ap.add_argument("--eval-users", type=int, default=5000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", default="2g")
    ap.add_argument("--out", help="also write the rows as JSON")
    args = ap.parse_args()
    rows = run(args)
    print()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs; factors {args.factors}, "
          f"iterations {args.iterations}; ratios: Spark / local anchor (same run)")  # fmt: skip
    print(markdown(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
