"""``deepcuts personas``: a user's personas in a saved persona model."""

from __future__ import annotations

import sys

from deepcuts.cli._common import add_model_file_argument, to_external_ids, to_json
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import load_model


def register(sub) -> None:
    p = sub.add_parser(
        "personas",
        help="show a user's personas (persona models)",
        description="List each persona of a user of a saved persona model: its share of the "
        "user's plays, top artists and a tag label. Example: deepcuts train --model persona "
        "-o per && deepcuts personas --model-file per --user 2",
    )
    add_model_file_argument(p, "saved persona model path (without extension)")
    p.add_argument("--user", action="extend", nargs="+", required=True, help="user id, repeatable")
    p.add_argument("--artists", type=int, default=5, help="top artists per persona (default: 5)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.artists < 1:
        raise DeepcutsError(f"--artists must be >= 1, got {args.artists}")
    model = load_model(args.model_file)
    if not hasattr(model, "personas"):
        raise DeepcutsError(
            f"{args.model_file} is a {type(model).__name__}, which has one vector per user; "
            "train a persona model with: deepcuts train --model persona -o PATH"
        )
    users = to_external_ids(args.user, model.interactions_.user_map.ids, "user")
    out = []
    for u in users:  # one small frame per requested user (command-line sized)
        df = model.personas(u, n_artists=args.artists)
        out.append({"user": u, "personas": df.to_dict(orient="records")})
    if args.format == "json":
        sys.stdout.write(to_json(out))
        return 0
    for entry in out:
        print(f"user {entry['user']}:")
        for r in entry["personas"]:
            print(
                f"  persona {r['persona']}  {100 * r['share']:5.1f}% of plays  "
                f"[{r['label']}]  {', '.join(map(str, r['top_artists']))}"
            )
    return 0
