"""Scratch run (issue 12, coverage@10 on generated data): item-side score normalisation in the
persona combined list (Adomavicius & Kwon, TKDE 2012, "aggregate diversity").

``z_ui = (s_ui - mu_i) / sd_i`` with ``mu_i = y_i . xbar`` and ``sd_i^2 = y_i^T Cov(X) y_i`` over
every training user (exact for a factor model). Two ways into the default list
(``x_u . y_i + beta |x_u| max_p cos(c_up, y_i)``, then the calibration):

* ``add``: ``s + gamma * std_u(s over the row's top 200) * z``;
* ``replace``: the ALS term ``x_u . y_i`` becomes ``(1 - gamma) x_u . y_i + gamma z'`` with
  ``z'`` the row's z mapped onto the row's ALS scores (same mean and std over the top 200 of the
  ALS scores), so the taste-fit candidates are ranked by z in place of the ALS term at gamma 1.

Validation splits and the selection rule of ``benchmarks/persona_eval.py``; test split only for
the best passing setting. ``PYTHONPATH=src python benchmarks/persona_item_norm_scratch.py``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from persona_eval import ANCHOR, FIXED, NDCG_GUARD, load, metrics  # noqa: E402

from deepcuts.data import load_lastfm2k  # noqa: E402
from deepcuts.evaluation import user_holdout_split  # noqa: E402
from deepcuts.models import ALS, PostHocPersonas  # noqa: E402

TOP = 200


class ItemNormPersonas(PostHocPersonas):
    """PostHocPersonas with the scratch item-side z-score term (``gamma``, ``mode``)."""

    gamma = 0.0
    mode = "add"

    def fit_item_stats(self) -> None:
        X = np.asarray(self.user_factors_, np.float64)
        Y = np.asarray(self.item_factors_, np.float64)
        xbar = X.mean(axis=0)
        C = np.cov(X.T, bias=True)
        self.mu_ = (Y @ xbar).astype(np.float32)
        self.sd_ = np.sqrt(np.maximum(np.einsum("if,fg,ig->i", Y, C, Y), 1e-12)).astype(np.float32)

    def _combined(self, state, scoring):
        g = float(self.gamma)
        if g == 0.0:
            return super()._combined(state, scoring)
        own = np.asarray(state.X @ self.item_factors_.T, np.float32)
        z = (own - self.mu_) / self.sd_
        beta = float(self.taste_fit)
        fit = beta * self._taste_fit(state) if beta > 0 else 0.0
        if self.mode == "add":
            S = own + fit
            top = -np.partition(-S, TOP, axis=1)[:, :TOP]
            S = S + g * top.std(axis=1, keepdims=True) * z
        else:
            own_top = -np.partition(-own, TOP, axis=1)[:, :TOP]
            zt = -np.partition(-z, TOP, axis=1)[:, :TOP]
            zm = own_top.mean(axis=1, keepdims=True) + own_top.std(axis=1, keepdims=True) * (
                z - zt.mean(axis=1, keepdims=True)
            ) / np.maximum(zt.std(axis=1, keepdims=True), 1e-6)
            S = (1.0 - g) * own + g * zm + fit
        return np.asarray(S, np.float32)


def build(als, **cfg) -> ItemNormPersonas:
    # item_norm=0: the scratch term (gamma, mode) replaces the class's own
    m = ItemNormPersonas.from_model(als, **{**FIXED, "null_quantile": 0.1, "item_norm": 0.0, **cfg})
    m.fit_item_stats()
    return m


def run(sets: dict, grid: list, tag: str) -> list:
    rows = []
    for name, (fit, valid) in sets.items():
        als = ALS(**ANCHOR).fit(fit)
        a = metrics(als, fit, valid)
        print(f"{tag} {name} anchor: {a}", flush=True)
        m = build(als)
        for mode, gamma, beta, cal, bands in grid:
            m.mode, m.gamma = mode, gamma
            m.taste_fit, m.calibration, m.calibration_bands = beta, cal, bands
            m._band_cache = None
            t0 = time.perf_counter()
            r = metrics(m, fit, valid)
            r["recall ratio"] = round(r["recall@20"] / a["recall@20"], 4)
            r["ndcg ratio"] = round(r["ndcg@10"] / a["ndcg@10"], 4)
            r["coverage gain"] = round(r["coverage@10"] / a["coverage@10"] - 1, 4)
            row = {"data": name, "mode": mode, "gamma": gamma, "taste_fit": beta,
                   "calibration": cal, "bands": bands, **r}  # fmt: skip
            rows.append(row)
            print(f"{tag} {row} ({time.perf_counter() - t0:.0f}s)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="add")
    ap.add_argument("--gammas", default="0,0.1,0.2,0.3,0.5,0.8")
    ap.add_argument("--settings", default="0.2,0.1,2", help="taste_fit,calibration,bands;...")
    ap.add_argument("--test", default="", help="mode,gamma,taste_fit,calibration,bands;...")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    settings = [tuple(float(v) for v in s.split(",")) for s in args.settings.split(";")]
    grid = [(mode, float(g), b, c, int(n)) for mode in args.modes.split(",")
            for b, c, n in settings for g in args.gammas.split(",")]  # fmt: skip
    out = {}
    if grid and not args.test:
        train, _ = user_holdout_split(load_lastfm2k(), test_fraction=0.2, random_state=0)
        xg, _ = load("generated", False, seed=1)
        sets = {"lastfm2k": user_holdout_split(train, test_fraction=0.2, random_state=1),
                "generated": user_holdout_split(xg, test_fraction=0.2, random_state=1)}  # fmt: skip
        rows = run(sets, grid, "validation")
        out["validation"] = rows
        for key in sorted({(r["mode"], r["gamma"], r["taste_fit"], r["calibration"], r["bands"])
                           for r in rows}):  # fmt: skip
            rs = [r for r in rows if (r["mode"], r["gamma"], r["taste_fit"], r["calibration"],
                                      r["bands"]) == key]  # fmt: skip
            ok = all(r["recall ratio"] >= 1.0 and r["ndcg ratio"] >= NDCG_GUARD for r in rs)
            print(f"summary {key}: " + " | ".join(
                f"{r['data']} R {r['recall ratio']:.3f} N {r['ndcg ratio']:.3f} "
                f"C {r['coverage gain']:+.1%}" for r in rs)
                + f" | worst C {min(r['coverage gain'] for r in rs):+.1%} pass={ok}")  # fmt: skip
    if args.test:
        test_grid = [(s.split(",")[0], *(float(v) for v in s.split(",")[1:]))
                     for s in args.test.split(";")]  # fmt: skip
        test_grid = [(mo, g, b, c, int(n)) for mo, g, b, c, n in test_grid]
        x2k = load_lastfm2k()
        xg, _ = load("generated", False, seed=0)
        sets = {"lastfm2k": user_holdout_split(x2k, test_fraction=0.2, random_state=0),
                "generated": user_holdout_split(xg, test_fraction=0.2, random_state=0)}  # fmt: skip
        out["test"] = run(sets, test_grid, "test")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
