"""deepcuts ALS vs the ``implicit`` package: seconds per iteration, peak memory, NDCG and recall.

The same training matrices are factorised by ``deepcuts.models.ALS`` (CG solver) and by
``implicit.cpu.als.AlternatingLeastSquares`` (its CG solver), at 64 and 128 factors, 15
iterations each, on

(a) the bundled Last.fm 2K (HetRec 2011) and
(b) a generated power-law matrix, 200k users x 50k items, 5.77M non-zeros of which the 4.62M
    of the training split are factorised (seeded; user activity Pareto-distributed, item
    popularity Zipf, users drawing most plays from a "home" genre so there is structure to
    learn).

Both are split once with ``deepcuts.evaluation.user_holdout_split`` (20% of each user's items,
seed 0) and both models are scored by ``deepcuts.evaluation.evaluate`` on the same users
(implicit's factors are wrapped in an ``ALS`` object, so ranking, filtering of played items
and metrics are the same code).

Same problem for both (apples to apples):

* confidence ``c_ui = 1 + alpha * log(1 + plays)`` with ``alpha = 1`` (deepcuts
  ``weighting="log"``); implicit takes the matrix values as the confidence itself
  (``c_ui = alpha * value``), so it is given the matrix ``1 + log(1 + plays)`` and ``alpha=1``;
* ``regularization = 0.01`` (unscaled in both), 3 CG steps per vector (implicit's default),
  the same initial factors (both draw ``default_rng(seed).random(...) * 0.01``, users first);
* the same number of threads for both (``--threads``, default: the CPUs available): numba's
  ``set_num_threads`` and implicit's ``num_threads``; BLAS pinned to one thread with
  threadpoolctl for the whole run (it is only used outside the parallel kernels);
* seconds per iteration = wall time of the whole ``fit`` / iterations, so each library's setup
  (confidence matrix, transpose) is included; deepcuts also computes the training loss every
  iteration (implicit does not: ``calculate_training_loss=False``). A short warm-up fit runs
  first, so numba's compilation (cached on disk anyway) is excluded.

Every measured fit runs in its own fresh worker process. Peak memory is the worker's peak
resident set size (RSS, ``/proc/<pid>/statm`` polled every 2 ms by the parent process) during
``fit``, minus its RSS just before ``fit`` (data loaded, warm-up done): it counts everything the
fit allocates, NumPy arrays and the libraries' native buffers alike, including the factors.

Usage::

    python benchmarks/als.py                 # full run (about 10 minutes on 2 cores)
    python benchmarks/als.py --quick         # 1/10 of the synthetic matrix, 5 iterations
    python benchmarks/als.py --out als.json  # also write the results as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------- data
def powerlaw_matrix(
    n_users: int = 200_000,
    n_items: int = 50_000,
    plays: int = 9_000_000,
    *,
    n_genres: int = 64,
    home: float = 0.75,
    random_state: int = 0,
) -> sp.csr_matrix:
    """Seeded power-law play counts, (n_users, n_items) float32 CSR.

    User activity is Pareto(1.3) (a few users with thousands of plays, most with a handful),
    item popularity Zipf(0.9) over a random item order. Each user has a home genre (items are
    assigned one of ``n_genres`` genres); a play comes from the home genre with probability
    ``home`` (popularity-weighted within the genre), otherwise from the whole catalogue.
    ``plays`` draws are made and repeated (user, item) draws summed into play counts; the
    default gives 5.77M distinct pairs (4.62M in the training part of the benchmark's split).
    """
    rng = np.random.default_rng(random_state)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    pop = pop[rng.permutation(n_items)]
    genre_i = rng.integers(0, n_genres, n_items)
    order = np.lexsort((np.arange(n_items), genre_i))  # items grouped by genre
    g_sorted = genre_i[order]
    w = pop[order]
    starts = np.searchsorted(g_sorted, np.arange(n_genres + 1))
    # cumulative popularity within each genre, offset by the genre number: a draw in genre g
    # is a search for g + U(0, 1)
    cum = np.empty(n_items)
    for g in range(n_genres):
        c = np.cumsum(w[starts[g] : starts[g + 1]])
        cum[starts[g] : starts[g + 1]] = g + c / c[-1]
    gcum = np.cumsum(pop)
    gcum /= gcum[-1]
    act = rng.pareto(1.3, n_users) + 1.0
    n_u = np.minimum(np.maximum(1, np.round(act / act.sum() * plays)), 20_000).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), n_u)
    genre_u = rng.integers(0, n_genres, n_users)
    r = rng.random(len(users))
    is_home = rng.random(len(users)) < home
    items = np.empty(len(users), np.int64)
    hg = genre_u[users[is_home]]
    pos = np.minimum(np.searchsorted(cum, hg + r[is_home], side="right"), starts[hg + 1] - 1)
    items[is_home] = order[pos]
    items[~is_home] = np.minimum(np.searchsorted(gcum, r[~is_home], side="right"), n_items - 1)
    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.sort_indices()
    return m


def _interactions(m: sp.csr_matrix):
    from deepcuts.data import Interactions
    from deepcuts.data.idmap import IdMap

    return Interactions(
        m, IdMap(np.arange(m.shape[0]), name="user"), IdMap(np.arange(m.shape[1]), name="item")
    )


def prepare(dataset: str, quick: bool, eval_users: int, workdir: Path) -> dict:
    """Split once, save train/test/evaluation users for the workers; return a description."""
    from deepcuts.data import load_lastfm2k
    from deepcuts.evaluation import user_holdout_split

    if dataset == "lastfm2k":
        x = load_lastfm2k()
    else:
        scale = 0.1 if quick else 1.0
        x = _interactions(
            powerlaw_matrix(int(200_000 * scale), int(50_000 * scale), int(9_000_000 * scale))
        )
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    users = np.flatnonzero(test.matrix.getnnz(axis=1) > 0)
    if eval_users and len(users) > eval_users:
        users = np.sort(np.random.default_rng(0).choice(users, eval_users, replace=False))
    path = workdir / f"{dataset}.npz"
    tr, te = train.matrix, test.matrix
    np.savez(
        path,
        shape=np.array(tr.shape),
        tr_data=tr.data,
        tr_indices=tr.indices,
        tr_indptr=tr.indptr,
        te_data=te.data,
        te_indices=te.indices,
        te_indptr=te.indptr,
        users=users,
    )
    return {
        "dataset": dataset,
        "path": str(path),
        "n_users": int(x.n_users),
        "n_items": int(x.n_items),
        "nnz": int(x.nnz),
        "train_nnz": int(train.nnz),
        "eval_users": int(len(users)),
    }


# ---------------------------------------------------------------------------- worker
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def worker(task: dict) -> None:
    """Runs in a fresh process: warm up, report RSS, fit (timed), evaluate; JSON on stdout."""
    import numba
    from threadpoolctl import threadpool_limits

    from deepcuts.evaluation import evaluate
    from deepcuts.models import ALS

    limiter = threadpool_limits(limits=1, user_api="blas")  # noqa: F841 - held for the run
    numba.set_num_threads(task["threads"])
    z = np.load(task["path"])
    shape = tuple(z["shape"])
    train = _interactions(
        sp.csr_matrix((z["tr_data"], z["tr_indices"], z["tr_indptr"]), shape=shape)
    )
    test = _interactions(
        sp.csr_matrix((z["te_data"], z["te_indices"], z["te_indptr"]), shape=shape)
    )
    users = z["users"]
    f, iters, seed = task["factors"], task["iterations"], 0
    small = _interactions(train.matrix[:2000])

    if task["library"] == "deepcuts":

        def make(n_iter):
            return ALS(
                factors=f,
                iterations=n_iter,
                regularization=0.01,
                reg_scaling="none",  # implicit's penalty (IMPLICIT_EQUIVALENT)
                alpha=1.0,
                weighting="log",
                cg_steps=task["cg_steps"],
                random_state=seed,
            )

        def fit(model, x):
            return model.fit(x)

        make(1).fit(small)  # warm-up (loads numba's cached machine code)
    else:
        from implicit.cpu.als import AlternatingLeastSquares

        def make(n_iter):
            m = AlternatingLeastSquares(
                factors=f,
                iterations=n_iter,
                regularization=0.01,
                alpha=1.0,
                use_cg=True,
                calculate_training_loss=False,
                num_threads=task["threads"],
                random_state=seed,
            )
            m.cg_steps = task["cg_steps"]
            return m

        def confidence(x):
            c = x.matrix.copy()
            c.data = (1.0 + np.log1p(c.data)).astype(np.float32)
            return c

        def fit(model, x):
            model.fit(confidence(x), show_progress=False)
            return model

        fit(make(1), small)

    times = []
    for rep in range(task["repeats"]):
        model = make(iters)
        base = _rss()
        print(json.dumps({"event": "start", "rss": base}), flush=True)
        t0 = time.perf_counter()
        fit(model, train)
        times.append(time.perf_counter() - t0)
        print(json.dumps({"event": "end", "rep": rep}), flush=True)
        if rep + 1 < task["repeats"]:
            del model
    if task["library"] == "implicit":
        wrapped = ALS(factors=f)
        wrapped.interactions_ = train
        wrapped.user_factors_ = np.ascontiguousarray(model.user_factors, np.float32)
        wrapped.item_factors_ = np.ascontiguousarray(model.item_factors, np.float32)
        wrapped._reset_caches()
        model = wrapped
    _, means = evaluate(model, train, test, k=(10, 20), metrics=["ndcg", "recall"], users=users)
    print(
        json.dumps(
            {
                "event": "result",
                "fit_s": min(times),
                "fit_s_all": times,
                "ndcg@10": means["ndcg@10"],
                "recall@20": means["recall@20"],
            }
        ),
        flush=True,
    )


def run_task(task: dict) -> dict:
    """Start a worker, poll its RSS during each fit, return its result plus the peak."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", json.dumps(task)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    statm = f"/proc/{proc.pid}/statm"
    peak = {"value": 0}
    polling = threading.Event()

    def poll():
        while polling.is_set():
            try:
                with open(statm) as fh:
                    peak["value"] = max(peak["value"], int(fh.read().split()[1]) * PAGE)
            except (OSError, ValueError, IndexError):
                return
            time.sleep(0.002)

    deltas, result, thread = [], None, None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg["event"] == "start":
            base = msg["rss"]
            peak["value"] = base
            polling.set()
            thread = threading.Thread(target=poll, daemon=True)
            thread.start()
        elif msg["event"] == "end":
            polling.clear()
            thread.join()
            deltas.append(peak["value"] - base)
        elif msg["event"] == "result":
            result = msg
    if proc.wait() != 0 or result is None:
        raise RuntimeError(f"worker failed (exit {proc.returncode}) for {task}")
    return {
        **{k: task[k] for k in ("dataset", "library", "factors", "iterations", "threads")},
        "s_per_iter": result["fit_s"] / task["iterations"],
        "fit_s": result["fit_s"],
        "peak_mib": max(deltas) / 2**20,
        "ndcg@10": result["ndcg@10"],
        "recall@20": result["recall@20"],
    }


# ---------------------------------------------------------------------------- report
def ratios(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (ds, f), g in table.groupby(["dataset", "factors"], sort=False):
        d = g.set_index("library")
        if not {"deepcuts", "implicit"} <= set(d.index):
            continue
        dc, im = d.loc["deepcuts"], d.loc["implicit"]
        rows.append(
            {
                "dataset": ds,
                "factors": f,
                "time deepcuts/implicit": dc["s_per_iter"] / im["s_per_iter"],
                "ndcg@10 deepcuts/implicit": dc["ndcg@10"] / im["ndcg@10"],
                "recall@20 deepcuts/implicit": dc["recall@20"] / im["recall@20"],
                "memory deepcuts/implicit": dc["peak_mib"] / im["peak_mib"],
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, ratio: pd.DataFrame) -> str:
    lines = [
        "| dataset | factors | deepcuts s/iter | implicit s/iter | ratio | "
        "deepcuts NDCG@10 | implicit NDCG@10 | deepcuts recall@20 | implicit recall@20 | "
        "deepcuts peak MiB | implicit peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ratio.itertuples(index=False):
        d = table[(table.dataset == r.dataset) & (table.factors == r.factors)].set_index("library")
        dc, im = d.loc["deepcuts"], d.loc["implicit"]
        lines.append(
            f"| {r.dataset} | {r.factors} | {dc.s_per_iter:.3f} | {im.s_per_iter:.3f} | "
            f"{r[2]:.2f} | {dc['ndcg@10']:.4f} | {im['ndcg@10']:.4f} | "
            f"{dc['recall@20']:.4f} | {im['recall@20']:.4f} | {dc.peak_mib:.0f} | "
            f"{im.peak_mib:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/10 synthetic matrix, 5 iterations")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--iterations", type=int, help="default 15 (5 with --quick)")
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="timed fits per worker (best kept)")
    ap.add_argument(
        "--datasets", nargs="+", default=["lastfm2k", "powerlaw"], choices=["lastfm2k", "powerlaw"]
    )
    ap.add_argument(
        "--eval-users", type=int, default=10_000, help="test users scored on large datasets"
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    iterations = args.iterations or (5 if args.quick else 15)
    eval_users = 2_000 if args.quick else args.eval_users
    rows, datasets = [], []
    with tempfile.TemporaryDirectory(prefix="deepcuts-als-bench-") as tmp:
        for ds in args.datasets:
            info = prepare(ds, args.quick, eval_users if ds == "powerlaw" else 0, Path(tmp))
            datasets.append(info)
            print(
                f"{ds}: {info['n_users']} users x {info['n_items']} items, {info['nnz']} "
                f"non-zeros ({info['train_nnz']} train); {info['eval_users']} users evaluated",
                flush=True,
            )
            for f in args.factors:
                for lib in ("implicit", "deepcuts"):
                    task = {
                        "dataset": ds,
                        "path": info["path"],
                        "library": lib,
                        "factors": f,
                        "iterations": iterations,
                        "threads": args.threads,
                        "cg_steps": args.cg_steps,
                        "repeats": args.repeats,
                    }
                    row = run_task(task)
                    rows.append(row)
                    print(
                        f"  {lib:9s} f={f:<4d} {row['s_per_iter']:.3f} s/iter  "
                        f"peak +{row['peak_mib']:.0f} MiB  NDCG@10 {row['ndcg@10']:.4f}  "
                        f"recall@20 {row['recall@20']:.4f}",
                        flush=True,
                    )
    table = pd.DataFrame(rows)
    ratio = ratios(table)
    print()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(ratio.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(markdown(table, ratio))
    if args.out:
        import implicit
        import numba

        payload = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cpus_available": len(os.sched_getaffinity(0)),
                "threads": args.threads,
                "python": platform.python_version(),
                "numba": numba.__version__,
                "implicit": implicit.__version__,
                "numpy": np.__version__,
            },
            "settings": {
                "iterations": iterations,
                "cg_steps": args.cg_steps,
                "regularization": 0.01,
                "confidence": "1 + log(1 + plays)",
                "quick": args.quick,
                "memory": "peak RSS of the worker during fit minus RSS before fit",
            },
            "datasets": datasets,
            "results": rows,
            "ratios": ratio.to_dict(orient="records"),
        }
        from deepcuts._fileio import atomic_write_bytes

        atomic_write_bytes(args.out, json.dumps(payload, indent=2).encode())
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
