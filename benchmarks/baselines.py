"""Baselines vs implicit's item-kNN on Last.fm 2K (per-user 20% holdout, seed 0).

Fits Popularity and our ItemKNN (cosine, BM25) and the ``implicit`` package's
``CosineRecommender`` / ``BM25Recommender`` with the same K on the same training matrix (raw play
counts), scores every top-20 list with deepcuts' own metrics and prints NDCG@10, recall@20,
coverage@10 and novelty@10 of each, the ratio ours / implicit and the fit times (best of
``--repeats`` warm fits, so numba compilation is excluded). Writes the table to
``docs/benchmarks.md`` (section "Baselines vs implicit item-kNN"; other sections are kept).

Usage: ``python benchmarks/baselines.py [--k-neighbours 100] [--no-write]``
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

from deepcuts.data import load_lastfm2k
from deepcuts.evaluation import evaluate, score_lists, user_holdout_split
from deepcuts.models import ItemKNN, Popularity

SECTION = "Baselines vs implicit item-kNN"
METRICS = ("ndcg", "recall", "coverage", "novelty")
COLUMNS = ["ndcg@10", "recall@20", "coverage@10", "novelty@10"]


def best_fit_time(make, fit, repeats: int):
    best, model = np.inf, None
    for _ in range(repeats):
        model = make()
        t0 = time.perf_counter()
        fit(model)
        best = min(best, time.perf_counter() - t0)
    return model, best


def run(k_neighbours: int, repeats: int) -> pd.DataFrame:
    x = load_lastfm2k()
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    users = np.flatnonzero(test.matrix.getnnz(axis=1) > 0).astype(np.int32)
    ui = train.matrix[users]
    rows = []

    def ours(label, make):
        make().fit(train)  # warm-up: numba compilation
        model, fit_s = best_fit_time(make, lambda m: m.fit(train), repeats)
        _, means = evaluate(model, train, test, k=(10, 20), metrics=METRICS)
        rows.append({"model": label, "library": "deepcuts", "fit_s": fit_s, **means})

    def theirs(label, make):
        m = make()
        m.fit(train.matrix, show_progress=False)
        model, fit_s = best_fit_time(
            make, lambda m: m.fit(train.matrix, show_progress=False), repeats
        )
        ids, _ = model.recommend(users, ui, N=20, filter_already_liked_items=True)
        rec = np.where(ids >= 0, ids, -1).astype(np.int64)
        _, means = score_lists(rec, users, train, test, k=(10, 20), metrics=METRICS)
        rows.append({"model": label, "library": "implicit", "fit_s": fit_s, **means})

    ours("Popularity", Popularity)
    ours("ItemKNN cosine", lambda: ItemKNN(k=k_neighbours, similarity="cosine"))
    ours("ItemKNN bm25", lambda: ItemKNN(k=k_neighbours, similarity="bm25"))
    theirs("CosineRecommender", lambda: CosineRecommender(K=k_neighbours))
    theirs("BM25Recommender", lambda: BM25Recommender(K=k_neighbours, K1=1.2, B=0.75))
    table = pd.DataFrame(rows)
    return table, train, test


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    pairs = [("ItemKNN cosine", "CosineRecommender"), ("ItemKNN bm25", "BM25Recommender")]
    t = table.set_index("model")
    out = []
    for ours, theirs in pairs:
        row = {"ours / implicit": f"{ours} / {theirs}"}
        for c in ["ndcg@10", "recall@20", "coverage@10", "novelty@10", "fit_s"]:
            row[c] = t.loc[ours, c] / t.loc[theirs, c]
        out.append(row)
    # the popularity baseline against implicit's better kNN, for scale
    row = {"ours / implicit": "Popularity / BM25Recommender"}
    for c in ["ndcg@10", "recall@20", "coverage@10", "novelty@10"]:
        row[c] = t.loc["Popularity", c] / t.loc["BM25Recommender", c]
    out.append(row)
    return pd.DataFrame(out)


def markdown(table, ratio, train, test, k_neighbours, repeats) -> str:
    def fmt(df):
        cols = list(df.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in df.itertuples(index=False):
            cells = []
            for v in r:
                if isinstance(v, float):
                    cells.append("" if np.isnan(v) else f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}")
                else:
                    cells.append(str(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    main = table[["model", "library", *COLUMNS, "fit_s"]]
    return (
        f"## {SECTION}\n\n"
        f"`python benchmarks/baselines.py` on the bundled Last.fm 2K (HetRec 2011), per-user 20% "
        f"holdout, seed 0: {train.nnz} train / {test.nnz} test pairs, "
        f"{int((test.matrix.getnnz(axis=1) > 0).sum())} test users. K = {k_neighbours} "
        "neighbours for every kNN, raw play counts as the training matrix for both libraries, "
        "BM25 with K1 = 1.2, B = 0.75; played items filtered; every top-20 list scored by "
        "deepcuts' metrics (see `docs/evaluation.md`). Fit time: best of "
        f"{repeats} warm fits on {platform.machine()} with the cores available at run time "
        "(both libraries multi-threaded).\n\n"
        f"{fmt(main)}\n\nRatios ours / implicit (1.0 = same):\n\n{fmt(ratio)}\n\n"
        "Our BM25 differs from implicit's in two details: the document length is the number of "
        "an item's listeners (implicit: its total plays) and idf is log(N / df) (implicit: "
        "log N - log(1 + df)); our kNN excludes the item itself from its K neighbours (implicit "
        "keeps it, so it has K - 1 others).\n"
    )


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    from deepcuts._fileio import atomic_write_bytes

    atomic_write_bytes(path, new.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k-neighbours", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    table, train, test = run(args.k_neighbours, args.repeats)
    ratio = ratios(table)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[["model", "library", *COLUMNS, "fit_s"]].to_string(index=False))
        print()
        print(ratio.to_string(index=False))
    if not args.no_write:
        out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        write_section(out, markdown(table, ratio, train, test, args.k_neighbours, args.repeats))
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
