"""``deepcuts demo``: train on the bundled Last.fm 2K data and print recommendations."""

from __future__ import annotations

import time

import numpy as np

from deepcuts.cli._checks import seed
from deepcuts.data import load_lastfm2k
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, PostHocPersonas
from deepcuts.rerank import build_rerankers


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train on bundled Last.fm data and print recommendations",
        description="Train a model on the bundled HetRec 2011 Last.fm 2K data (1,892 users, "
        "17,632 artists) and print recommendations with artist names for a few users, next to "
        "the deep cuts of the depth knob; then cluster each listener's artists into personas "
        "and show one listener's tastes and a list from one of them.",
    )
    p.add_argument("--users", nargs="*", type=int, default=None, help="user ids (default: 3)")
    p.add_argument("-n", type=int, default=10, help="recommendations per user")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    p.add_argument(
        "--depth",
        default="0.6",
        help="depth of the 'deep cuts' column: 0 = the best matches, 1 = deepest, 'mine' = "
        "your own level (default: 0.6); artists need at least 3 listeners",
    )
    p.add_argument("--no-personas", action="store_true", help="skip the persona part (saves ~3 s)")
    p.add_argument(
        "--rarity",
        type=float,
        default=None,
        help="expert: the old rarity knob instead of --depth (1 = neutral, lower = rarer)",
    )
    p.set_defaults(func=run)


def _make_model(seed: int):
    # implicit-feedback ALS with BM25-weighted confidence: personalised and fast (< 2 s here)
    return ALS(factors=64, iterations=15, weighting="bm25", alpha=1.0, random_state=seed)


def run(args) -> int:
    if args.n < 1:
        raise DeepcutsError(f"-n must be >= 1, got {args.n}")
    # validates the knob before training
    if args.rarity is None:
        deep, knob = build_rerankers(depth=args.depth), f"--depth {args.depth}"
    else:
        deep, knob = build_rerankers(rarity=args.rarity), f"--rarity {args.rarity:g}"
    t0 = time.perf_counter()
    x = load_lastfm2k()
    print(f"Loaded bundled Last.fm 2K: {x.n_users} users, {x.n_items} artists, {x.nnz} play counts")
    model = _make_model(args.seed).fit(x)
    print(f"Trained {model!r} in {time.perf_counter() - t0:.1f}s")
    users = args.users
    if not users:
        rng = np.random.default_rng(args.seed)
        users = x.user_map.external(rng.choice(x.n_users, size=3, replace=False)).tolist()
    listeners = x.item_popularity()
    best = model.recommend(users, n=args.n)
    cuts = model.recommend(users, n=args.n, rerankers=deep)
    width = 36
    print(
        f"\nEach artist is followed by its number of listeners (of {x.n_users}). Right column: "
        f"{knob} turns the same model toward deep cuts (depth 0 = the left column, 1 = deepest; "
        "every deep cut has at least 3 listeners as evidence)."
    )
    for u in users:
        hist = x.user_items(u).head(5)
        print(f"\nUser {u} listens to: " + ", ".join(hist["name"]))
        print(f"  {'best match':<{width + 4}}deep cuts ({knob})")
        a, b = best.for_user(u), cuts.for_user(u)
        for k in range(max(len(a), len(b))):
            left = _cell(a, k, listeners, width)
            right = _cell(b, k, listeners, width)
            print(f"  {k + 1:2d}. {left:<{width}}{right}")
    if not args.no_personas:
        _personas_part(model, users, args)
    print(
        "\nMore: deepcuts recommend --depth/--diversity, deepcuts personas, "
        "deepcuts serve (web page with a depth slider and persona tabs)."
    )
    return 0


def _personas_part(model, users, args) -> None:
    """One listener as a mixture of tastes: their personas and a list from one of them (the
    shown listener whose second taste holds the largest share)."""
    t0 = time.perf_counter()
    # the default persona model: the trained ALS's item space, clustered per listener
    pm = PostHocPersonas.from_model(model)
    every = pm.personas(list(users), n_artists=4)
    second = every.groupby("user")["share"].apply(lambda s: s.nlargest(2).iloc[-1])
    user = second.idxmax() if len(second) else users[0]
    print(
        f"\nPersonas: a listener is a mixture of tastes (PostHocPersonas on the same ALS, "
        f"{time.perf_counter() - t0:.1f}s). User {user}:"
    )
    df = every[every["user"] == user].drop(columns="user").reset_index(drop=True)
    for r in df.itertuples():
        print(f"  persona {r.persona}: {r.share:4.0%} of plays, {r.label or '(no tags)'}"
              f" -- {', '.join(r.top_artists)}")  # fmt: skip
    order = df.sort_values("share", ascending=False)["persona"].tolist()
    # the second taste when it holds a real share: what a single-vector model drowns out
    second = df.set_index("persona").loc[order[1], "share"] if len(order) > 1 else 0.0
    pick = int(order[1] if second >= 0.05 else order[0])
    label = df.set_index("persona").loc[pick, "label"] or f"persona {pick}"
    recs = pm.recommend(user, n=min(args.n, 8), persona=pick)
    print(f"  from persona {pick} only ({label}; deepcuts recommend --persona {pick}):")
    print("  " + ", ".join(recs.names.tolist()))


def _cell(recs, k: int, listeners: np.ndarray, width: int) -> str:
    if k >= len(recs):
        return ""
    count = f" ({listeners[int(recs.item_index[k])]})"
    name = str(recs.names[k])
    room = width - 2 - len(count)
    if len(name) > room:
        name = name[: room - 3] + "..."
    return name + count
