"""Ranking-loss trainers (BPR, WARP) and the mixture of tastes against single-vector ALS.

Issue 12. On Last.fm 2K and on generated listening data (``generate_listening``), 20% of each
user's items are held out (``user_holdout_split``). Settings of the SGD models (loss, learning
rate, regularization, epochs) are chosen on a validation split of the *training* part (20% of
each user's training items), then the chosen model is refitted on the whole training part and
scored on the test part. The anchor is ``ALS(factors=64, reg_scaling="activity",
regularization=0.3)`` (the strong single-vector baseline), trained in the same run. The
mixture reuses the loss, learning rate and regularization chosen for the single-vector model;
only its epochs are chosen on the validation split.

Reported per model: recall@20, NDCG@10, coverage@10; training seconds per iteration and its
ratio to ALS's (issue target <= 2); parameter count. The mixture is run at the anchor's factors
and at (about) the anchor's parameter count. "Time to equal NDCG" compares the NDCG@10-vs-
training-time curves on the test split (a report, not a selection): the time each trainer needs
to first reach the lower of the two best NDCG@10 values.

    PYTHONPATH=src python benchmarks/ranking_loss.py [--quick]

Writes docs/ranking_loss.json and docs/img/ranking_loss.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from deepcuts.data import generate_listening, load_lastfm2k
from deepcuts.evaluation import evaluate, user_holdout_split
from deepcuts.models import ALS, BPR, MixtureOfTastes

DOCS = Path(__file__).resolve().parents[1] / "docs"
METRICS = ("ndcg", "recall", "coverage")
F = 64
ALS_KW = dict(factors=F, iterations=15, regularization=0.3, reg_scaling="activity")


def n_params(model) -> int:
    if isinstance(model, ALS):
        return model.user_factors_.size + model.item_factors_.size
    if isinstance(model, BPR):
        return model.user_factors_.size + model.item_factors_.size + model.item_biases_.size
    return (
        model.persona_factors_.size
        + model.attention_factors_.size
        + model.item_factors_.size
        + model.item_biases_.size
    )


def equal_param_factors(n_users: int, n_items: int, P: int) -> int:
    """Factors of a P-taste mixture with about as many parameters as 64-factor ALS."""
    return int(round(F * (n_users + n_items) / (2 * P * n_users + n_items)))


def scores(model, train, test) -> dict:
    _, m = evaluate(model, train, test, k=(10, 20), metrics=METRICS)
    return {"recall@20": m["recall@20"], "ndcg@10": m["ndcg@10"], "coverage@10": m["coverage@10"]}


def select(make, grid, fit, val, max_epochs, seed):
    """Per loss, the best (params, epochs, val NDCG@10) over ``grid`` (early stopping on ``val``)."""
    best: dict = {}
    for kw in grid:
        m = make(**kw, iterations=max_epochs, validation=val, early_stopping_rounds=3,
                 random_state=seed).fit(fit)  # fmt: skip
        score = float(m.validation_history_.max())
        print(f"  select {kw} epochs={m.n_iterations_} val_ndcg@10={score:.4f}", flush=True)
        loss = kw.get("loss", "")
        if loss not in best or score > best[loss][2]:
            best[loss] = (kw, m.n_iterations_, score)
    return best


def run_dataset(name, x, args) -> dict:
    seed = 0
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=seed)
    fit, val = user_holdout_split(train, test_fraction=0.2, random_state=seed + 1)
    print(f"[{name}] users={x.n_users} items={x.n_items} nnz={x.nnz}", flush=True)
    out: dict = {"data": {"users": x.n_users, "items": x.n_items, "nnz": x.nnz}, "models": {}}

    # anchor: ALS, timed without validation; NDCG curve from a second fit with the test split
    als = ALS(**ALS_KW, random_state=seed)
    t0 = time.perf_counter()
    als.fit(train)
    als_s = (time.perf_counter() - t0) / ALS_KW["iterations"]
    curve = ALS(**ALS_KW, random_state=seed, validation=test).fit(train).validation_history_
    out["models"]["ALS"] = {
        **scores(als, train, test), "s_per_iter": als_s, "params": n_params(als),
        "iterations": ALS_KW["iterations"],
        "curve": {"seconds": (als_s * np.arange(1, len(curve) + 1)).tolist(),
                  "ndcg@10": curve.tolist()},
    }  # fmt: skip
    a = out["models"]["ALS"]
    print(f"{name}.ALS: recall@20 = {a['recall@20']:.4f}  ndcg@10 = {a['ndcg@10']:.4f}  "
          f"coverage@10 = {a['coverage@10']:.4f}  s_per_iter = {als_s:.4f}", flush=True)  # fmt: skip

    grid = [
        dict(loss=loss, learning_rate=lr, regularization=reg)
        for loss, regs in (("bpr", args.bpr_regs), ("warp", args.warp_regs))
        for lr in args.learning_rates
        for reg in regs
    ]
    per_loss = select(lambda **k: BPR(factors=F, **k), grid, fit, val, args.epochs, seed)
    kw, epochs, v = max(per_loss.values(), key=lambda r: r[2])
    print(f"{name}: chosen {kw} epochs={epochs} (val NDCG@10 {v:.4f})", flush=True)
    out["chosen"] = {
        loss: {**k, "epochs": e, "val_ndcg@10": s} for loss, (k, e, s) in per_loss.items()
    }

    def final(label, make, epochs):
        m = make(iterations=epochs, random_state=seed).fit(train)
        t = m.train_seconds_[-1] / max(m.n_iterations_, 1)
        cur = make(iterations=epochs, random_state=seed, validation=test).fit(train)
        res = {
            **scores(m, train, test), "s_per_iter": t, "ratio_s_per_iter": t / als_s,
            "params": n_params(m), "iterations": epochs,
            "curve": {"seconds": cur.train_seconds_.tolist(),
                      "ndcg@10": cur.validation_history_.tolist()},
        }  # fmt: skip
        if isinstance(m, MixtureOfTastes):
            res["mean_shown_personas"] = float(m.user_n_personas_.mean())
            res["factors"] = int(m.factors)
        out["models"][label] = res
        print(
            f"{name}.{label}: recall@20 = {res['recall@20']:.4f}  ndcg@10 = {res['ndcg@10']:.4f}"
            f"  coverage@10 = {res['coverage@10']:.4f}  s/iter ratio to ALS = "
            f"{res['ratio_s_per_iter']:.2f}",
            flush=True,
        )
        return res

    single = kw["loss"].upper()
    for k_, e_, _ in sorted(per_loss.values(), key=lambda r: -r[2]):
        final(k_["loss"].upper(), lambda k_=k_, **k: BPR(factors=F, **k_, **k), e_)

    for P in args.personas:
        for tag, f in (("f", F), ("params", equal_param_factors(x.n_users, x.n_items, P))):

            def mk(f=f, P=P, **k):
                return MixtureOfTastes(factors=f, n_personas=P, **kw, **k)

            _, ep, _ = select(mk, [{}], fit, val, args.epochs, seed)[""]
            final(f"Mixture P={P} ({tag}={f})", mk, ep)

    # time to equal NDCG: ALS vs the chosen single-vector ranking model
    a = out["models"]["ALS"]["curve"]
    r = out["models"][single]["curve"]
    target = min(max(a["ndcg@10"]), max(r["ndcg@10"]))

    def first(c):
        hit = np.flatnonzero(np.asarray(c["ndcg@10"]) >= target - 1e-12)
        return float(c["seconds"][hit[0]]) if len(hit) else float("nan")

    out["time_to_equal_ndcg"] = {
        "target_ndcg@10": target, "ALS_s": first(a), f"{single}_s": first(r),
        "ratio": first(r) / first(a),
    }  # fmt: skip
    print(f"{name}.time_to_equal_ndcg.ratio = {first(r) / first(a):.2f} (target {target:.4f})")
    anchor = out["models"]["ALS"]
    for res in out["models"].values():
        res["recall_ratio"] = res["recall@20"] / anchor["recall@20"]
        res["coverage_ratio"] = res["coverage@10"] / anchor["coverage@10"]
    return out


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8))
    for ax, (name, res) in zip(np.atleast_1d(axes), results.items()):
        for label, m in res["models"].items():
            c = m["curve"]
            ax.plot(c["seconds"], c["ndcg@10"], marker=".", label=label, lw=1.2)
        ax.set_title(f"{name}: test NDCG@10 vs training time")
        ax.set_xlabel("training seconds (this machine)")
        ax.set_ylabel("NDCG@10")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small generated data, short grid")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--learning-rates", type=float, nargs="+", default=[0.02])
    ap.add_argument("--bpr-regs", type=float, nargs="+", default=[0.02, 0.05])
    ap.add_argument("--warp-regs", type=float, nargs="+", default=[0.15, 0.5, 1.2])
    ap.add_argument("--personas", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--out", default=str(DOCS / "ranking_loss.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.learning_rates, args.personas = 5, [0.05], [2]
        args.bpr_regs, args.warp_regs = [0.01], [0.01]
        args.out = "/dev/null"
        data = {"generated": generate_listening(300, 800, random_state=0).interactions}
    else:
        data = {
            "lastfm2k": load_lastfm2k(),
            "generated": generate_listening(2000, 8000, random_state=0).interactions,
        }
    results = {name: run_dataset(name, x, args) for name, x in data.items()}
    Path(args.out).write_text(json.dumps(results, indent=1))
    if not args.quick:
        plot(results, DOCS / "img" / "ranking_loss.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
