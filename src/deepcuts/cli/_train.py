"""``deepcuts train``: fit a model on a dataset and save it as ``.npz`` + ``.json``."""

from __future__ import annotations

import time

from deepcuts.cli._checks import add_force_argument, check_output, seed
from deepcuts.cli._common import BUNDLED, DATA_HELP, build_model, load_data, parse_assignments
from deepcuts.data._persist import interactions_paths
from deepcuts.models import MODELS
from deepcuts.models.base import model_paths


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and save it",
        description="Fit a model on a dataset and save it as <output>.npz + <output>.json "
        "(atomic write, no pickle). Example: deepcuts train --data lastfm2k --model itemknn "
        "--param k=50 --param similarity=bm25 -o knn",
    )
    p.add_argument("--data", default="lastfm2k", help=DATA_HELP + " (default: lastfm2k)")
    p.add_argument("--model", required=True, help=f"model name: {', '.join(sorted(MODELS))}")
    p.add_argument(
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="hyperparameter, repeatable (e.g. --param k=50 similarity=bm25)",
    )
    p.add_argument("--seed", type=seed, default=0, help="random_state of models that take one")
    p.add_argument("-o", "--output", required=True, help="output path (without extension)")
    add_force_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    params = parse_assignments(args.param, option="--param")
    model = build_model(args.model.lower(), params, args.seed)  # fails fast on bad options
    inputs = () if str(args.data).strip().lower() in BUNDLED else interactions_paths(args.data)
    check_output(
        model_paths(args.output),
        want={"format": "deepcuts-model", "class": type(model).__name__},
        inputs=inputs,
        force=args.force,
    )
    x = load_data(args.data)
    t0 = time.perf_counter()
    model.fit(x)
    dt = time.perf_counter() - t0
    manifest = model.save(args.output)
    print(
        f"Trained {model!r} on {x.n_users} users x {x.n_items} items ({x.nnz} pairs) in {dt:.2f}s"
    )
    print(f"Saved {manifest} (+ .npz)")
    return 0
