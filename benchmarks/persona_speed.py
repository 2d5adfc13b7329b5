"""Training cost per iteration: PersonaALS (P = 3) vs single-vector ALS, same run, same data.

Both models train on Last.fm 2K (per-user 20% holdout, seed 0, training part) with the same
factors, confidence and CG settings. The per-iteration time of each is the difference between a
fit with ``--long`` and one with ``--short`` iterations divided by the difference (so set-up, the
persona model's ALS pre-fit and numba compilation drop out); each fit is the best of
``--repeats``, the fits of the two models interleaved so that load changes hit both. Prints both per-iteration times and the ratio persona / ALS (target <= 2).

Usage: ``python benchmarks/persona_speed.py [--factors 32] [--personas 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from deepcuts.data import load_lastfm2k
from deepcuts.evaluation import user_holdout_split
from deepcuts.models import ALS, PersonaALS


def per_iteration(makers: dict, train, short: int, long: int, repeats: int) -> dict:
    """Seconds per iteration of each model; the fits of all models are interleaved per repeat
    (so a change of machine load hits every model alike) and the best of each is kept."""
    for make in makers.values():
        make(short).fit(train)  # warm-up: numba compilation
    best = {(name, it): np.inf for name in makers for it in (short, long)}
    for _ in range(repeats):
        for name, make in makers.items():
            for it in (short, long):
                model = make(it)
                t0 = time.perf_counter()
                model.fit(train)
                best[name, it] = min(best[name, it], time.perf_counter() - t0)
    return {
        name: max(best[name, long] - best[name, short], 1e-9) / (long - short) for name in makers
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factors", type=int, default=32)
    ap.add_argument("--personas", type=int, default=3)
    ap.add_argument("--short", type=int, default=2)
    ap.add_argument("--long", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--sibling-weight",
        type=float,
        default=1.0,
        help="PersonaALS sibling_weight (values other than 1 visit all items per persona)",
    )
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()

    train, _ = user_holdout_split(load_lastfm2k(), test_fraction=0.2, random_state=0)
    common = dict(factors=args.factors, regularization=0.01, alpha=1.0, weighting="log",
                  cg_steps=3, random_state=0)  # fmt: skip
    times = per_iteration(
        {
            "als": lambda it: ALS(iterations=it, reg_scaling="none", **common),
            "persona": lambda it: PersonaALS(
                n_personas=args.personas,
                iterations=it,
                init_iterations=1,
                tie_weight=2.0,
                sibling_weight=args.sibling_weight,
                **common,
            ),
        },
        train,
        args.short,
        args.long,
        args.repeats,
    )
    als, persona = times["als"], times["persona"]
    ratio = persona / als
    print(f"Last.fm 2K train {train.shape}, nnz {train.nnz}, factors {args.factors}")
    print(f"single-vector ALS      : {1000 * als:8.1f} ms / iteration")
    print(
        f"PersonaALS (P = {args.personas}, sibling_weight={args.sibling_weight:g}): "
        f"{1000 * persona:8.1f} ms / iteration"
    )
    print(
        f"ratio persona / ALS    : {ratio:8.2f}  (target <= 2: {'met' if ratio <= 2 else 'NOT met'})"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "factors": args.factors,
                    "personas": args.personas,
                    "sibling_weight": args.sibling_weight,
                    "als_s_per_iteration": als,
                    "persona_s_per_iteration": persona,
                    "ratio": ratio,
                    "machine": platform.platform(),
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
