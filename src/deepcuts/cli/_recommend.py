"""``deepcuts recommend``: top-n items for users of a saved model."""

from __future__ import annotations

import sys

from deepcuts.cli._common import (
    add_knob_arguments,
    add_model_file_argument,
    frame_to_csv,
    knobs_from_args,
    load_data,
    recommend_from_data,
    rerankers_from_knobs,
    to_external_ids,
    to_json,
)
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import load_model


def register(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="recommend items for users of a saved model",
        description="Print the top-n items for one or more users of a model saved by "
        "'deepcuts train'. Example: deepcuts recommend --model-file knn --user 2 --user 3 -n 10; "
        "toward deep cuts: --depth 0.6 (0 = neutral, 1 = deepest; 'mine' = your own level); "
        "only mid-popular items: --band 60:90.",
    )
    add_model_file_argument(p, "saved model path (without extension), from 'deepcuts train'")
    p.add_argument(
        "--data",
        help="take the users' histories from this dataset (written by 'deepcuts ingest', or "
        "'lastfm2k') instead of the model's training data; they are folded in",
    )
    p.add_argument("--user", action="extend", nargs="+", required=True, help="user id, repeatable")
    p.add_argument("-n", type=int, default=10, help="items per user (default: 10)")
    p.add_argument(
        "--include-played", action="store_true", help="do not filter out already played items"
    )
    p.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )
    add_knob_arguments(p)
    g = p.add_argument_group("personas (persona models: deepcuts train --model persona ...)")
    g.add_argument(
        "--persona",
        type=int,
        help="recommend from this persona only (0-based; see 'deepcuts personas')",
    )
    g.add_argument(
        "--blend",
        action="store_true",
        help="fill the list from every persona in proportion to its share of the user's plays",
    )
    g.add_argument(
        "--persona-mix",
        metavar="W0,W1,...",
        help="fill the list from the personas in these proportions, e.g. 0.7,0.3",
    )
    p.set_defaults(func=run)


def persona_options(args, model) -> dict:
    """Scoring options from --persona / --blend / --persona-mix, checked against the model."""
    opts: dict = {}
    if args.persona is not None:
        opts["persona"] = args.persona
    if args.blend:
        opts["blend"] = True
    if args.persona_mix:
        try:
            opts["persona_mix"] = [float(w) for w in args.persona_mix.split(",")]
        except ValueError:
            raise DeepcutsError(
                f"--persona-mix {args.persona_mix!r}: expected comma-separated numbers, "
                "e.g. --persona-mix 0.7,0.3"
            ) from None
    if opts and not hasattr(model, "personas"):
        raise DeepcutsError(
            f"--persona/--blend/--persona-mix need a persona model; {args.model_file} is a "
            f"{type(model).__name__} (train one with: deepcuts train --model persona -o PATH)"
        )
    if len(opts) > 1:
        raise DeepcutsError("use only one of --persona, --blend and --persona-mix")
    return opts


def run(args) -> int:
    rerankers = rerankers_from_knobs(knobs_from_args(args))  # validate before loading
    model = load_model(args.model_file)
    score_kw = persona_options(args, model)
    if args.data:  # histories from another dataset (e.g. a newer ingest), folded in
        data = load_data(args.data)
        users = to_external_ids(args.user, data.user_map.ids, "user")
        df = recommend_from_data(
            model,
            data,
            users,
            n=args.n,
            filter_played=not args.include_played,
            rerankers=rerankers,
            **score_kw,
        )
    else:
        users = to_external_ids(args.user, model.interactions_.user_map.ids, "user")
        recs = model.recommend(
            users,
            n=args.n,
            filter_played=not args.include_played,
            rerankers=rerankers,
            **score_kw,
        )
        df = recs.to_frame()
    if args.format == "csv":
        sys.stdout.write(frame_to_csv(df))
    elif args.format == "json":
        out = []
        for u in users:
            rows = df[df["user"] == u].drop(columns="user")
            out.append({"user": u, "items": rows.to_dict(orient="records")})
        sys.stdout.write(to_json(out))
    else:
        for u in users:
            rows = df[df["user"] == u]
            print(f"user {u}:")
            for r in rows.itertuples():
                name = getattr(r, "name", r.item)
                tag = f", persona {r.persona}" if "persona" in df.columns else ""
                print(f"  {r.rank:3d}. {name}  (item {r.item}, score {r.score:.4g}{tag})")
    return 0
