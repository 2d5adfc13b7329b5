"""``SparkALS(regularization="auto")`` vs pinned regParam values, on held-out test data.

"auto" (the default) picks regParam on a validation split of the *training* data (20% of each
user's positive pairs, seeded; line search over 0.01 ... 3 from Spark's default 0.1). This
benchmark checks what that choice is worth on the test split, which the choice never sees:
for each data set it prints the chosen value, the validation NDCG@10 of every value tried, and
the test NDCG@10 / recall@20 of the "auto" model next to pinned regParam 0.1 (Spark MLlib's
default) and 0.3 (SparkALS's former default, picked on Last.fm 2K's test split).

Data: Last.fm 2K (``deepcuts.data.load_lastfm2k()``) and generated listening data
(``deepcuts.data.generate_listening(3000, 5000, random_state=0)``), each split by
``user_holdout_split(test_fraction=0.2, random_state=0)``. 32 factors, 10 iterations, a
``local[2]`` session.

Usage::

    python benchmarks/spark_reg_auto.py --out docs/spark-reg-auto.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from deepcuts.data import generate_listening, load_lastfm2k
from deepcuts.distributed import SparkALS, local_session
from deepcuts.evaluation import evaluate, user_holdout_split


def scores(model, train, test) -> dict:
    ev = evaluate(model, train, test, k=(10, 20), metrics=("ndcg", "recall"))[1]
    return {"ndcg@10": float(ev["ndcg@10"]), "recall@20": float(ev["recall@20"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["lastfm2k", "generated"])
    ap.add_argument("--factors", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--pinned", type=float, nargs="+", default=[0.1, 0.3])
    ap.add_argument("--out")
    args = ap.parse_args()
    spark = local_session(cores=2, memory="2g")
    out = {"factors": args.factors, "iterations": args.iterations, "datasets": {}}
    for name in args.datasets:
        x = (
            load_lastfm2k()
            if name == "lastfm2k"
            else generate_listening(3000, 5000, random_state=0).interactions
        )
        train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
        kw = dict(factors=args.factors, iterations=args.iterations, random_state=0, spark=spark)
        t0 = time.perf_counter()
        auto = SparkALS(**kw).fit(train)
        row = {
            "chosen": auto.regularization_,
            "validation_ndcg@10": {str(k): v for k, v in auto.validation_scores_.items()},
            "auto_fit_s": time.perf_counter() - t0,
            "auto": scores(auto.to_deepcuts(), train, test),
        }
        auto.ratings_.unpersist()
        for reg in args.pinned:
            m = SparkALS(**kw, regularization=reg).fit(train)
            row[f"pinned_{reg:g}"] = scores(m.to_deepcuts(), train, test)
            row[f"pinned_{reg:g}_fit_s"] = m.fit_seconds_
            m.ratings_.unpersist()
        out["datasets"][name] = row
        print(f"{name}_chosen_regparam = {row['chosen']:g}")
        for k, v in row["validation_ndcg@10"].items():
            print(f"{name}_validation_ndcg@10[{k}] = {v:.4f}")
        for key in ["auto"] + [f"pinned_{r:g}" for r in args.pinned]:
            for metric, v in row[key].items():
                print(f"{name}_{key}_test_{metric} = {v:.4f}")
        print(f"{name}_auto_fit_s = {row['auto_fit_s']:.1f}")
        print(f"{name}_pinned_fit_s = {row[f'pinned_{args.pinned[-1]:g}_fit_s']:.1f}")
    spark.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
