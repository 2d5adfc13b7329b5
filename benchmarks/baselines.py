"""Strong baselines: EASE and RP3beta against reference code, and what ``deepcuts tune`` picks.

Two data sets, each with a per-user 20% holdout (seed 0) as the test split, and every setting
picked on a per-user 20% holdout of the *training* part (the validation split, seed 0):

* ``lastfm2k``: the bundled HetRec 2011 Last.fm 2K (artists).
* ``songs``: ``generate_listening(3000, 8000, level="song", songs_per_artist=8,
  random_state=0)`` (songs never played dropped).

Measured, each as ``name = value`` lines and ratios against an anchor from the same run:

1. ``--part reference`` (Last.fm 2K): EASE and RP3beta against straightforward NumPy/SciPy code
   of the published formulas (Steck 2019's listing in float64; Dacrema et al. 2019's RP3beta,
   block-wise sparse products and ``argpartition``), same split, same settings (picked on the
   validation split): accuracy ratio and fit time. RP3beta's fit time also against
   ``implicit``'s item-kNN (``CosineRecommender``, same K).
2. ``--part baselines --data NAME``: EASE (lambda picked on validation), ``implicit`` ALS (a
   validation grid), deepcuts ALS with implicit's settings (row ``als_implicit_equivalent``,
   ``IMPLICIT_EQUIVALENT``), deepcuts ALS with the tuned-iALS options
   (``tune`` restricted to the ``ials`` family for ``--ials-budget``), and the model ``tune``
   picks across every family in ``--budget`` (default 10 minutes); test metrics of each once.

Numbers go to ``docs/accuracy-benchmark.json`` (one key per part and data set, other keys kept);
``--write-docs`` rewrites the section of ``docs/benchmarks.md`` from that file; trial plots go to
``docs/img/tune-<data>.png``.

Usage::

    python benchmarks/baselines.py --part reference
    python benchmarks/baselines.py --part baselines --data lastfm2k --budget 10m
    python benchmarks/baselines.py --part baselines --data songs --budget 10m
    python benchmarks/baselines.py --write-docs
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from deepcuts._fileio import atomic_write_bytes
from deepcuts.data import generate_listening, load_lastfm2k
from deepcuts.evaluation import evaluate, score_lists, user_holdout_split
from deepcuts.evaluation.tuning import parse_budget, plot_trials, tune
from deepcuts.models import ALS, EASE, RP3beta
from deepcuts.models.als import IMPLICIT_EQUIVALENT

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "docs" / "accuracy-benchmark.json"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "Strong baselines: EASE, RP3beta, tuned iALS and deepcuts tune"
K = (10, 20)
METRICS = ("recall", "ndcg")
#: the row of deepcuts ALS with implicit's settings (``IMPLICIT_EQUIVALENT``), named so because
#: it compares like with like against ``implicit`` ALS; files written before issue 14 call it
#: ``als_default`` (the defaults then), and :func:`load_doc` renames it
ALS_IE = "als_implicit_equivalent"
LEGACY_KEYS = {"als_default": ALS_IE}


def load_doc(path: Path = JSON) -> dict:
    """The measured numbers of ``path`` (``{}`` if it does not exist), with the rows of older
    files under their current names (``als_default`` -> ``als_implicit_equivalent``)."""
    doc = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    for key, part in doc.items():
        if key.startswith("baselines_") and isinstance(part, dict):
            for old, new in LEGACY_KEYS.items():
                if old in part and new not in part:
                    part[new] = part.pop(old)
    return doc


# ---------------------------------------------------------------------- data
def load(name: str):
    if name == "lastfm2k":
        x = load_lastfm2k()
    elif name == "songs":
        x = generate_listening(3000, 8000, level="song", songs_per_artist=8, random_state=0)
        x = x.interactions
        x = x.subset(items=np.flatnonzero(x.matrix.getnnz(axis=0) > 0))
    else:
        raise SystemExit(f"unknown data set {name!r}")
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    tr, val = user_holdout_split(train, test_fraction=0.2, random_state=0)
    return x, train, test, tr, val


def binary(m) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


# ---------------------------------------------------------------------- references
def ease_reference(x, lam: float) -> np.ndarray:
    """Steck (2019), the paper's Python listing: float64 NumPy, ``np.linalg.inv``."""
    X = binary(x)
    G = (X.T @ X).toarray()
    G[np.diag_indices(G.shape[0])] += lam
    P = np.linalg.inv(G)
    del G
    B = P / (-np.diag(P))
    B[np.diag_indices(B.shape[0])] = 0.0
    return B


def rp3beta_reference(x, alpha: float, beta: float, k: int, block: int = 1000):
    """Dacrema et al. (2019)'s RP3beta: L1-normalised transitions ** alpha, W = P_iu P_ui in
    row blocks, columns divided by pop ** beta, diagonal zeroed, top-k per row, rows L1."""
    X = binary(x)

    def l1(m):
        s = np.asarray(m.sum(axis=1)).ravel()
        return sp.csr_matrix(sp.diags(np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)) @ m)

    p_ui, p_iu = l1(X), l1(X.T.tocsr())
    p_ui.data **= alpha
    p_iu.data **= alpha
    pop = np.asarray(X.sum(axis=0)).ravel()
    deg = np.zeros_like(pop)
    np.power(pop, -beta, out=deg, where=pop > 0)
    n = X.shape[1]
    rows, cols, vals = [], [], []
    for a in range(0, n, block):
        b = min(n, a + block)
        S = (p_iu[a:b] @ p_ui).toarray() * deg
        S[np.arange(b - a), np.arange(a, b)] = 0.0
        kk = min(k, n - 1)
        top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
        v = np.take_along_axis(S, top, axis=1)
        keep = v > 0
        rows.append(np.repeat(np.arange(a, b), kk)[keep.ravel()])
        cols.append(top[keep])
        vals.append(v[keep])
    W = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return l1(W)


def lists_from_weights(W, train, users, n=20) -> np.ndarray:
    """Top-n of ``x_u W`` with played items removed (dense or sparse ``W``)."""
    from deepcuts.models._topk import topk_rows

    out = np.full((len(users), n), -1, np.int64)
    for s in range(0, len(users), 512):
        ub = users[s : s + 512]
        ui = binary(train.matrix[ub])
        S = ui @ W
        S = np.asarray(S.toarray() if sp.issparse(S) else S, np.float32)
        S[np.repeat(np.arange(len(ub)), np.diff(ui.indptr)), ui.indices] = -np.inf
        idx, _ = topk_rows(S, n)
        out[s : s + len(ub), : idx.shape[1]] = idx
    return out


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def test_users(test):
    return np.flatnonzero(test.matrix.getnnz(axis=1) > 0).astype(np.int32)


def metrics_of(model, train, test) -> dict:
    return evaluate(model, train, test, k=K, metrics=METRICS)[1]


def pick(candidates, make, tr, val, metric="ndcg@10"):
    """The candidate with the best validation ``metric``, and every validation score."""
    scores = {}
    for c in candidates:
        scores[json.dumps(c, sort_keys=True)] = metrics_of(make(c).fit(tr), tr, val)[metric]
        print(f"  validation {c}: {metric} = {scores[json.dumps(c, sort_keys=True)]:.4f}")
    best = max(scores, key=scores.get)
    return json.loads(best), scores


# ---------------------------------------------------------------------- part 1
def part_reference(doc: dict) -> dict:
    _, train, test, tr, val = load("lastfm2k")
    users = test_users(test)
    out = {"data": "lastfm2k", "n_items": train.n_items, "train_pairs": train.nnz}
    # EASE: lambda on validation (the baselines part's pick when it ran: the same split and
    # grid), then ours vs the float64 listing on the test split
    if "baselines_lastfm2k" in doc:
        lam = doc["baselines_lastfm2k"]["ease"]["params"]
    else:
        lam, _ = pick([{"regularization": v} for v in (100.0, 500.0, 2000.0)],
                      lambda c: EASE(**c), tr, val)  # fmt: skip
    lam = lam["regularization"]
    ours, t_ours = timed(lambda: EASE(regularization=lam).fit(train))
    m_ours = metrics_of(ours, train, test)
    del ours
    B, t_ref = timed(lambda: ease_reference(train.matrix, lam))
    m_ref = score_lists(lists_from_weights(B, train, users), users, train, test, k=K,
                        metrics=METRICS)[1]  # fmt: skip
    del B
    out["ease"] = {"regularization": lam, "ours": m_ours, "reference": m_ref,
                   "fit_s_ours": t_ours, "fit_s_reference": t_ref}  # fmt: skip
    # RP3beta: a validation grid, then ours vs the reference and vs implicit's item-kNN
    grid = [{"alpha": a, "beta": b, "neighbors": k}
            for a in (0.5, 1.0) for b in (0.2, 0.4, 0.6) for k in (50, 200)]  # fmt: skip
    best, _ = pick(grid, lambda c: RP3beta(**c), tr, val)
    RP3beta(**best).fit(tr)  # numba compilation outside the timing
    fits = [timed(lambda: RP3beta(**best).fit(train)) for _ in range(3)]
    rp, t_rp = fits[-1][0], min(t for _, t in fits)
    m_rp = metrics_of(rp, train, test)
    ref_fits = [timed(lambda: rp3beta_reference(train.matrix, best["alpha"], best["beta"],
                                                best["neighbors"])) for _ in range(2)]  # fmt: skip
    W, t_rp_ref = ref_fits[-1][0], min(t for _, t in ref_fits)
    m_rp_ref = score_lists(lists_from_weights(W, train, users), users, train, test, k=K,
                           metrics=METRICS)[1]  # fmt: skip
    from implicit.nearest_neighbours import CosineRecommender

    knn_t = []
    xb = binary(train.matrix).astype(np.float32)
    for _ in range(3):
        knn = CosineRecommender(K=best["neighbors"])
        knn_t.append(timed(lambda m=knn: m.fit(xb, show_progress=False))[1])
    out["rp3beta"] = {"params": best, "ours": m_rp, "reference": m_rp_ref, "fit_s_ours": t_rp,
                      "fit_s_reference": t_rp_ref, "fit_s_implicit_itemknn": min(knn_t)}  # fmt: skip
    return out


# ---------------------------------------------------------------------- part 2
def implicit_als(train, factors, reg, alpha, seed=0):
    from implicit.cpu.als import AlternatingLeastSquares

    # the confidence deepcuts' ALS uses, c = 1 + alpha * log(1 + x), given to implicit directly
    C = sp.csr_matrix(train.matrix, dtype=np.float32)
    C.data = (1.0 + alpha * np.log1p(C.data)).astype(np.float32)
    m = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, iterations=15,
                                random_state=seed)  # fmt: skip
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's advice: no BLAS threads inside its ALS
        m.fit(C, show_progress=False)
    return m


def implicit_metrics(m, train, test) -> dict:
    users = test_users(test)
    ids, _ = m.recommend(users, train.matrix[users], N=20, filter_already_liked_items=True)
    return score_lists(np.where(ids >= 0, ids, -1).astype(np.int64), users, train, test, k=K,
                       metrics=METRICS)[1]  # fmt: skip


def part_baselines(name: str, budget_s: float, ials_budget_s: float) -> dict:
    _, train, test, tr, val = load(name)
    out = {"data": name, "n_users": train.n_users, "n_items": train.n_items,
           "train_pairs": train.nnz, "budget_s": budget_s}  # fmt: skip
    print(f"{name}: {train.n_users} users x {train.n_items} items, {train.nnz} train pairs")
    # EASE, lambda on validation
    lam, _ = pick([{"regularization": v} for v in (100.0, 500.0, 2000.0)],
                  lambda c: EASE(**c), tr, val)  # fmt: skip
    ease = EASE(**lam).fit(train)
    out["ease"] = {"params": lam, "test": metrics_of(ease, train, test)}
    del ease
    # implicit ALS, a validation grid
    grid = [{"factors": f, "reg": r, "alpha": a}
            for f in (64, 128) for r in (0.01, 1.0) for a in (1.0, 5.0)]  # fmt: skip
    scores = {}
    for c in grid:
        scores[json.dumps(c)] = implicit_metrics(implicit_als(tr, **c), tr, val)["ndcg@10"]
        print(f"  validation implicit ALS {c}: ndcg@10 = {scores[json.dumps(c)]:.4f}")
    best = json.loads(max(scores, key=scores.get))
    out["implicit_als"] = {"params": best,
                           "test": implicit_metrics(implicit_als(train, **best), train, test)}  # fmt: skip
    # deepcuts ALS with implicit's penalty (IMPLICIT_EQUIVALENT: like with like against implicit
    # ALS; the defaults before issue 14); the tuned-iALS row below searches the penalty
    params = {"random_state": 0, **IMPLICIT_EQUIVALENT}
    als0 = ALS(**params).fit(train)
    out[ALS_IE] = {"params": params, "test": metrics_of(als0, train, test)}
    # deepcuts ALS with the tuned-iALS options, tuned on validation
    res = tune(train, families=["ials"], budget_s=ials_budget_s, random_state=0,
               show_progress=True)  # fmt: skip
    out["ials_tuned"] = {"params": res.params, "validation": res.value, "trials": res.n_trials,
                         "test": metrics_of(res.model, train, test)}  # fmt: skip
    # deepcuts tune across every family
    res = tune(train, budget_s=budget_s, random_state=0, show_progress=True)
    plot_trials(res.table, res.metric, ROOT / "docs" / "img" / f"tune-{name}.png")
    best_per_family = res.table.groupby("family")[res.metric].max().to_dict()
    out["tune"] = {"family": res.family, "params": res.params, "validation": res.value,
                   "trials": res.n_trials, "elapsed_s": res.elapsed_s,
                   "states": res.table["state"].value_counts().to_dict(),
                   "best_validation_per_family": best_per_family, "notes": res.notes,
                   "test": metrics_of(res.model, train, test)}  # fmt: skip
    return out


# ---------------------------------------------------------------------- output
def lines(doc: dict) -> list[str]:
    """``name = value`` lines and the target ratios of whatever parts ``doc`` holds."""
    out = []
    ref = doc.get("reference")
    if ref:
        for m in ("ease", "rp3beta"):
            r = ref[m]
            for k in ("recall@20", "ndcg@10"):
                out.append(f"{m}_{k}_ours = {r['ours'][k]:.4f}")
                out.append(f"{m}_{k}_reference = {r['reference'][k]:.4f}")
                out.append(f"{m}_{k}_ratio_ours_over_reference = "
                           f"{r['ours'][k] / r['reference'][k]:.4f}")  # fmt: skip
            out.append(f"{m}_fit_s_ours = {r['fit_s_ours']:.2f}")
            out.append(f"{m}_fit_s_reference = {r['fit_s_reference']:.2f}")
            out.append(f"{m}_fit_time_ratio_ours_over_reference = "
                       f"{r['fit_s_ours'] / r['fit_s_reference']:.3f}")  # fmt: skip
        r = ref["rp3beta"]
        out.append(f"implicit_itemknn_fit_s = {r['fit_s_implicit_itemknn']:.3f}")
        out.append(f"rp3beta_fit_time_ratio_ours_over_implicit_itemknn = "
                   f"{r['fit_s_ours'] / r['fit_s_implicit_itemknn']:.3f}")  # fmt: skip
    for name in ("lastfm2k", "songs"):
        b = doc.get(f"baselines_{name}")
        if not b:
            continue
        for model in ("ease", "implicit_als", "als_implicit_equivalent", "ials_tuned", "tune"):
            for k in ("recall@20", "ndcg@10"):
                out.append(f"{name}_{model}_{k} = {b[model]['test'][k]:.4f}")
        for k in ("recall@20", "ndcg@10"):
            t = b["tune"]["test"][k]
            out.append(f"{name}_tune_over_ease_{k} = {t / b['ease']['test'][k]:.4f}")
            out.append(f"{name}_tune_over_implicit_als_{k} = "
                       f"{t / b['implicit_als']['test'][k]:.4f}")  # fmt: skip
        out.append(
            f"{name}_ials_tuned_over_ease_recall@20 = "
            f"{b['ials_tuned']['test']['recall@20'] / b['ease']['test']['recall@20']:.4f}"
        )
        out.append(
            f"{name}_als_implicit_equivalent_over_ease_recall@20 = "
            f"{b[ALS_IE]['test']['recall@20'] / b['ease']['test']['recall@20']:.4f}"
        )
        out.append(f"{name}_tune_winner = {b['tune']['family']}")
    return out


def markdown(doc: dict) -> str:
    def row(cells):
        return "| " + " | ".join(cells) + " |"

    text = [f"## {SECTION}", ""]
    text.append(
        "`python benchmarks/baselines.py` (parts `reference` and `baselines`), on "
        f"{platform.machine()} with 2 cores shared with other jobs (times are noisy; the ratios "
        "to an anchor measured in the same run are the stable numbers). Test split: per-user "
        "20% holdout, seed 0; every setting (EASE's lambda, RP3beta's grid, implicit ALS's "
        "grid, the `tune` searches) picked on a per-user 20% holdout of the *training* part. "
        "Metrics: recall@20 = hits / |test items| and NDCG@10, binary relevance, played items "
        "filtered (`docs/evaluation.md`). Raw numbers: `docs/accuracy-benchmark.json`."
    )
    ref = doc.get("reference")
    if ref:
        e, r = ref["ease"], ref["rp3beta"]
        text += ["", "### EASE and RP3beta against reference code (Last.fm 2K)", ""]
        text.append(
            "The references are straightforward NumPy/SciPy code of the published formulas "
            "(`ease_reference`: Steck 2019's listing, float64 `np.linalg.inv`; "
            "`rp3beta_reference`: Dacrema et al. 2019's block-wise sparse products with "
            "`argpartition`), with the same settings on the same split. "
            f"EASE lambda = {e['regularization']:g}; RP3beta {r['params']}."
        )
        text += ["", row(["model", "recall@20", "NDCG@10", "fit s", "ratio recall@20",
                          "ratio NDCG@10", "fit-time ratio"]), "|---" * 7 + "|"]  # fmt: skip
        for m, label, anchor in (("ease", "EASE", "reference (float64 NumPy)"),
                                 ("rp3beta", "RP3beta", "reference (SciPy)")):  # fmt: skip
            d = ref[m]
            text.append(row([f"{label}, deepcuts", f"{d['ours']['recall@20']:.4f}",
                             f"{d['ours']['ndcg@10']:.4f}", f"{d['fit_s_ours']:.2f}",
                             f"{d['ours']['recall@20'] / d['reference']['recall@20']:.4f}",
                             f"{d['ours']['ndcg@10'] / d['reference']['ndcg@10']:.4f}",
                             f"{d['fit_s_ours'] / d['fit_s_reference']:.3f}"]))  # fmt: skip
            text.append(row([f"{label}, {anchor}", f"{d['reference']['recall@20']:.4f}",
                             f"{d['reference']['ndcg@10']:.4f}", f"{d['fit_s_reference']:.2f}",
                             "1", "1", "1"]))  # fmt: skip
        text.append(row(["`implicit` CosineRecommender (same K), fit only", "", "",
                         f"{r['fit_s_implicit_itemknn']:.3f}", "", "",
                         f"RP3beta / it: {r['fit_s_ours'] / r['fit_s_implicit_itemknn']:.2f}"]))  # fmt: skip
    for name, title in (("lastfm2k", "Last.fm 2K (artists)"),
                        ("songs", "generated song-level data")):  # fmt: skip
        b = doc.get(f"baselines_{name}")
        if not b:
            continue
        text += ["", f"### Tuned model against strong baselines: {title}", ""]
        text.append(
            f"{b['n_users']} users x {b['n_items']} items, {b['train_pairs']} training pairs. "
            f"`tune` budget {b['budget_s'] / 60:.0f} min: {b['tune']['trials']} trials "
            f"({', '.join(f'{k.lower()} {v}' for k, v in b['tune']['states'].items())}) in "
            f"{b['tune']['elapsed_s']:.0f} s; winner **{b['tune']['family']}** "
            f"`{json.dumps(b['tune']['params'], sort_keys=True)}`."
        )
        text += ["", row(["model", "settings", "recall@20", "NDCG@10", "recall@20 / EASE",
                          "NDCG@10 / EASE"]), "|---" * 6 + "|"]  # fmt: skip
        labels = {
            "ease": "EASE (lambda on validation)",
            "implicit_als": "`implicit` ALS (validation grid)",
            "als_implicit_equivalent": "deepcuts ALS, `IMPLICIT_EQUIVALENT`",
            "ials_tuned": "deepcuts ALS, tuned-iALS options (`tune --families ials`)",
            "tune": "**`deepcuts tune` winner**",
        }
        for key, label in labels.items():
            d = b[key]
            params = d.get("params", {}) if key != "tune" else {"family": d["family"]}
            text.append(row([label, f"`{json.dumps(params, sort_keys=True)}`",
                             f"{d['test']['recall@20']:.4f}", f"{d['test']['ndcg@10']:.4f}",
                             f"{d['test']['recall@20'] / b['ease']['test']['recall@20']:.3f}",
                             f"{d['test']['ndcg@10'] / b['ease']['test']['ndcg@10']:.3f}"]))  # fmt: skip
        fam = ", ".join(f"{k} {v:.4f}" for k, v in
                        sorted(b["tune"]["best_validation_per_family"].items(),
                               key=lambda kv: -kv[1]))  # fmt: skip
        text += ["", f"Best validation NDCG@10 per family in the search: {fam}.",
                 "", f"![tune trials on {name}](img/tune-{name}.png)"]  # fmt: skip
    text += targets(doc)
    text += ["", "Printed ratios of the last runs:", "", "```", *lines(doc), "```", ""]
    return "\n".join(text)


def targets(doc: dict) -> list[str]:
    """The issue's targets with their measured numbers (issue 16)."""
    out = ["", "### Targets (issue 16)", "", "| target | measured | holds |", "|---|---|---|"]

    def add(name, value, ok):
        out.append(f"| {name} | {value} | {'yes' if ok else 'no'} |")

    ref = doc.get("reference")
    if ref:
        for m, label in (("ease", "EASE"), ("rp3beta", "RP3beta")):
            d = ref[m]
            r = [d["ours"][k] / d["reference"][k] for k in ("recall@20", "ndcg@10")]
            add(f"{label} within 2% of the reference (Last.fm 2K)",
                f"recall@20 ratio {r[0]:.4f}, NDCG@10 ratio {r[1]:.4f}",
                all(abs(v - 1) <= 0.02 for v in r))  # fmt: skip
        e, p = ref["ease"], ref["rp3beta"]
        add("EASE fit time vs NumPy reference (reported)",
            f"{e['fit_s_ours']:.1f} s vs {e['fit_s_reference']:.1f} s "
            f"(ratio {e['fit_s_ours'] / e['fit_s_reference']:.2f})", True)  # fmt: skip
        add("RP3beta fit time vs `implicit` item-kNN (reported)",
            f"{p['fit_s_ours']:.3f} s vs {p['fit_s_implicit_itemknn']:.3f} s "
            f"(ratio {p['fit_s_ours'] / p['fit_s_implicit_itemknn']:.2f})", True)  # fmt: skip
    for name, label in (("lastfm2k", "Last.fm 2K"), ("songs", "generated songs")):
        b = doc.get(f"baselines_{name}")
        if not b:
            continue
        t = b["tune"]["test"]
        ratios = [t[k] / b[o]["test"][k] for o in ("ease", "implicit_als")
                  for k in ("recall@20", "ndcg@10")]  # fmt: skip
        add(f"tune's pick beats EASE and `implicit` ALS ({label})",
            "ratios recall@20, NDCG@10 vs EASE " f"{ratios[0]:.3f}, {ratios[1]:.3f}; "
            f"vs implicit ALS {ratios[2]:.3f}, {ratios[3]:.3f}", min(ratios) > 1)  # fmt: skip
    b = doc.get("baselines_songs")
    if b:
        r = b["ials_tuned"]["test"]["recall@20"] / b["ease"]["test"]["recall@20"]
        r0 = b[ALS_IE]["test"]["recall@20"] / b["ease"]["test"]["recall@20"]
        add("tuned-iALS ALS within 2% of EASE's recall@20 or above (generated songs)",
            f"{r:.3f} x EASE (ALS with `IMPLICIT_EQUIVALENT`: {r0:.3f})", r >= 0.98)  # fmt: skip
    out += [
        "",
        "Notes. The runs shared 2 cores with other jobs (load average 9-12), so a 10-minute "
        "budget bought 35 (Last.fm 2K) and 50 (songs) trials, many pruned after a quarter of "
        "the validation users. On the generated song-level data deepcuts ALS with implicit's "
        "penalty (`IMPLICIT_EQUIVALENT`, the defaults before issue 14; row "
        "`als_implicit_equivalent`) already beats EASE (the issue's EASE win was on a real Taste Profile sample), so the "
        "tuned-iALS target holds there without needing the new options; on Last.fm 2K the "
        "tuned-iALS options lift ALS from 0.999x to 1.042x EASE's recall@20. EASE's validation "
        "grid (100, 500, 2000) picked its lowest lambda on both data sets; a lower lambda might "
        "do better (the `tune` search covers 1-10,000 and picked ALS). Fit times are single "
        "runs on the loaded machine except RP3beta and `implicit` item-kNN (best of 3 warm "
        "fits; the reference, best of 2).",
    ]
    return out


def write_section(text: str) -> None:
    old = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    atomic_write_bytes(DOC, new.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["reference", "baselines"])
    ap.add_argument("--data", choices=["lastfm2k", "songs"], default="lastfm2k")
    ap.add_argument("--budget", default="10m", help="deepcuts tune budget (default 10m)")
    ap.add_argument("--ials-budget", default="3m", help="budget of the ials-only search")
    ap.add_argument("--write-docs", action="store_true", help="rewrite the docs section")
    args = ap.parse_args()
    doc = load_doc()
    if args.part == "reference":
        doc["reference"] = part_reference(doc)
    elif args.part == "baselines":
        doc[f"baselines_{args.data}"] = part_baselines(
            args.data, parse_budget(args.budget), parse_budget(args.ials_budget)
        )
    if args.part:
        atomic_write_bytes(JSON, json.dumps(doc, indent=2, sort_keys=True, default=str).encode())
    for line in lines(doc):
        print(line)
    if args.write_docs:
        write_section(markdown(doc))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
