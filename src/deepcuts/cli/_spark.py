"""``deepcuts spark-train``: read a big listening log with Spark, train ALS there, save a model.

The model is a regular deepcuts ALS (``.npz`` + ``.json``) that ``deepcuts recommend`` and
``deepcuts serve`` use as they use any other; ``--recommend-out`` also writes every user's
top-n as Parquet, computed in the Spark executors.
"""

from __future__ import annotations

import argparse
import time

from deepcuts.cli._checks import seed


def _regularization(value: str):
    """argparse type of ``--regularization``: ``auto`` or a number."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {value!r}") from None


def register(sub) -> None:
    p = sub.add_parser(
        "spark-train",
        help="train ALS on Apache Spark (big data; needs deepcuts[spark] and Java)",
        description="Read listening data with Spark, aggregate it per (user, artist), train "
        "Spark MLlib's implicit ALS with deepcuts' confidence c = 1 + alpha * w(plays) and save "
        "it as a deepcuts model (MODEL.npz + MODEL.json). Example: deepcuts spark-train "
        "--input listens.tsv --format lastfm1k --out lfm1k-als --master local[2] "
        "--recommend-out recs.parquet --rarity 0.5. See docs/distributed.md.",
    )
    p.add_argument("--input", required=True, help="file, folder or URI (hdfs://, s3a://...)")
    p.add_argument(
        "--format",
        required=True,
        choices=("lastfm1k", "table", "msd"),
        help="lastfm1k: Last.fm 1K listens TSV; table: CSV/TSV/Parquet with a header "
        "(--columns); msd: Taste Profile triplets (needs --mapping)",
    )
    p.add_argument("-o", "--out", required=True, help="model path (without extension)")
    p.add_argument(
        "--master",
        default=None,
        help="Spark master: local[N], local[*], spark://HOST:PORT, yarn, k8s://... "
        "(default: spark-submit's --master when spark-submit runs deepcuts, else local[2])",
    )
    p.add_argument("--memory", default="1g", help="driver memory of a local session (e.g. 4g)")
    p.add_argument("--columns", metavar="ROLE=COL,...", help="table: user=...,item=...,count=...")
    p.add_argument(
        "--normalize",
        action="store_true",
        help="table: the item column holds artist credits; map them to deepcuts artist keys",
    )
    p.add_argument("--mapping", metavar="PATH", help="msd: unique_tracks.txt or song_id CSV")
    p.add_argument(
        "--drop-unknown-songs", action="store_true", help="msd: drop songs not in --mapping"
    )
    p.add_argument("--credit", choices=("primary", "split"), default="primary")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument(
        "--regularization",
        type=_regularization,
        default="auto",
        help="Spark's regParam (scaled by each user's number of plays), or 'auto' (default): "
        "chosen on a validation split of the training data (docs/distributed.md)",
    )
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--weighting", default="log", help="raw, log or mild_negative (default log)")
    p.add_argument("--nonnegative", action="store_true", help="non-negative factors")
    p.add_argument("--blocks", type=int, help="Spark ALS user/item blocks (default parallelism)")
    p.add_argument("--seed", type=seed, default=0, help="random_state (default 0)")
    p.add_argument("--recommend-out", metavar="PATH", help="also write top-n per user (Parquet)")
    p.add_argument("-n", type=int, default=10, help="list length for --recommend-out")
    p.add_argument("--rarity", type=float, help="rarity knob for --recommend-out (1 = neutral)")
    p.add_argument("--band", help="obscurity band LOW:HIGH for --recommend-out")
    p.add_argument(
        "--depth", help='depth knob for --recommend-out: 0 (neutral) to 1 (deepest), or "mine"'
    )
    p.add_argument("--floor", type=int, help="the depth knob's evidence floor (default 3)")
    p.add_argument(
        "--taste", type=float, help="the depth knob's weight of taste evidence (default 0.5)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from deepcuts.distributed import (
        SparkALS,
        read_lastfm1k,
        read_msd_taste_profile,
        read_table,
        recommend_all,
    )
    from deepcuts.distributed._session import require_spark, session_for_master
    from deepcuts.distributed.readers import _check_input
    from deepcuts.exceptions import DeepcutsError
    from deepcuts.rerank import build_rerankers

    if args.format == "msd" and not args.mapping:
        raise DeepcutsError("--format msd needs --mapping (unique_tracks.txt or a song_id CSV)")
    if args.format != "table" and (args.columns or args.normalize):
        raise DeepcutsError("--columns and --normalize apply to --format table only")
    # bad knobs fail before Spark starts
    build_rerankers(
        rarity=args.rarity, band=args.band, depth=args.depth, floor=args.floor, taste=args.taste
    )
    model = SparkALS(
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.regularization,
        alpha=args.alpha,
        weighting=args.weighting,
        nonnegative=args.nonnegative,
        blocks=args.blocks,
        random_state=args.seed,
    )
    model._check_params()
    require_spark()
    for path in (args.input, args.mapping):
        if path:
            _check_input(path)  # a missing file fails before the JVM starts
    spark, created = session_for_master(args.master, memory=args.memory)
    try:
        t0 = time.perf_counter()
        if args.format == "lastfm1k":
            data = read_lastfm1k(args.input, spark=spark, credit=args.credit)
        elif args.format == "table":
            data = read_table(
                args.input,
                spark=spark,
                columns=args.columns,
                normalize=args.normalize,
                credit=args.credit,
            )
        else:
            data = read_msd_taste_profile(
                args.input,
                args.mapping,
                spark=spark,
                credit=args.credit,
                unknown_songs="drop" if args.drop_unknown_songs else "raise",
            )
        t_read = time.perf_counter() - t0
        print(
            f"Read {data.n_users} users x {data.n_items} items ({data.nnz} pairs) in {t_read:.1f}s"
        )
        model.spark = spark
        model.fit(data)
        print(f"Trained {model!r} in {model.fit_seconds_:.1f}s on {spark.sparkContext.master}")
        if model.validation_scores_:
            tried = ", ".join(f"{k:g}: {v:.4f}" for k, v in model.validation_scores_.items())
            print(
                f"regParam {model.regularization_:g} chosen on a validation split of the "
                f"training data (validation NDCG@10 {tried})"
            )
        manifest = model.to_deepcuts().save(args.out)
        print(f"Saved {manifest} (+ .npz)")
        if args.recommend_out:
            t0 = time.perf_counter()
            recommend_all(
                model,
                n=args.n,
                rarity=args.rarity,
                band=args.band,
                depth=args.depth,
                floor=args.floor,
                taste=args.taste,
                output=args.recommend_out,
                spark=spark,
            )
            dt = time.perf_counter() - t0
            print(
                f"Wrote top-{args.n} lists of {data.n_users} users to {args.recommend_out} ({dt:.1f}s)"
            )
        data.unpersist()
    finally:
        if created:
            spark.stop()
    return 0
