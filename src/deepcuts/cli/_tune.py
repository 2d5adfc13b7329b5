"""``deepcuts tune``: pick a model family and its settings automatically, within a time budget."""

from __future__ import annotations

import json
import time

import pandas as pd

from deepcuts.cli._common import DATA_HELP, frame_to_csv, load_data, to_json, write_text
from deepcuts.evaluation import SPLITS, evaluate, split
from deepcuts.evaluation.tuning import (
    FAMILIES,
    TUNE_METRICS,
    parse_budget,
    plot_trials,
    require_optuna,
    tune,
)
from deepcuts.exceptions import DeepcutsError


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search model families and settings automatically (needs optuna)",
        description="Split a dataset into train and test, search ALS (with the ALS-WR and "
        "tuned-iALS options), EASE, RP3beta and item-kNN with Optuna on a validation split of "
        "the training part within a time budget, refit the winner on the training part, save "
        "it, and report its test metrics once, at the end. Example: deepcuts tune --data "
        "lastfm2k --budget 10m --output best --plot trials.png. Needs: pip install "
        "'deepcuts[tune]'.",
    )
    p.add_argument("--data", default="lastfm2k", help=DATA_HELP + " (default: lastfm2k)")
    p.add_argument("--budget", default="10m", help="search time, e.g. 90s, 10m, 1h (default 10m)")
    p.add_argument("--trials", type=int, help="stop after this many trials")
    p.add_argument(
        "--families",
        nargs="+",
        default=list(FAMILIES),
        choices=list(FAMILIES),
        metavar="FAMILY",
        help=f"families searched (default all): {', '.join(FAMILIES)}",
    )
    p.add_argument("--metric", default="ndcg@10", choices=TUNE_METRICS, help="maximised metric")
    p.add_argument("--split", choices=sorted(SPLITS), default="user-holdout", help="test split")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out test fraction")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, sampler and models")
    p.add_argument("-o", "--output", required=True, help="save the winner as OUTPUT.npz/.json")
    p.add_argument("--table", metavar="PATH.csv", help="write every trial as CSV")
    p.add_argument("--plot", metavar="PATH.png", help="PNG of the trials")
    p.add_argument("--json", metavar="PATH", help="write the winner and its test metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    require_optuna()  # fail before loading data when Optuna is missing
    budget = parse_budget(args.budget) if args.budget not in ("none", "") else None
    if args.trials is not None and args.trials < 1:
        raise DeepcutsError(f"--trials must be >= 1, got {args.trials}")
    x = load_data(args.data)
    train, test = split(x, args.split, test_fraction=args.test_fraction, random_state=args.seed)
    print(
        f"Tuning on {train.n_users} users x {train.n_items} items ({train.nnz} training pairs; "
        f"validation: 20% of each user's training items), budget {budget:.0f}s, families "
        f"{', '.join(args.families)}, maximising validation {args.metric}"
    )
    res = tune(
        train,
        families=args.families,
        budget_s=budget,
        n_trials=args.trials,
        metric=args.metric,
        random_state=args.seed,
        show_progress=not args.no_progress,
    )
    for note in res.notes:
        print(note)
    table = res.table.sort_values(args.metric, ascending=False, na_position="last")
    shown = table.head(15).copy()
    shown["params"] = [json.dumps(p, sort_keys=True, default=str) for p in shown["params"]]
    with pd.option_context("display.width", 250, "display.max_colwidth", 110):
        print(f"\n{res.n_trials} trials in {res.elapsed_s:.0f}s (best 15, validation scores):")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    best = table.groupby("family")[args.metric].max().sort_values(ascending=False)
    print("\nbest validation " + args.metric + " per family: " +
          ", ".join(f"{f} {v:.4f}" for f, v in best.items()))  # fmt: skip
    print(f"\nwinner: {res.family} {json.dumps(res.params, sort_keys=True, default=str)}")
    manifest = res.model.save(args.output)
    print(f"saved {manifest} (+ .npz)")
    if args.table:
        out = res.table.copy()
        out["params"] = [json.dumps(p, sort_keys=True, default=str) for p in out["params"]]
        print(f"wrote {write_text(args.table, frame_to_csv(out))}")
    if args.plot:
        print(f"wrote {plot_trials(res.table, args.metric, args.plot)}")
    # the test split is looked at once, here, for the winner only
    t0 = time.perf_counter()
    _, means = evaluate(res.model, train, test, k=(10, 20), metrics=("recall", "ndcg"))
    print(
        f"\ntest ({args.split}, {args.test_fraction:.0%}): "
        + ", ".join(f"{k} = {v:.4f}" for k, v in means.items())
        + f" ({time.perf_counter() - t0:.1f}s)"
    )
    if args.json:
        doc = {
            "family": res.family,
            "model": res.model_name,
            "params": res.params,
            "validation": {args.metric: res.value},
            "test": means,
            "trials": res.n_trials,
            "elapsed_s": res.elapsed_s,
        }
        print(f"wrote {write_text(args.json, to_json(doc))}")
    return 0
