"""Which ItemKNN similarity is the default: measured on a validation split of training data.

Last.fm 2K is split per user (20% of each user's artists held out, seed 0) into train and test;
the *training* part is split again (20%, seeds 1 and 2) into fit and validation parts, and the
default is chosen on the validation parts only (never on the test part). Candidates: deepcuts'
``bm25``, ``bm25-implicit`` (implicit's ``bm25_weight``) and ``cosine``, each with ``k=100``
neighbours, against ``Popularity`` (the anchor: ``ratio`` = NDCG@10 / popularity's in the same
run). Prints ``name = value`` lines and writes ``docs/itemknn_default.json``.

    python benchmarks/itemknn_default.py
"""

from __future__ import annotations

import json
from pathlib import Path

from deepcuts.data import load_lastfm2k
from deepcuts.evaluation import evaluate, split
from deepcuts.models import ItemKNN, Popularity

CANDIDATES = {
    "popularity": lambda: Popularity(),
    "cosine": lambda: ItemKNN(similarity="cosine"),
    "bm25": lambda: ItemKNN(similarity="bm25"),
    "bm25-implicit": lambda: ItemKNN(similarity="bm25-implicit"),
}


def main() -> None:
    x = load_lastfm2k()
    train, _test = split(x, "user-holdout", test_fraction=0.2, random_state=0)
    scores: dict[str, list[float]] = {k: [] for k in CANDIDATES}
    for seed in (1, 2):
        fit_part, valid = split(train, "user-holdout", test_fraction=0.2, random_state=seed)
        for name, make in CANDIDATES.items():
            _, means = evaluate(make().fit(fit_part), fit_part, valid, k=[10], metrics=["ndcg"])
            scores[name].append(means["ndcg@10"])
    mean = {k: sum(v) / len(v) for k, v in scores.items()}
    anchor = mean["popularity"]
    for name, v in mean.items():
        print(f"validation_ndcg@10[{name}] = {v:.4f}   ratio = {v / anchor:.3f}")
    best = max((k for k in mean if k != "popularity"), key=mean.get)
    print(f"best_similarity = {best}")
    out = Path(__file__).resolve().parents[1] / "docs" / "itemknn_default.json"
    out.write_text(
        json.dumps(
            {
                "protocol": "lastfm2k, train of a 20% user holdout (seed 0), validation 20% of "
                "train (seeds 1, 2), k=100, NDCG@10",
                "ndcg@10": mean,
                "per_seed": scores,
                "best": best,
            },
            indent=2,
        )
        + "\n"  # fmt: skip
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
