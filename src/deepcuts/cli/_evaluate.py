"""``deepcuts evaluate``: split a dataset, fit models, print metrics; optionally sweep a parameter."""

from __future__ import annotations

import sys
import time

import pandas as pd

from deepcuts.cli._checks import seed
from deepcuts.cli._common import (
    DATA_HELP,
    KNOBS,
    add_knob_arguments,
    build_model,
    frame_to_csv,
    knobs_from_args,
    load_data,
    parse_assignments,
    parse_model_spec,
    rerankers_from_knobs,
    to_json,
    write_text,
)
from deepcuts.evaluation import DEFAULT_METRICS, METRICS, SPLITS, evaluate, split
from deepcuts.evaluation.plots import plot_tradeoff, plot_tradeoffs
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import MODELS, model_params

#: below this many test users ``evaluate`` warns that its means are noise
MIN_TEST_USERS = 20


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate models on a train/test split",
        description="Split a dataset, fit each model on the training part and score its top-k "
        "lists against the held-out items. Example: deepcuts evaluate --data lastfm2k "
        "--model itemknn:similarity=bm25 --model popularity --k 10 20 --json out.json. "
        "With --sweep NAME=V1,V2,... each model is evaluated once per value; NAME may also be a "
        "knob (depth, floor, taste, rarity, band, diversity, artist_cap), e.g. --sweep depth=0,0.3,0.6 (the model "
        "is fitted once).",
    )
    p.add_argument("--data", default="lastfm2k", help=DATA_HELP + " (default: lastfm2k)")
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME[:P=V,...]",
        help=f"model to evaluate, repeatable; NAME one of {', '.join(sorted(MODELS))}, "
        "optionally with parameters, e.g. itemknn:k=50,similarity=bm25",
    )
    p.add_argument(
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="hyperparameter for every model that has it (e.g. --param k=50)",
    )
    p.add_argument("--split", choices=sorted(SPLITS), default="user-holdout", help="splitter")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out fraction")
    p.add_argument("--seed", type=seed, default=0, help="seed of the split and the models")
    p.add_argument("--k", type=int, nargs="+", default=[10, 20], help="cut-offs (default 10 20)")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_METRICS),
        choices=list(METRICS),
        metavar="METRIC",
        help=f"metrics (default all): {', '.join(METRICS)}",
    )
    p.add_argument("--sweep", metavar="NAME=V1,V2,...", help="evaluate once per parameter value")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--csv", metavar="PATH", help="write the results table as CSV")
    p.add_argument(
        "--plot",
        metavar="PATH.png",
        help="PNG: with --sweep, trade-off curves (NDCG against novelty, coverage, ARP, "
        "diversity; one line per model, points labelled with the swept value), else NDCG vs "
        "novelty",
    )
    p.add_argument("--progress", action="store_true", help="show progress bars")
    add_knob_arguments(p)
    p.set_defaults(func=run)


def _parse_sweep(spec: str | None):
    if spec is None:
        return None, []
    name, sep, values = spec.partition("=")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not vals:
        raise DeepcutsError(f"--sweep {spec!r}: expected NAME=V1,V2,... e.g. --sweep k=10,50,100")
    return name.strip(), vals


def _knob_value(name: str, value: str):
    """A --sweep value of a knob as the type the re-ranker takes."""
    if name in ("band", "depth"):
        return value  # depth: a number or "mine", "mine+0.2" (checked by the re-ranker)
    try:
        return int(value) if name in ("artist_cap", "floor") else float(value)
    except ValueError:
        kind = "an integer" if name in ("artist_cap", "floor") else "a number"
        raise DeepcutsError(f"--sweep {name}: {value!r} is not {kind}") from None


def _configs(args):
    """(label, name, params) per model, with --param applied where the model has it."""
    common = parse_assignments(args.param, option="--param")
    sweep_name, sweep_values = _parse_sweep(args.sweep)
    specs = [parse_model_spec(s) for s in args.model]
    for key in list(common) + ([sweep_name] if sweep_name and sweep_name not in KNOBS else []):
        if not any(key in model_params(name) for name, _ in specs):
            opt = "--sweep" if key == sweep_name else "--param"
            raise DeepcutsError(
                f"{opt} {key!r}: none of the models {args.model} has this parameter"
            )
    configs = []
    for spec, (name, own) in zip(args.model, specs):
        valid = model_params(name)
        params = {k: v for k, v in common.items() if k in valid}
        params.update(own)
        values = [None]
        if sweep_name and sweep_name in KNOBS:
            build_model(name, params, args.seed)
            configs.append((spec, name, params, None))
            continue
        if sweep_name and sweep_name in valid:
            values = sweep_values
        for v in values:
            p = dict(params) if v is None else {**params, sweep_name: v}
            build_model(name, p, args.seed)  # validate every option before any work
            configs.append((spec, name, p, v))
    return sweep_name, configs


def run(args) -> int:
    if not 0 < args.test_fraction < 1:
        raise DeepcutsError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    if any(k < 1 for k in args.k):
        raise DeepcutsError(f"--k values must be >= 1, got {args.k}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise DeepcutsError(f"--plot {args.plot}: plots are PNG; use a .png file name")
    sweep_name, configs = _configs(args)
    knobs = knobs_from_args(args)
    knob_settings = [(None, knobs)]
    if sweep_name in KNOBS:
        if sweep_name in knobs:
            raise DeepcutsError(f"--sweep {sweep_name} and --{sweep_name.replace('_', '-')} "
                                "both set the same knob; give only one")  # fmt: skip
        knob_settings = [(v, {**knobs, sweep_name: _knob_value(sweep_name, v)})
                         for v in _parse_sweep(args.sweep)[1]]  # fmt: skip
    reranker_sets = [(v, rerankers_from_knobs(k)) for v, k in knob_settings]  # validate early
    x = load_data(args.data)
    train, test = split(x, args.split, test_fraction=args.test_fraction, random_state=args.seed)
    n_test_users = int((test.matrix.getnnz(axis=1) > 0).sum())
    print(
        f"{args.data}: {x.n_users} users x {x.n_items} items; split {args.split} "
        f"(seed {args.seed}): {train.nnz} train / {test.nnz} test pairs, "
        f"{n_test_users} test users"
    )
    if n_test_users < MIN_TEST_USERS:
        print(
            f"deepcuts evaluate: warning: only {n_test_users} test user(s): the metrics are "
            f"means over so few users that they say little (a difference between models can "
            f"be chance); evaluate on at least {MIN_TEST_USERS}, e.g. a larger dataset",
            file=sys.stderr,
        )
    rows, results = [], []
    warmed: dict[str, float] = {}
    for label, name, params, value in configs:
        if name not in warmed:  # numba compiles on a model's first fit: keep it out of fit_s
            warmed[name] = _warm_up_fit(name, params, args.seed, train)
            print(f"{name}: compiled kernels warmed in {warmed[name]:.1f} s (not in fit_s)")
        model = build_model(name, params, args.seed)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        for knob_value, rerankers in reranker_sets:
            t1 = time.perf_counter()
            _, means = evaluate(model, train, test, k=args.k, metrics=args.metrics,
                                rerankers=rerankers, show_progress=args.progress)  # fmt: skip
            eval_s = time.perf_counter() - t1
            row = {"model": label}
            if sweep_name:
                row[sweep_name] = knob_value if sweep_name in KNOBS else value
            row.update({"fit_s": fit_s, "eval_s": eval_s, **means})
            rows.append(row)
            results.append({"model": label, "class": type(model).__name__,
                            "params": model.get_params(), "rerankers": [repr(r) for r in rerankers],
                            "fit_s": fit_s, "warmup_s": warmed[name], "eval_s": eval_s,
                            "metrics": means})  # fmt: skip
    table = pd.DataFrame(rows)
    _print_table(table, sweep_name)
    if args.json:
        doc = {
            "data": args.data,
            "knobs": knobs,
            "split": args.split,
            "test_fraction": args.test_fraction if args.split != "leave-last-out" else None,
            "seed": args.seed,
            "k": sorted(set(args.k)),
            "n_train_pairs": train.nnz,
            "n_test_pairs": test.nnz,
            "sweep": sweep_name,
            "results": results,
        }
        print(f"wrote {write_text(args.json, to_json(doc))}")
    if args.csv:
        print(f"wrote {write_text(args.csv, frame_to_csv(table))}")
    if args.plot:
        k0 = min(args.k)
        if sweep_name:
            # trade-off curves: accuracy against each beyond-accuracy metric, one line per
            # model, each point labelled with the swept value
            acc = next((m for m in ("ndcg", "recall", "map", "precision") if m in args.metrics),
                       None)  # fmt: skip
            beyond = [f"{m}@{k0}" for m in ("novelty", "coverage", "arp", "diversity")
                      if m in args.metrics]  # fmt: skip
            if acc is None or not beyond:
                raise DeepcutsError(
                    "--plot with --sweep draws accuracy against beyond-accuracy metrics: "
                    "--metrics needs one of ndcg/recall/map/precision and one of "
                    "novelty/coverage/arp/diversity"
                )
            path = plot_tradeoffs(table, f"{acc}@{k0}", beyond, args.plot, group="model",
                                  label=sweep_name,
                                  title=f"{args.data}, {args.split}: --sweep {args.sweep}")  # fmt: skip
        else:
            x_col = f"novelty@{k0}" if "novelty" in args.metrics else f"coverage@{k0}"
            y_col = f"ndcg@{k0}" if "ndcg" in args.metrics else f"recall@{k0}"
            path = plot_tradeoff(table, x_col, y_col, args.plot, group="model",
                                 title=f"{args.data}, {args.split}")  # fmt: skip
        print(f"wrote {path}")
    return 0


def _warm_up_fit(name: str, params: dict, seed: int, train) -> float:
    """Fit the model once on a small slice of ``train`` so that numba compiles (or loads from
    its cache) every training kernel before the timed fit; returns the seconds it took."""
    import numpy as np

    t0 = time.perf_counter()
    active = np.flatnonzero(train.matrix.getnnz(axis=1) > 0)[:200]
    small = train.subset(users=active)
    small = small.subset(items=np.flatnonzero(small.matrix.getnnz(axis=0) > 0))
    warm = dict(params)
    if name != "persona" and "iterations" in build_model(name, {}, seed).get_params():
        warm["iterations"] = 1  # one iteration reaches every kernel
    try:
        build_model(name, warm, seed).fit(small)
    except DeepcutsError:  # e.g. a setting the small slice cannot satisfy: warm on nothing
        pass
    return time.perf_counter() - t0


def _print_table(table: pd.DataFrame, sweep_name: str | None) -> None:
    """Metrics as rows, one column per evaluated configuration."""
    labels = table["model"].astype(str)
    if sweep_name:
        labels = labels + " " + sweep_name + "=" + table[sweep_name].astype(str)
    body = table.drop(columns=["model"] + ([sweep_name] if sweep_name else []))
    body.index = labels
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(body.T.to_string(float_format=lambda v: f"{v:.4f}"))
