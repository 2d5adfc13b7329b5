"""The depth knob against the old rarity knob and published popularity re-rankers.

For each data set (the bundled Last.fm 2K; ``generate_listening`` at artist level and at song
level, whose planted long tail and known deep cuts make the truth known) one per-user 20%
holdout (seed 0), one base model (deepcuts ALS, 64 factors, ``regularization=0.3``,
``reg_scaling="activity"``: what ``deepcuts serve`` uses) and one masked score block of the
test users. Every method re-ranks that same block into top-20 lists:

* ``depth`` - :class:`deepcuts.rerank.DepthKnob` as shipped (``deep="tail-first"``, taste
  evidence ``taste=0.3``) over ``depth`` in [0, 1] (plus ``mine`` and ``mine+0.2``);
  ``depth, calibrated`` - the same knob with ``deep="calibrated"``; ``depth, tail share`` - with
  ``deep="tail"`` (the long-tail share by base score alone);
* ``rarity (old)`` - :class:`deepcuts.rerank.RarityKnob`, ``score * f_i ** (rarity - 1)``;
* ``xQuAD`` - long-tail xQuAD (Abdollahpouri, Burke, Mobasher 2019), smooth variant, head =
  20% most listened items, ``P(tail | u)`` the long-tail share of the user's history, over the
  top-100 candidates; as published (no floor) and over items
  with at least 3 listeners (``xQuAD, floor 3``, the depth knob's evidence rule);
* ``calibrated`` - calibrated popularity (Steck 2018 calibration over head / mid / tail
  popularity groups, as in Abdollahpouri et al. 2021), greedy over the top-100 candidates;
  without and with the floor;
* ``LB modes`` - ListenBrainz-style easy / medium / hard: the thirds of the popularity
  percentiles of items with at least 3 listeners;
* ``implicit`` - ``implicit`` ALS (bm25, 64 factors) alone, with the depth knob and with the
  old knob.

Metrics on the test split: NDCG@10, recall@20, long-tail recall@20 (held-out items outside the
20% most listened training items), novelty, coverage, ARP, Gini, thin share (< 3 training
listeners) and genre fit at 10, and the list's median popularity percentile (the depth knob's
fitted percentile). The depth knob's shrinkage and the depths (of each arrangement) matching
``implicit``'s NDCG are picked on a validation split of the training data (20% of each training user's items, seed 1).

Writes ``docs/img/rarity_pareto.png``, ``docs/rarity_results.json`` and the generated block of
``docs/rarity.md``.

Usage: ``python benchmarks/rarity_report.py [--quick] [--no-write] [--replot]``
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import bm25_weight

from deepcuts._fileio import atomic_write_bytes
from deepcuts.data import generate_listening, load_lastfm2k
from deepcuts.evaluation import score_lists, user_holdout_split
from deepcuts.evaluation.metrics import long_tail_mask
from deepcuts.models import ALS
from deepcuts.models._topk import topk_rows
from deepcuts.rerank import DepthKnob, RarityKnob, depth_catalogue

ROOT = Path(__file__).resolve().parents[1]
N = 20
POOL = 100
METRICS = ("ndcg", "recall", "longtail_recall", "novelty", "coverage", "arp", "gini", "thin",
           "genre_fit")  # fmt: skip
DEPTHS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
TAIL_DEPTHS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
#: the depth knob's arrangements side by side: label -> (DepthKnob keywords, depths)
ARRANGEMENTS = {
    "depth": ({}, TAIL_DEPTHS),
    "depth, calibrated": ({"deep": "calibrated"}, DEPTHS),
    "depth, tail share": ({"deep": "tail"}, TAIL_DEPTHS),
}
RARITY = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5]
LAMBDAS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.99]
SHRINKAGE = [0.0, 1.0, 3.0]
#: (taste, content) of the deep slots' evidence compared on validation (pick_evidence)
EVIDENCE = [(0.3, 0.0), (0.5, 0.0), (0.3, 0.7), (0.5, 0.7)]
#: the no-junk target: genre fit within this share of the neutral list's at every depth
GENRE_FIT = 0.10
#: validation NDCG@10 gaps at depth 0.05 below this are ties (then the larger curve area wins)
SHRINKAGE_TIE = 5e-4
START, END = "<!-- rarity_report:start -->", "<!-- rarity_report:end -->"


def datasets(quick: bool) -> dict:
    if quick:
        return {"generated": generate_listening(600, 4000, random_state=0).interactions}
    return {
        "Last.fm 2K": load_lastfm2k(),
        "generated": generate_listening(2000, 15000, random_state=0).interactions,
        "generated songs": generate_listening(
            2000, 15000, level="song", songs_per_artist=8, random_state=0
        ).interactions,
    }


def als(train):
    return ALS(factors=64, regularization=0.3, reg_scaling="activity", random_state=0).fit(train)


def implicit_model(train):
    m = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.01, random_state=0,
                                calculate_training_loss=False)  # fmt: skip
    m.fit(bm25_weight(train.matrix, K1=100, B=0.8).tocsr().astype(np.float32), show_progress=False)
    return m


def implicit_scores(train, users, m=None):
    m = implicit_model(train) if m is None else m
    return np.asarray(m.user_factors[users] @ m.item_factors.T, np.float32)


class Block:
    """One model's masked scores for the users of a split, and the lists' metrics."""

    def __init__(self, train, test, scores, users):
        self.train, self.test, self.users = train, test, users
        ui = train.matrix[users]
        s = np.array(scores, np.float32, copy=True)
        s[np.repeat(np.arange(len(users)), np.diff(ui.indptr)), ui.indices] = -np.inf
        self.scores = s
        self.ctx = SimpleNamespace(model=SimpleNamespace(interactions_=train), user_index=users,
                                   user_items=ui, n=N)  # fmt: skip
        self.pop = train.item_popularity()
        self.tail = long_tail_mask(self.pop)
        self.cat = depth_catalogue(train, 3)
        # P(tail | u): share of the user's played items in the long tail (xQuAD's user model)
        rows = np.repeat(np.arange(len(users)), np.diff(ui.indptr))
        hist_tail = np.bincount(rows[self.tail[ui.indices]], minlength=len(users))
        self.p_tail = hist_tail / np.maximum(np.diff(ui.indptr), 1)

    def lists(self, reranker=None) -> np.ndarray:
        s = self.scores if reranker is None else reranker.rerank(self.scores, self.ctx)
        return topk_rows(s, N)[0]

    def measure(self, rec) -> dict:
        _, means = score_lists(rec, self.users, self.train, self.test, k=(10, 20),
                               metrics=METRICS)  # fmt: skip
        out = {"ndcg": means["ndcg@10"], "recall@20": means["recall@20"],
               "lt_recall@20": means["longtail_recall@20"]}  # fmt: skip
        for m in ("novelty", "coverage", "arp", "gini", "thin", "genre_fit"):
            out[m] = means[f"{m}@10"]
        top = rec[:, :10]
        pct = np.where(top >= 0, self.cat.percentile[np.maximum(top, 0)], np.nan)
        out["median_pct"] = float(np.nanmean(np.nanmedian(pct, axis=1)))
        return out


# ---------------------------------------------------------------------------- baselines


def _pool(block, floor: int = 0):
    s = block.scores if not floor else np.where(block.pop[None, :] >= floor, block.scores, -np.inf)
    cand, vals = topk_rows(s, POOL)
    valid = cand >= 0
    lo = np.where(valid, vals, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, vals, -np.inf).max(axis=1, keepdims=True)
    rel = np.where(valid, (vals - lo) / np.where(hi > lo, hi - lo, 1.0), -np.inf)
    return cand, rel, valid


def xquad(block, lam: float, floor: int = 0) -> np.ndarray:
    """Smooth long-tail xQuAD (Abdollahpouri et al. 2019), greedy over the candidate pool:
    ``(1 - lam) rel(i) + lam sum_c P(c|u) 1[i in c] (1 - |S ∩ c| / |S|)``, c in {head, tail};
    ``floor``: only items with at least that many listeners (0 = as published)."""
    cand, rel, valid = _pool(block, floor)
    b = len(cand)
    is_tail = np.where(valid, block.tail[np.maximum(cand, 0)], False)
    pu = np.stack([1 - block.p_tail, block.p_tail], axis=1)  # (b, 2): head, tail
    counts = np.zeros((b, 2))
    taken = ~valid
    out = np.full((b, N), -1, np.int64)
    rows = np.arange(b)
    for t in range(N):
        frac = counts / max(t, 1)
        cover = pu * (1 - frac) if t else pu
        bonus = np.where(is_tail, cover[:, 1:2], cover[:, 0:1])
        v = np.where(taken, -np.inf, (1 - lam) * rel + lam * bonus)
        c = v.argmax(axis=1)
        ok = np.isfinite(v[rows, c])
        out[ok, t] = cand[rows[ok], c[ok]]
        taken[rows[ok], c[ok]] = True
        counts[rows[ok], is_tail[rows[ok], c[ok]].astype(int)] += 1
    return out


def popularity_groups(pop: np.ndarray) -> np.ndarray:
    """0 = head (most listened items holding 20% of all listens), 2 = tail (least listened
    items holding 20%), 1 = mid (Abdollahpouri et al. 2021)."""
    order = np.argsort(-pop, kind="stable")
    share = np.cumsum(pop[order]) / max(pop.sum(), 1)
    g = np.ones(len(pop), np.int64)
    g[order[share <= 0.2]] = 0
    g[order[share > 0.8]] = 2
    return g


def calibrated(block, lam: float, alpha: float = 0.01, floor: int = 0) -> np.ndarray:
    """Calibrated popularity (Steck 2018): greedily maximise
    ``(1 - lam) sum_{i in S} rel(i) - lam KL(p_u || q~_S)`` with ``p_u`` the user's history over
    head / mid / tail and ``q~ = (1 - alpha) q_S + alpha p_u``; ``floor`` as in :func:`xquad`."""
    cand, rel, valid = _pool(block, floor)
    b = len(cand)
    groups = popularity_groups(block.pop)
    g = np.where(valid, groups[np.maximum(cand, 0)], 0)
    ui = block.ctx.user_items
    hist = np.zeros((b, 3))
    np.add.at(hist, (np.repeat(np.arange(b), np.diff(ui.indptr)), groups[ui.indices]), 1.0)
    p = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
    counts = np.zeros((b, 3))
    taken = ~valid
    out = np.full((b, N), -1, np.int64)
    rows = np.arange(b)
    eye = np.eye(3)
    for t in range(N):
        # KL after adding one item of each group: (b, 3)
        q = (counts[:, None, :] + eye[None]) / (t + 1)
        qt = (1 - alpha) * q + alpha * p[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(p[:, None, :] > 0, p[:, None, :] * np.log(p[:, None, :] / qt), 0).sum(2)
        v = np.where(taken, -np.inf, (1 - lam) * rel - lam * np.take_along_axis(kl, g, axis=1))
        c = v.argmax(axis=1)
        ok = np.isfinite(v[rows, c])
        out[ok, t] = cand[rows[ok], c[ok]]
        taken[rows[ok], c[ok]] = True
        counts[rows[ok], g[rows[ok], c[ok]]] += 1
    return out


def lb_mode(block, low: float, high: float) -> np.ndarray:
    """ListenBrainz-style mode: keep items (>= 3 listeners) in a popularity-percentile band."""
    pct = block.cat.percentile
    keep = block.cat.eligible & (pct >= low) & (pct <= high)
    return topk_rows(np.where(keep[None, :], block.scores, -np.inf), N)[0]


# ---------------------------------------------------------------------------- running


def sweep(block, label: str, reranker_of, values) -> list[dict]:
    return [
        {"method": label, "setting": str(v), **block.measure(block.lists(reranker_of(v)))}
        for v in values
    ]


def validation_block(train) -> Block:
    """deepcuts ALS's masked scores on a validation split of ``train`` (20% of each training
    user's items, seed 1): the settings below are picked here, never on the test split."""
    fit, val = user_holdout_split(train, test_fraction=0.2, random_state=1)
    users = np.flatnonzero(val.matrix.getnnz(axis=1) > 0).astype(np.int32)
    return Block(fit, val, als(fit).score_index(users, fit.matrix[users]), users)


def _curve(block, label, knob_of) -> tuple[list[dict], float]:
    """Validation points at depths 0, 0.05, 0.2, 0.4, ..., 1 and the area under NDCG@10 against
    long-tail recall@20."""
    pts = sweep(block, label, knob_of, [0.0, 0.05] + DEPTHS[2::2])
    by_lt = sorted(pts, key=lambda r: r["lt_recall@20"])
    x = np.array([r["lt_recall@20"] for r in by_lt])
    y = np.array([r["ndcg"] for r in by_lt])
    return pts, float(np.sum(np.diff(x) * 0.5 * (y[1:] + y[:-1])))


def pick_shrinkage(block) -> tuple[float, list[dict]]:
    """The shrinkage whose lists near neutral are the most accurate, on the validation block:
    the highest NDCG@10 at depth 0.05 (one deep slot in a list of 20, the knob's
    first step), ties within ``SHRINKAGE_TIE`` broken by the larger area under the NDCG@10 vs
    long-tail-recall@20 curve.

    Shrinkage corrects how the base model scores thinly supported items; whether that helps
    depends on the data (it raised the shallow lists' NDCG above the neutral list's on both
    generated sets and lowered it by 1% on Last.fm 2K), and it shows where the list should
    still be close to the model's: the curve's area is decided at the deep end, where the
    taste blend picks the deep cuts and every shrinkage gives nearly the same curve (the
    validation areas of k = 0, 1, 3 differed by 0.6% on Last.fm 2K)."""
    rows = []
    for k in SHRINKAGE:
        pts, area = _curve(block, f"shrinkage {k:g}", lambda d, k=k: DepthKnob(d, shrinkage=k))
        shallow = next(r["ndcg"] for r in pts if r["setting"] == "0.05")
        rows.append({"shrinkage": k, "ndcg_at_0.05": shallow, "area": area})
    top = max(r["ndcg_at_0.05"] for r in rows)
    near = [r for r in rows if r["ndcg_at_0.05"] >= top - SHRINKAGE_TIE]
    best = max(near, key=lambda r: r["area"])["shrinkage"]
    return best, rows


def pick_evidence(block, shrinkage: float) -> tuple[dict, list[dict]]:
    """``taste`` and ``content`` of the deep slots' evidence, on the validation block: among
    the settings of ``EVIDENCE`` whose genre fit stays within ``GENRE_FIT`` of the neutral
    list's at every depth (the no-junk target), the largest area under the NDCG@10 vs
    long-tail-recall@20 curve (the most held-out deep cuts for the accuracy given up)."""
    rows = []
    for taste, content in EVIDENCE:
        pts, area = _curve(block, f"taste {taste:g}, content {content:g}",
                           lambda d, t=taste, c=content: DepthKnob(d, shrinkage=shrinkage,
                                                                   taste=t, content=c))  # fmt: skip
        fit = np.array([r["genre_fit"] for r in pts])
        gap = float(np.nanmax(np.abs(fit[1:] / fit[0] - 1))) if np.isfinite(fit).all() else 0.0
        rows.append({"taste": taste, "content": content, "area": area, "genre_gap": gap})
    ok = [r for r in rows if r["genre_gap"] <= GENRE_FIT] or [
        min(rows, key=lambda r: r["genre_gap"])
    ]
    best = max(ok, key=lambda r: r["area"])
    return {"taste": best["taste"], "content": best["content"]}, rows


def depth_matching(train, knobs: dict) -> dict:
    """On a validation split: for each label's DepthKnob keywords, the depth where deepcuts ALS
    + DepthKnob(**keywords) has the NDCG@10 of implicit ALS (bisection on the monotone part of
    the curve; None when depth 0 is already below it). The test split only reports the lists
    at that depth."""
    fit, val = user_holdout_split(train, test_fraction=0.2, random_state=1)
    users = np.flatnonzero(val.matrix.getnnz(axis=1) > 0).astype(np.int32)
    ours = Block(fit, val, als(fit).score_index(users, fit.matrix[users]), users)
    imp = Block(fit, val, implicit_scores(fit, users), users)
    anchor = imp.measure(imp.lists())["ndcg"]
    out = {}
    for label, knob in knobs.items():

        def ndcg(d, knob=knob):
            return ours.measure(ours.lists(DepthKnob(d, **knob)))["ndcg"]

        lo, hi = 0.0, 1.0
        if ndcg(lo) < anchor:
            out[label] = None
            continue
        for _ in range(6):
            mid = 0.5 * (lo + hi)
            if ndcg(mid) >= anchor:
                lo = mid
            else:
                hi = mid
        out[label] = lo
    return out


def run_dataset(name: str, x, quick: bool) -> dict:
    t0 = time.perf_counter()
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    vblock = validation_block(train)
    shrink, shrink_rows = pick_shrinkage(vblock)
    ev, ev_rows = pick_evidence(vblock, shrink)
    del vblock
    users = np.flatnonzero(test.matrix.getnnz(axis=1) > 0).astype(np.int32)
    model = als(train)
    ours = Block(train, test, model.score_index(users, train.matrix[users]), users)
    imp_model = implicit_model(train)
    imp = Block(train, test, implicit_scores(train, users, imp_model), users)
    rows = []
    for label, (kw, depths) in ARRANGEMENTS.items():
        rows += sweep(ours, label, lambda d, kw=kw: DepthKnob(d, shrinkage=shrink, **ev, **kw),
                      depths)  # fmt: skip
    rows += sweep(ours, "depth (mine)", lambda d: DepthKnob(d, shrinkage=shrink, **ev),
                  ["mine", "mine+0.2"])  # fmt: skip
    rows += sweep(ours, "rarity (old)", RarityKnob, RARITY)
    for lam in LAMBDAS:
        rows.append({"method": "xQuAD", "setting": str(lam), **ours.measure(xquad(ours, lam))})
    for lam in LAMBDAS:
        rows.append({"method": "calibrated", "setting": str(lam),
                     **ours.measure(calibrated(ours, lam))})  # fmt: skip
    for lam in LAMBDAS[1:]:
        rows.append({"method": "xQuAD, floor 3", "setting": str(lam),
                     **ours.measure(xquad(ours, lam, floor=3))})  # fmt: skip
        rows.append({"method": "calibrated, floor 3", "setting": str(lam),
                     **ours.measure(calibrated(ours, lam, floor=3))})  # fmt: skip
    for mode, (lo, hi) in {"easy": (200 / 3, 100), "medium": (100 / 3, 200 / 3),
                           "hard": (0, 100 / 3)}.items():  # fmt: skip
        rows.append({"method": "LB modes", "setting": mode, **ours.measure(lb_mode(ours, lo, hi))})
    rows += sweep(imp, "implicit + depth", lambda d: DepthKnob(d, shrinkage=shrink, **ev),
                  TAIL_DEPTHS)  # fmt: skip
    rows += sweep(imp, "implicit + rarity (old)", RarityKnob, RARITY)
    rows += sweep(ours, "depth, floor 1", lambda k: DepthKnob(1.0, floor=1, shrinkage=k),
                  SHRINKAGE)  # fmt: skip
    labels = ("depth", "depth, calibrated")
    knobs = {label: {"shrinkage": shrink, **ev, **ARRANGEMENTS[label][0]} for label in labels}
    matched = dict.fromkeys(labels) if quick else depth_matching(train, knobs)
    for label in labels:
        kw = ARRANGEMENTS[label][0]
        if matched[label] is not None:
            rows += sweep(ours, f"{label} at implicit's NDCG",
                          lambda d, kw=kw: DepthKnob(d, shrinkage=shrink, **ev, **kw),
                          [round(matched[label], 4)])  # fmt: skip
    table = pd.DataFrame(rows)
    timing = cost(ours, imp_model)
    print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {
        "name": name,
        "shape": list(train.shape),
        "train_nnz": int(train.nnz),
        "test_nnz": int(test.nnz),
        "users": len(users),
        "shrinkage": shrink,
        "shrinkage_validation": shrink_rows,
        "evidence": ev,
        "evidence_validation": ev_rows,
        "matched_depth": matched,
        "table": table,
        "cost": timing,
    }


def cost(block, imp_model, repeats: int = 3) -> dict:
    """Milliseconds per user of each re-ranker on the whole block (batched), with
    ``implicit``'s batched top-20 ``recommend``, the rarity knob and the top-n selection as
    anchors measured in the same run."""
    out = {}
    ui = block.ctx.user_items.tocsr().astype(np.float32)
    for label, fn in {
        "depth 0.5": lambda: DepthKnob(0.5).rerank(block.scores, block.ctx),
        "depth mine+0.2": lambda: DepthKnob("mine+0.2").rerank(block.scores, block.ctx),
        "depth 0.5, calibrated": lambda: DepthKnob(0.5, deep="calibrated").rerank(
            block.scores, block.ctx
        ),
        "implicit recommend top-20 (anchor)": lambda: imp_model.recommend(
            block.users, ui, N=N, filter_already_liked_items=True
        ),
        "rarity 0.9 (anchor)": lambda: RarityKnob(0.9).rerank(block.scores, block.ctx),
        "top-20 selection (anchor)": lambda: topk_rows(block.scores, N),
    }.items():
        fn()
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[label] = 1e3 * best / len(block.users)
    return out


# ---------------------------------------------------------------------------- targets


def _interp_lt(curve: pd.DataFrame, ndcg: float) -> float:
    """Long-tail recall of a method's curve at an NDCG@10 level (linear between points,
    the best of the curve's segments when it crosses the level more than once)."""
    c = curve.sort_values("ndcg")
    x, y = c["ndcg"].to_numpy(), c["lt_recall@20"].to_numpy()
    best = -np.inf
    for i in range(len(x) - 1):
        a, b = x[i], x[i + 1]
        if min(a, b) <= ndcg <= max(a, b):
            w = 0.0 if b == a else (ndcg - a) / (b - a)
            best = max(best, y[i] + w * (y[i + 1] - y[i]))
    return best


def _row(data, knob, target, value, holds) -> dict:
    return {"data": data, "knob": knob, "target": target, "value": value, "holds": bool(holds)}


def targets(results: list[dict]) -> list[dict]:
    """Every target of issue 11 for each arrangement of the depth knob and data set."""
    out = []
    for r in results:
        t, name = r["table"], r["name"]
        old = t[t["method"] == "rarity (old)"]
        old_ok = old[old["thin"] <= 0.10]
        best_old = float(old_ok["lt_recall@20"].max())
        best_at = old_ok.loc[old_ok["lt_recall@20"].idxmax(), "setting"]
        base = t[(t["method"] == "implicit + depth") & (t["setting"] == "0.0")].iloc[0]
        for knob in ARRANGEMENTS:
            curve = t[t["method"] == knob]
            neutral = curve[curve["setting"] == "0.0"].iloc[0]
            deep = curve[curve["setting"] == "1.0"].iloc[0]
            out.append(_row(name, knob, "thin share <= 10% at every depth",
                            f"max {curve['thin'].max():.3f}", curve["thin"].max() <= 0.10))  # fmt: skip
            gap = (curve["genre_fit"] / neutral["genre_fit"] - 1).abs()
            out.append(_row(name, knob, "genre fit within 10% of neutral",
                            f"worst {100 * gap.max():.1f}% (depth {curve.loc[gap.idxmax(), 'setting']})",
                            gap.max() <= 0.10))  # fmt: skip
            ratio = deep["lt_recall@20"] / best_old if best_old > 0 else np.inf
            out.append(_row(name, knob, "LT recall@20 at depth 1 >= 1.5x old knob's best",
                            f"{deep['lt_recall@20']:.4f} vs {best_old:.4f} (rarity {best_at}): "
                            f"{ratio:.2f}x", ratio >= 1.5))  # fmt: skip
            for rival in ("xQuAD", "calibrated", "xQuAD, floor 3", "calibrated, floor 3"):
                pts = t[(t["method"] == rival) & (t["setting"] != "0.0")]
                worst_gap, where = np.inf, None
                for p in pts.to_dict(orient="records"):
                    ours_lt = _interp_lt(curve, p["ndcg"])
                    if np.isfinite(ours_lt) and ours_lt - p["lt_recall@20"] < worst_gap:
                        worst_gap, where = ours_lt - p["lt_recall@20"], p["setting"]
                out.append(_row(name, knob, f"LT recall >= {rival}'s at every NDCG@10 level",
                                f"smallest margin {worst_gap:+.4f} ({rival} {where})",
                                worst_gap >= 0))  # fmt: skip
            m = t[t["method"] == f"{knob} at implicit's NDCG"]
            if len(m):
                m = m.iloc[0]
                nx, cx = m["novelty"] / base["novelty"], m["coverage"] / base["coverage"]
                out.append(_row(name, knob, "at implicit's NDCG: novelty >= 1.15x, coverage >= 2x",
                                f"depth {m['setting']} (validation): NDCG {m['ndcg']:.4f} vs "
                                f"{base['ndcg']:.4f}; novelty {nx:.2f}x, coverage {cx:.2f}x",
                                nx >= 1.15 and cx >= 2.0))  # fmt: skip
        c = r["cost"]
        for knob, key in (("depth", "depth 0.5"), ("depth, calibrated", "depth 0.5, calibrated")):
            out.append(_row(name, knob, "cost <= 0.2 ms/user batched",
                            f"{c[key]:.3f} ms (implicit recommend "
                            f"{c['implicit recommend top-20 (anchor)']:.3f}: "
                            f"{c[key] / c['implicit recommend top-20 (anchor)']:.2f}x; "
                            f"rarity {c['rarity 0.9 (anchor)']:.3f})", c[key] <= 0.2))  # fmt: skip
    a = [r for r in results if r["name"] in ("Last.fm 2K", "generated")]
    for knob in ARRANGEMENTS if len(a) == 2 else ():
        ta, tb = (r["table"][r["table"]["method"] == knob].set_index("setting") for r in a)
        gaps = (ta["median_pct"] - tb["median_pct"]).abs().dropna().drop("0.0")
        out.append(_row("Last.fm 2K vs generated", knob,
                        "same depth, list median percentile within 5 points",
                        f"largest gap {gaps.max():.1f} points (depth {gaps.idxmax()})",
                        gaps.max() <= 5))  # fmt: skip
    return out


def summary(checks: list[dict], knob: str = "depth") -> pd.DataFrame:
    """One row per target of ``knob``, one column per data set: ``value (holds / fails)``."""
    rows: dict = {}
    for c in checks:
        if c["knob"] != knob:
            continue
        cell = f"{c['value']} ({'holds' if c['holds'] else 'FAILS'})"
        rows.setdefault(c["target"], {})[c["data"]] = cell
    return (
        pd.DataFrame.from_dict(rows, orient="index").fillna("").rename_axis("target").reset_index()
    )


# ---------------------------------------------------------------------------- output

#: the plotted methods (the floor-3 baselines and the tail share are in the tables only)
STYLE = {
    "depth": ("tab:red", "o", "-"),
    "depth, calibrated": ("salmon", "o", ":"),
    "rarity (old)": ("tab:blue", "s", "-"),
    "xQuAD": ("tab:green", "^", "-"),
    "calibrated": ("tab:purple", "v", "-"),
    "LB modes": ("tab:gray", "D", ":"),
    "implicit + depth": ("tab:orange", "o", "--"),
    "implicit + rarity (old)": ("tab:cyan", "s", "--"),
    "depth (mine)": ("black", "*", ""),
}


def plot(results: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 5.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        t = r["table"]
        for method, (color, marker, ls) in STYLE.items():
            c = t[t["method"] == method]
            if not len(c):
                continue
            ax.plot(c["lt_recall@20"], c["ndcg"], color=color, marker=marker, ls=ls or "none",
                    ms=5, lw=1.6, label=method)  # fmt: skip
            if method in ("depth", "LB modes", "depth (mine)"):
                for p in c.to_dict(orient="records"):
                    if method != "depth" or p["setting"] in ("0.2", "0.5", "0.8", "1.0"):
                        ax.annotate(p["setting"], (p["lt_recall@20"], p["ndcg"]), fontsize=7,
                                    xytext=(4, 3), textcoords="offset points", color=color)  # fmt: skip
        thin = t[(t["method"] == "rarity (old)") & (t["thin"] > 0.10)]
        if len(thin):
            ax.scatter(thin["lt_recall@20"], thin["ndcg"], s=90, facecolors="none",
                       edgecolors="tab:blue", lw=1.2, label="old knob, thin share > 10%")  # fmt: skip
        ax.set_title(f"{r['name']} ({r['shape'][0]} users x {r['shape'][1]} items)")
        ax.set_xlabel("long-tail recall@20 (held-out items outside the top 20%)")
        ax.set_ylabel("NDCG@10")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="lower center", ncol=len(labels))
    fig.suptitle("Accuracy vs deep cuts the listener went on to play (up and right is better)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        cells = []
        for v in r:
            if isinstance(v, float | np.floating):
                cells.append("" if not np.isfinite(v) else f"{v:.4g}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


COLS = ["method", "setting", "ndcg", "recall@20", "lt_recall@20", "novelty", "coverage", "arp",
        "gini", "thin", "genre_fit", "median_pct"]  # fmt: skip


def markdown(results, checks, elapsed) -> str:
    parts = [
        START,
        f"Generated by `python benchmarks/rarity_report.py` ({elapsed:.0f} s on this machine). "
        "Per data set: per-user 20% holdout (seed 0); base model deepcuts ALS (64 factors, "
        "regularization 0.3, reg_scaling activity); `implicit` ALS: bm25 (K1 100, B 0.8), 64 "
        "factors, 15 iterations, regularization 0.01. NDCG at 10, recall at 20, the other "
        "metrics at 10; `median_pct` = mean over users of the list's median popularity "
        "percentile (fitted, items with >= 3 listeners).",
        "",
        "**Targets of the depth knob as shipped** (`DepthKnob(d)`: tail-first, taste 0.5, "
        "content 0.7; shrinkage, taste and content as picked on each data set's validation "
        "split, below)",
        "",
        _fmt(summary(checks)),
        "",
        "**Every target, each arrangement** (`depth` = as shipped, `depth, calibrated` = "
        '`deep="calibrated"`, `depth, tail share` = `deep="tail"`)',
        "",
        _fmt(pd.DataFrame(checks)),
        "",
        "![Pareto curves](img/rarity_pareto.png)",
    ]
    for r in results:
        parts += [
            "",
            f"**{r['name']}**: {r['shape'][0]} users x {r['shape'][1]} items, {r['train_nnz']} "
            f"train / {r['test_nnz']} test pairs, {r['users']} test users. Shrinkage picked "
            f"on validation: {r['shrinkage']:g} (areas: "
            + ", ".join(f"{v['shrinkage']:g}: {v['area']:.5f}" for v in r["shrinkage_validation"])
            + f"). Evidence picked on validation: taste {r['evidence']['taste']:g}, content "
            f"{r['evidence']['content']:g} (taste, content: area, worst genre-fit gap: "
            + ", ".join(
                f"{v['taste']:g}, {v['content']:g}: {v['area']:.4g}, {100 * v['genre_gap']:.1f}%"
                for v in r["evidence_validation"]
            )  # fmt: skip
            + ").",
            "",
            _fmt(r["table"][COLS]),
        ]
    parts.append(END)
    return "\n".join(parts)


def write_block(path: Path, block: str) -> None:
    old = path.read_text() if path.exists() else "# Depth: deep cuts a listener can trust\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    new = (
        pattern.sub(lambda _: block, old)
        if pattern.search(old)
        else old.rstrip("\n") + "\n\n" + block + "\n"
    )
    atomic_write_bytes(path, new.encode())


def _jsonable(r: dict) -> dict:
    out = dict(r)
    out["table"] = json.loads(r["table"].to_json(orient="records"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small generated data set (CI)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the PNG from docs/rarity_results.json")  # fmt: skip
    args = ap.parse_args()
    if args.replot:
        doc = json.loads((ROOT / "docs" / "rarity_results.json").read_text())
        results = [{**r, "table": pd.DataFrame(r["table"])} for r in doc["results"]]
        print(f"wrote {plot(results, ROOT / 'docs' / 'img' / 'rarity_pareto.png')}")
        return
    t0 = time.perf_counter()
    results = [run_dataset(name, x, args.quick) for name, x in datasets(args.quick).items()]
    checks = targets(results)
    elapsed = time.perf_counter() - t0
    with pd.option_context("display.width", 220, "display.max_columns", 20,
                           "display.max_rows", 500):  # fmt: skip
        for r in results:
            print(f"== {r['name']} (shrinkage {r['shrinkage']:g}, matched depth "
                  f"{r['matched_depth']})")  # fmt: skip
            print(r["table"][COLS].round(4).to_string(index=False))
            for k, v in r["cost"].items():
                print(f"cost {r['name']} {k} = {v:.4f} ms/user")
    for c in checks:
        verdict = "holds" if c["holds"] else "FAILS"
        print(f"{c['data']} [{c['knob']}]: {c['target']} = {c['value']} -> {verdict}")
    print(f"elapsed_s = {elapsed:.0f}")
    if not args.no_write and not args.quick:
        print(f"wrote {plot(results, ROOT / 'docs' / 'img' / 'rarity_pareto.png')}")
        res = ROOT / "docs" / "rarity_results.json"
        doc = {"results": [_jsonable(r) for r in results], "targets": checks}
        atomic_write_bytes(res, (json.dumps(doc, indent=1, default=float) + "\n").encode())
        write_block(ROOT / "docs" / "rarity.md", markdown(results, checks, elapsed))
        print(f"wrote {res} and docs/rarity.md")


if __name__ == "__main__":
    main()
