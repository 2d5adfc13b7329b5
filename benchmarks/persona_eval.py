"""Multi-persona ALS vs single-vector ALS on Last.fm 2K: the persona grid and per-taste recall.

One command reproduces every number and plot of ``docs/personas.md``::

    python benchmarks/persona_eval.py            # ~5-10 minutes on 2 cores

Protocol: Last.fm 2K, per-user 20% holdout, seed 0 (``user_holdout_split``); every model is
fitted on the same training part and ranks every test user's unplayed items. Metrics:
NDCG@10, recall@20, catalogue coverage@20, novelty@10 and intra-list diversity@10
(:mod:`deepcuts.evaluation`).

1. **Selection on validation** (no test data): ``tie_weight`` (0, 1, 3) and ``sibling_weight``
   (1, 0) of the persona model are picked on a validation split carved out of the training
   part (20% of each training user's items, seed 1) at 32 factors and 3 personas.
2. **Grid** (the founding study's): personas 1-4 x factors 8, 16, 32, 64, with the selected
   settings, against single-vector ALS with equal factors and ALS with equal total parameters
   (``f' = f (n_users P + n_items) / (n_users + n_items)``). Fast settings: 12 alternations in
   all (ALS 12 iterations; persona: 4 iterations of ALS pre-fit + 8 persona iterations), CG
   with 3 steps.
3. **Per-taste recall**: each test user's held-out items are labelled with the user's persona
   (taste) that scores them highest in a reference persona model (3 personas, 32 factors,
   ``tie_weight=0`` so that its personas specialise);
   for every model, per-taste recall@20 is the fraction of a taste's held-out items found in
   the user's top 20 (mean over user-taste pairs), "tastes hit" the fraction of user-taste pairs
   with at least one hit, and "minor-taste recall" the same recall for the taste with the
   fewest held-out items of each user with several tastes.

Writes ``docs/persona_eval.json`` and ``docs/img/persona_*.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from deepcuts.data import load_lastfm2k
from deepcuts.evaluation import evaluate, user_holdout_split
from deepcuts.models import ALS, PersonaALS

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("ndcg", "recall", "coverage", "novelty", "diversity")
SHOW = ("ndcg@10", "recall@20", "coverage@20", "novelty@10", "diversity@10")
COMMON = dict(regularization=0.01, alpha=1.0, weighting="log", cg_steps=3, random_state=0)
ALS_ITERATIONS = 12
PERSONA = dict(init_iterations=4, iterations=8)

log = logging.getLogger("persona_eval")


def als(f: int) -> ALS:
    return ALS(factors=int(f), iterations=ALS_ITERATIONS, reg_scaling="none", **COMMON)


def persona(f: int, P: int, **kw) -> PersonaALS:
    return PersonaALS(factors=int(f), n_personas=int(P), **PERSONA, **COMMON, **kw)


def run_one(model, train, test, **score_kw) -> dict:
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    _, means = evaluate(model, train, test, k=(10, 20), metrics=METRICS, **score_kw)
    return {"fit_s": round(fit_s, 2), **{k: float(means[k]) for k in SHOW}}


def n_params(model, train) -> int:
    if isinstance(model, PersonaALS):
        return int(model.user_n_personas_.sum() * model.factors + train.n_items * model.factors)
    return int((train.n_users + train.n_items) * model.factors)


def select(train, ties, siblings) -> tuple[dict, list]:
    """Pick tie_weight and sibling_weight on a validation split of the training part.

    The validation split holds out 20% of each training user's items (seed 1); candidates are
    fitted with 3 personas and 32 factors and the best recall@20 wins (no test data is used).
    """
    fit_part, valid = user_holdout_split(train, test_fraction=0.2, random_state=1)
    rows = []
    for tie in ties:
        for sib in siblings:
            cfg = {"tie_weight": tie, "sibling_weight": sib}
            r = run_one(persona(32, 3, **cfg), fit_part, valid)
            rows.append({**cfg, **r})
            log.info("validation %s: %s", cfg, r)
    best = max(rows, key=lambda r: r["recall@20"])
    chosen = {"tie_weight": best["tie_weight"], "sibling_weight": best["sibling_weight"]}
    base = run_one(persona(32, 1), fit_part, valid)
    rows.append({"tie_weight": "P=1", "sibling_weight": "P=1", **base})
    return chosen, rows


def per_taste(models: dict, ref: PersonaALS, train, test, k: int = 20) -> dict:
    """Per-taste recall of each model's top-k lists, tastes from ``ref``'s personas."""
    users = np.flatnonzero(test.matrix.getnnz(axis=1) > 0).astype(np.int32)
    held = test.matrix[users].tocsr()
    # taste of every held-out item: the reference persona that scores it highest
    a = ref._assign(held, ref.persona_factors_[users], ref.item_factors_,
                    ref.user_n_personas_[users], collapse_weight=0.0)  # fmt: skip
    P = ref.persona_factors_.shape[1]
    row = np.repeat(np.arange(len(users)), np.diff(held.indptr))
    n_taste = np.bincount(row * P + a, minlength=len(users) * P).reshape(-1, P)
    multi = (n_taste > 0).sum(axis=1) >= 2
    out = {"users": int(len(users)), "users_with_several_tastes": int(multi.sum())}
    for name, (model, score_kw) in models.items():
        idx, _, _ = model.rank_index(users, train.matrix[users], k, **score_kw)
        lists = np.zeros((len(users), train.n_items), bool)
        lists[np.repeat(np.arange(len(users)), idx.shape[1])[idx.ravel() >= 0],
              idx.ravel()[idx.ravel() >= 0]] = True  # fmt: skip
        hit = lists[row, held.indices]
        hits = np.bincount(row * P + a, weights=hit, minlength=len(users) * P).reshape(-1, P)
        has = n_taste > 0
        rec = hits[has] / n_taste[has]
        # minor taste: the taste with the fewest held-out items (users with several tastes)
        nt = np.where(has, n_taste, np.iinfo(np.int64).max)
        minor = np.argmin(nt, axis=1)
        mr = (hits[np.arange(len(users)), minor] / n_taste[np.arange(len(users)), minor])[multi]
        out[name] = {
            "per_taste_recall@20": float(rec.mean()),
            "tastes_hit@20": float((hits[has] > 0).mean()),
            "minor_taste_recall@20": float(mr.mean()),
        }
    return out


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def plots(grid: list, als_rows: list, eq_rows: list, taste: dict, out_dir: Path) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes, ("recall@20", "coverage@20", "ndcg@10")):
        for P in sorted({r["personas"] for r in grid}):
            rows = sorted((r for r in grid if r["personas"] == P), key=lambda r: r["factors"])
            ax.plot([r["factors"] for r in rows], [r[metric] for r in rows], "o-",
                    label=f"persona P={P}")  # fmt: skip
        rows = sorted(als_rows, key=lambda r: r["factors"])
        ax.plot([r["factors"] for r in rows], [r[metric] for r in rows], "k--", lw=2,
                label="ALS (equal factors)")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("factors")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Last.fm 2K, 20% user holdout (seed 0): personas x factors")
    path = out_dir / "persona_grid.png"
    fig.savefig(path, dpi=80)
    written.append(_rel(path))

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for P in sorted({r["personas"] for r in grid}):
        rows = [r for r in grid if r["personas"] == P]
        ax.scatter([r["coverage@20"] for r in rows], [r["recall@20"] for r in rows],
                   label=f"persona P={P}", s=[r["factors"] * 2 for r in rows])  # fmt: skip
    ax.scatter([r["coverage@20"] for r in als_rows], [r["recall@20"] for r in als_rows],
               marker="x", c="k", label="ALS equal factors")  # fmt: skip
    ax.scatter([r["coverage@20"] for r in eq_rows], [r["recall@20"] for r in eq_rows],
               marker="+", c="r", label="ALS equal parameters")  # fmt: skip
    ax.set_xlabel("catalogue coverage@20")
    ax.set_ylabel("recall@20")
    ax.set_title("Accuracy vs discovery (marker size = factors)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = out_dir / "persona_tradeoff.png"
    fig.savefig(path, dpi=80)
    written.append(_rel(path))

    names = [n for n in taste if isinstance(taste[n], dict)]
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    keys = ("per_taste_recall@20", "minor_taste_recall@20", "tastes_hit@20")
    w = 0.8 / len(names)
    for j, n in enumerate(names):
        ax.bar(np.arange(len(keys)) + j * w, [taste[n][k] for k in keys], w, label=n)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2, keys)
    ax.set_title("Does each of a user's tastes appear in the held-out hits?")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    path = out_dir / "persona_tastes.png"
    fig.savefig(path, dpi=80)
    written.append(_rel(path))
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factors", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--personas", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--ties", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    ap.add_argument("--siblings", type=float, nargs="+", default=[1.0, 0.0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "persona_eval.json"))
    ap.add_argument("--img", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("deepcuts").setLevel(logging.WARNING)

    x = load_lastfm2k()
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    chosen, selection = select(train, args.ties, args.siblings)
    log.info("selected on validation: %s", chosen)

    grid, als_rows, eq_rows = [], [], []
    for f in args.factors:
        r = run_one(als(f), train, test)
        als_rows.append({"model": "ALS", "factors": f, "params": n_params(als(f), train), **r})
        log.info("ALS f=%d: %s", f, r)
        for P in args.personas:
            m = persona(f, P, **chosen)
            r = run_one(m, train, test)
            row = {"model": "PersonaALS", "personas": P, "factors": f,
                   "params": n_params(m, train), **r}  # fmt: skip
            grid.append(row)
            log.info("persona P=%d f=%d: %s", P, f, r)
            if P > 1:
                f_eq = round(
                    f * (train.n_users * P + train.n_items) / (train.n_users + train.n_items)
                )
                r = run_one(als(f_eq), train, test)
                eq_rows.append({"model": "ALS", "factors": f_eq, "matches": f"P={P} f={f}",
                                "params": n_params(als(f_eq), train), **r})  # fmt: skip
                log.info("ALS (equal params to P=%d f=%d) f=%d: %s", P, f, f_eq, r)

    # blended lists (filled from personas in proportion to their shares) at 32 factors
    blend = []
    for P in [p for p in args.personas if p > 1]:
        m = persona(32, P, **chosen).fit(train)
        _, means = evaluate(m, train, test, k=(10, 20), metrics=METRICS, blend=True)
        blend.append({"personas": P, "factors": 32, **{k: float(means[k]) for k in SHOW}})

    # per-taste recall; tastes from the untied persona model (P=3, f=32, tie_weight=0), whose
    # personas are free to specialise
    ref = persona(32, 3, tie_weight=0.0).fit(train)
    sel = persona(32, 3, **chosen).fit(train)
    f_eq3 = round(32 * (train.n_users * 3 + train.n_items) / (train.n_users + train.n_items))
    models = {
        "ALS f=32": (als(32).fit(train), {}),
        f"ALS f={f_eq3} (equal params)": (als(f_eq3).fit(train), {}),
        "persona P=1 f=32": (persona(32, 1, **chosen).fit(train), {}),
        "persona P=3 f=32 selected": (sel, {}),
        "persona P=3 f=32 tie=0": (ref, {}),
        "persona P=3 f=32 tie=0 blend": (ref, {"blend": True}),
    }
    taste = per_taste(models, ref, train, test)
    health = {
        "tie=0": ref.persona_health(k=20).attrs["summary"],
        "selected": sel.persona_health(k=20).attrs["summary"],
    }
    example = {}
    for u in x.user_map.ids[:3].tolist():
        example[str(u)] = ref.personas(u)[["persona", "share", "label", "top_artists"]].to_dict(
            "records"
        )

    # the goal: P > 1 beats P = 1 on recall@20 and coverage@20 at equal factors
    goal = []
    for f in args.factors:
        one = next(r for r in grid if r["factors"] == f and r["personas"] == 1)
        a = next(r for r in als_rows if r["factors"] == f)
        for r in grid:
            if r["factors"] == f and r["personas"] > 1:
                goal.append({
                    "factors": f, "personas": r["personas"],
                    "recall_vs_P1": r["recall@20"] - one["recall@20"],
                    "coverage_vs_P1": r["coverage@20"] - one["coverage@20"],
                    "recall_vs_ALS": r["recall@20"] - a["recall@20"],
                    "coverage_vs_ALS": r["coverage@20"] - a["coverage@20"],
                    "beats_P1": bool(r["recall@20"] > one["recall@20"]
                                     and r["coverage@20"] > one["coverage@20"]),
                })  # fmt: skip
    imgs = plots(grid, als_rows, eq_rows, taste, Path(args.img))
    result = {
        "protocol": "Last.fm 2K, user_holdout_split(test_fraction=0.2, random_state=0)",
        "settings": {
            "common": COMMON,
            "als_iterations": ALS_ITERATIONS,
            "persona": PERSONA,
            "selected": chosen,
        },  # fmt: skip
        "selection_on_validation": selection,
        "grid": grid,
        "als_equal_factors": als_rows,
        "als_equal_params": eq_rows,
        "blend_f32": blend,
        "per_taste": taste,
        "health_P3_f32": health,
        "example_personas": example,
        "goal": goal,
        "images": imgs,
        "machine": platform.platform(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'model':<28}{'P':>3}{'f':>5}" + "".join(f"{k:>14}" for k in SHOW) + f"{'fit_s':>8}")
    for r in als_rows + eq_rows + grid:
        name = r["model"] + (f" ({r['matches']})" if "matches" in r else "")
        print(f"{name:<28}{r.get('personas', 1):>3}{r['factors']:>5}"
              + "".join(f"{r[k]:>14.4f}" for k in SHOW) + f"{r['fit_s']:>8.1f}")  # fmt: skip
    n_win = sum(g["beats_P1"] for g in goal)
    print(f"goal (P>1 beats P=1 on recall@20 and coverage@20): {n_win}/{len(goal)} grid cells")
    print(f"wrote {args.out} and {', '.join(imgs)}")


if __name__ == "__main__":
    main()
