"""A Taste-Profile-shaped catalogue end to end: ingest, ALS vs implicit, batch top-20, ANN, serving.

``--scale S`` generates ``S`` x the Million Song Dataset Taste Profile's shape (1,019,318 users
x 384,546 songs, 48.4M user-song pairs at ``S = 1``) with :func:`deepcuts.data.generate_listening`
(:func:`deepcuts.data.taste_profile_shape`), writes it in the Taste Profile's own format and
then measures, each step in a fresh worker process (so every peak RSS is that step's own):

ingest      ``read_msd_taste_profile`` (the real, streaming reader) at track level: lines/s and
            the worker's peak RSS (target: >= 300k lines/s, <= 4 GiB at 48M lines).
als         deepcuts ``ALS`` and ``implicit``'s CPU ALS on the same matrix, 64 factors, CG with 3
            steps, confidence ``1 + log(1 + plays)`` for both (deepcuts ``weighting="log"``,
            computed inside its kernels; implicit is given that matrix, as in
            benchmarks/als.py, built inside the measured region since it is part of what
            training with implicit costs). Penalty: ``regularization=0.01`` for both, scaled by
            each vector's positive entries in deepcuts (ALS-WR, ``reg_scaling="activity"``,
            its default) and unscaled in implicit; the penalty does not change the work per
            iteration. Seconds per iteration (whole ``fit`` / iterations; also the process's
            CPU seconds, all threads, which a loaded machine disturbs less than the wall
            clock) and the fit's peak RSS above the worker's RSS just before it, both
            libraries measured the same way (kernel high-water mark ``VmHWM`` reset through
            ``/proc/self/clear_refs`` after ``malloc_trim``; target: time ratio <= 0.5,
            memory ratio <= 1).
persona     the default persona model (``deepcuts train --model persona``: ``PostHocPersonas``)
            built on the saved ALS's item space (``from_model``, as the demo and the service
            do; its users are clustered in blocks, with a progress bar): fit seconds, peak RSS
            above the loaded ALS, personas per user. Then save/load: both models are saved
            (``.npz`` + JSON manifest, the ALS with its faiss index), loaded back (seconds,
            MiB) and must give identical top-20 lists for a seeded sample of 500 users.
batch       every user's top-20 unplayed songs in batches of 1,024 from the saved model as it
            is served (its index on), with a progress bar; total seconds and ms/user.
topk        top-20 unplayed songs for a seeded sample of ``--topk-users`` users (0: all;
            ms/user scales linearly), from the deepcuts factors: implicit's
            ``recommend`` (exact), deepcuts exact (``ann=False``) and deepcuts with the faiss
            index (``ann=True``, 300 candidates re-ranked exactly). ``ann_recall@20`` is the
            share of the exact top-20 that the approximate path returns (target: >= 0.95 at
            <= 1 ms/user on 384k songs; batch >= 3x faster than implicit at equal recall).
serve       ``deepcuts serve --model-file`` on the saved model (with its index), 50 concurrent
            keep-alive clients asking ``/users/{u}/recommendations?n=10&depth=0.5`` (the
            discovery knob on); p99 and the server's peak RSS (VmHWM; target p99 <= 20 ms,
            RSS <= 4 GiB). ``--serve-workers 1 2`` measures one process, then ``--workers 2``
            (figures ``serve_w2_...``: the largest worker's VmHWM, and ``rss_total_mib``, the
            resident memory of the whole process tree).

Every figure is printed as ``name = value``; ``--json`` writes them (docs/scale.json holds
several scales, ``--merge``). Timings on a shared machine are noisy: the ratios are measured in
the same run. Usage::

    python benchmarks/scale.py --scale 0.01             # < 5 minutes
    python benchmarks/scale.py --scale 1 --skip als persona batch topk serve --work-dir W --json J
    python benchmarks/scale.py --scale 1 --skip generate ingest --work-dir W --json J --merge \
        --implicit-iterations 3                         # the 100% run in two parts
    python benchmarks/scale.py --scale 0.1 --json docs/scale.json --merge
    python benchmarks/scale.py --plot docs/scale.json   # docs/img/scale.png
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
GIB = 1 << 30
MIB = 1 << 20


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _hwm() -> int:
    """The process's peak RSS since the last :func:`_reset_peak` (``VmHWM``), bytes."""
    kib = _status_kib("self", "VmHWM")
    return kib * 1024 if kib else _peak()  # _peak: no /proc


def _reset_peak() -> int:
    """Return freed heap to the system, reset the peak RSS and return the RSS now, so that
    ``_hwm() - _reset_peak()`` is the peak memory of what runs in between."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5": reset VmHWM to the current RSS
            fh.write("5")
    except OSError:  # pragma: no cover - not Linux: the peak then counts from the start
        print("# could not reset the peak RSS; ALS memory figures are too high", file=sys.stderr)
    return _rss()


# --------------------------------------------------------------------------- worker steps


def step_generate(task: dict) -> dict:
    from deepcuts.data import generate_listening, taste_profile_shape

    t0 = time.perf_counter()
    kw = taste_profile_shape(task["scale"])
    if task.get("catalogue_scale"):  # e.g. the full 384k-song catalogue with fewer users
        kw["n_items"] = taste_profile_shape(task["catalogue_scale"])["n_items"]
    d = generate_listening(**kw, random_state=task["seed"])
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    trip, mapping = d.write_taste_profile(task["dir"])
    x = d.interactions
    return {
        "n_users": x.n_users,
        "n_items": x.n_items,
        "nnz": x.nnz,
        "generate_s": gen_s,
        "write_s": time.perf_counter() - t0,
        "generate_peak_rss_mib": _peak() / MIB,
        "file_mib": Path(trip).stat().st_size / MIB,
    }


def _load_matrix(d: Path):
    import scipy.sparse as sp

    from deepcuts.data.idmap import IdMap
    from deepcuts.data.interactions import Interactions

    m = sp.load_npz(d / "matrix.npz").tocsr()
    users = IdMap(np.load(d / "users.npy"), name="user")
    items = IdMap(np.load(d / "items.npy"), name="item")
    return Interactions(m, users, items)


def step_ingest(task: dict) -> dict:
    import scipy.sparse as sp

    from deepcuts.data import read_msd_taste_profile

    d = Path(task["dir"])
    before = _rss()
    t0 = time.perf_counter()
    x = read_msd_taste_profile(d / "train_triplets.txt", d / "song_artist.csv", level="track",
                               show_progress=True)  # fmt: skip
    dt = time.perf_counter() - t0
    n_lines = int(x.meta.get("n_lines", x.nnz))
    out = {
        "ingest_lines": n_lines,
        "ingest_s": dt,
        "ingest_lines_per_s": n_lines / dt,
        "ingest_peak_rss_mib": _peak() / MIB,
        "ingest_rss_before_mib": before / MIB,
    }
    sp.save_npz(d / "matrix.npz", x.matrix, compressed=False)
    np.save(d / "users.npy", x.user_map.ids.astype(str))
    np.save(d / "items.npy", x.item_map.ids.astype(str))
    return out


def step_als(task: dict) -> dict:
    from threadpoolctl import threadpool_limits

    d = Path(task["dir"])
    x = _load_matrix(d)
    f, iters = 64, task["iterations"]
    with threadpool_limits(1, "blas"):
        if task["library"] == "deepcuts":
            from deepcuts.models import ALS

            def make(n):
                return ALS(factors=f, iterations=n, regularization=0.01, reg_scaling="activity",
                           alpha=1.0, weighting="log", cg_steps=3, random_state=0, ann=False)  # fmt: skip

            from deepcuts.testing import planted_blocks

            make(1).fit(planted_blocks(200, 100, 4, random_state=0))  # warm-up: numba's cache
            model = make(iters)
            model.set_params(show_progress=True)
            before = _reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(x)
            fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            peak = _hwm()
            model.save(d / "model_exact")
            t0 = time.perf_counter()
            model.set_params(ann=True)
            model.item_index()
            ann_build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.save(d / "model")
            extra = {"ann_build_s": ann_build_s, "save_als_s": time.perf_counter() - t0}
            _sample_top20(model, d / "model_sample_top20.npy")
        else:
            import scipy.sparse as sp
            from implicit.cpu.als import AlternatingLeastSquares

            def confidence(m):
                # 1 + log(1 + plays) as implicit's input: new values (4 bytes per pair), the
                # structure shared with the counts: the least a caller can allocate
                data = np.log1p(m.data, dtype=np.float32)
                data += np.float32(1.0)
                return sp.csr_matrix((data, m.indices, m.indptr), shape=m.shape)

            def make(n):
                m = AlternatingLeastSquares(factors=f, iterations=n, regularization=0.01,
                                            alpha=1.0, use_cg=True, calculate_training_loss=False,
                                            num_threads=0, random_state=0)  # fmt: skip
                m.cg_steps = 3
                return m

            make(1).fit(confidence(x.matrix[: min(x.n_users, 2000)]), show_progress=False)
            iters = task.get("implicit_iterations") or iters  # s/iter is the figure
            model = make(iters)
            before = _reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            c = confidence(x.matrix)
            model.fit(c, show_progress=True)
            fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            peak = _hwm()
            extra = {"als_implicit_iterations": iters}
    lib = task["library"]
    return {
        f"als_{lib}_s_per_iter": fit_s / iters,
        f"als_{lib}_cpu_s_per_iter": cpu_s / iters,
        f"als_{lib}_peak_mib": (peak - before) / MIB,
        **extra,
    }


SAMPLE_USERS = 500


def _sample_top20(model, path: Path) -> None:
    """Top-20 of a seeded sample of users under ``model``: written to ``path`` (the reference
    the loaded model must reproduce) and timed."""
    x = model.interactions_
    users = np.sort(np.random.default_rng(1).choice(x.n_users, min(SAMPLE_USERS, x.n_users),
                                                    replace=False))  # fmt: skip
    idx = np.concatenate([model.rank_index(users[s : s + 100], x.matrix[users[s : s + 100]], 20)[0]
                          for s in range(0, len(users), 100)])  # fmt: skip
    np.save(path, np.column_stack([users, idx]).astype(np.int64))


def _check_top20(model, path: Path) -> bool:
    """Whether ``model`` gives the top-20 lists :func:`_sample_top20` wrote (same sample)."""
    ref = np.load(path)
    users, want = ref[:, 0], ref[:, 1:]
    x = model.interactions_
    got = np.concatenate([model.rank_index(users[s : s + 100], x.matrix[users[s : s + 100]], 20)[0]
                          for s in range(0, len(users), 100)])  # fmt: skip
    return bool(np.array_equal(got, want))


def _model_mib(path: Path) -> float:
    return sum(Path(f"{path}{e}").stat().st_size for e in (".npz", ".json")) / MIB


def step_persona(task: dict) -> dict:
    """The default persona model (``deepcuts train --model persona``: :class:`PostHocPersonas`)
    on the saved ALS's item space, as the demo and the service build it (no second ALS fit);
    then save and load both models and check the loaded ones rank as the saved ones did."""
    from threadpoolctl import threadpool_limits

    from deepcuts.models import PostHocPersonas, load_model
    from deepcuts.models._registry import MODELS

    assert MODELS["persona"] is PostHocPersonas  # the registry's default persona model
    d = Path(task["dir"])
    t0 = time.perf_counter()
    als = load_model(d / "model")
    out = {"load_als_s": time.perf_counter() - t0, "als_model_mib": _model_mib(d / "model"),
           "als_has_index": bool(als.get_params().get("ann")) and als.item_index() is not None,
           "saveload_als_identical": _check_top20(als, d / "model_sample_top20.npy")}  # fmt: skip
    with threadpool_limits(1, "blas"):
        before = _reset_peak()
        t0 = time.perf_counter()
        pm = PostHocPersonas.from_model(als, show_progress=True)
        fit_s = time.perf_counter() - t0
        peak = _hwm()
    out.update({"persona_fit_s": fit_s, "persona_peak_mib": (peak - before) / MIB,
                "personas_per_user": float(pm.user_n_personas_.mean()),
                "persona_max": int(pm.user_n_personas_.max())})  # fmt: skip
    del als
    _sample_top20(pm, d / "persona_sample_top20.npy")
    t0 = time.perf_counter()
    pm.save(d / "persona")
    out["save_persona_s"] = time.perf_counter() - t0
    del pm
    t0 = time.perf_counter()
    pm = load_model(d / "persona")
    out["load_persona_s"] = time.perf_counter() - t0
    out["persona_model_mib"] = _model_mib(d / "persona")
    out["saveload_persona_identical"] = _check_top20(pm, d / "persona_sample_top20.npy")
    return out


def step_batch(task: dict) -> dict:
    """Every user's top-20 unplayed songs in batch from the saved model, as it is served (its
    index on where it has one), with a progress bar; the lists go to ``top20.npy``."""
    from tqdm.auto import tqdm

    from deepcuts.models import load_model

    d = Path(task["dir"])
    model = load_model(d / "model")
    x = model.interactions_
    n, bs, k = x.n_users, 1024, 20
    out = np.full((n, k), -1, np.int32)
    model.rank_index(np.arange(8), x.matrix[:8], k)  # warm-up
    t0 = time.perf_counter()
    for s in tqdm(range(0, n, bs), desc="top-20 all users", unit="batch", mininterval=5):
        u = np.arange(s, min(s + bs, n))
        out[s : s + len(u)] = model.rank_index(u, x.matrix[s : s + len(u)], k)[0]
    dt = time.perf_counter() - t0
    np.save(d / "top20.npy", out)
    return {"batch_all_users": n, "batch_all_s": dt, "batch_all_ms_per_user": dt / n * 1e3,
            "batch_all_ann": bool(model.get_params().get("ann")),
            "batch_all_full_lists": float((out >= 0).all(axis=1).mean())}  # fmt: skip


def step_topk(task: dict) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from deepcuts.models import load_model

    d = Path(task["dir"])
    model = load_model(d / "model")
    x = model.interactions_
    rng = np.random.default_rng(0)
    n_users = x.n_users
    users = np.arange(n_users)
    if 0 < task["topk_users"] < n_users:  # 0: every user
        users = np.sort(rng.choice(n_users, task["topk_users"], replace=False))
    ui = x.matrix[users]
    k = 20
    out = {"topk_users": len(users)}

    imp = AlternatingLeastSquares(factors=model.factors, num_threads=0)
    imp.user_factors = model.user_factors_
    imp.item_factors = model.item_factors_
    imp.recommend(users[:10], ui[:10], N=k)  # warm-up
    t0 = time.perf_counter()
    imp_idx, _ = imp.recommend(users, ui, N=k, filter_already_liked_items=True)
    t_imp = time.perf_counter() - t0

    def batched(m, bs):
        parts = []
        for s in range(0, len(users), bs):
            parts.append(m.rank_index(users[s : s + bs], ui[s : s + bs], k)[0])
        return np.concatenate(parts)

    with threadpool_limits(None, "blas"):  # exact scoring is one GEMM per block: let BLAS use cores
        model.set_params(ann=False)
        model.rank_index(users[:8], ui[:8], k)  # warm-up
        t0 = time.perf_counter()
        exact = batched(model, 256)
        t_exact = time.perf_counter() - t0
    model.set_params(ann=True)
    index = model.item_index()
    model.rank_index(users[:8], ui[:8], k)  # warm-up
    t0 = time.perf_counter()
    approx = batched(model, 1024)
    t_ann = time.perf_counter() - t0
    # one user per call, as the service asks
    single = users[rng.choice(len(users), min(300, len(users)), replace=False)]
    t0 = time.perf_counter()
    for u in single:
        model.rank_index(np.array([u]), x.matrix[u : u + 1], k)
    t_single = (time.perf_counter() - t0) / len(single)

    def recall(a, b):
        hits = [len(np.intersect1d(p[p >= 0], q[q >= 0])) / max((q >= 0).sum(), 1)
                for p, q in zip(a, b)]  # fmt: skip
        return float(np.mean(hits))

    out.update(
        {
            "topk_implicit_ms_per_user": t_imp / len(users) * 1e3,
            "topk_exact_ms_per_user": t_exact / len(users) * 1e3,
            "topk_ann_ms_per_user": t_ann / len(users) * 1e3,
            "ann_single_ms_per_user": t_single * 1e3,
            "implicit_recall@20": recall(imp_idx, exact),
            "ann_recall@20": recall(approx, exact),
            "ann_nlist": index.nlist_,
            "ann_nprobe": index.nprobe_,
            "topk_speedup_exact_vs_implicit": t_imp / t_exact,
            "topk_speedup_ann_vs_implicit": t_imp / t_ann,
        }
    )
    return out


def step_serve(task: dict) -> dict:
    """``deepcuts serve`` with each worker count of ``--serve-workers`` in turn (figures of the
    first count unprefixed, the others as ``serve_w{N}_...``)."""
    out = {}
    for k, workers in enumerate(task.get("serve_workers") or [1]):
        res = _serve_once(task, int(workers))
        prefix = "serve_" if k == 0 else f"serve_w{int(workers)}_"
        out.update({prefix + name: v for name, v in res.items()})
    return out


def _status_kib(pid: int | str, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (``pid`` may be "self"); 0 when it is not there."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _serve_once(task: dict, workers: int) -> dict:
    import asyncio
    import urllib.parse

    sys.path.insert(0, str(HERE))
    import serve_latency as sl

    from deepcuts.models._ann import resolve_ann

    d = Path(task["dir"])
    data_dir = Path(tempfile.mkdtemp(prefix="deepcuts-scale-serve-"))
    port = sl.free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(data_dir),
           "--port", str(port), "--no-seed", "--model-file", str(d / "model"),
           "--workers", str(workers)]  # fmt: skip
    t0 = time.time()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://{sl.HOST}:{port}"
    try:
        ready: set = set()  # worker pids that answered /health ready with the model
        while len(ready) < workers:
            if server.poll() is not None:
                raise SystemExit(server.stdout.read().decode()[-3000:])
            try:
                health = sl._get(base + "/health")
                if health.get("model") and health.get("ready", True):
                    ready.add((health.get("worker") or {}).get("pid", 0))
            except OSError:
                pass
            time.sleep(0.1)
        startup = time.time() - t0
        rng = np.random.default_rng(0)
        ids = np.load(d / "users.npy")
        pool = [str(u) for u in ids[rng.choice(len(ids), min(2000, len(ids)), replace=False)]]
        prng = __import__("random").Random(0)
        # a first request per path loads lazily built state (the index is saved: not rebuilt)
        for _ in range(4 * workers):
            sl._get(f"{base}/users/{urllib.parse.quote(pool[0])}/recommendations?n=10&depth=0.5")
        results = {}
        client = "wrk" if shutil.which("wrk") else "python"  # wrk: a few % of a core
        workdir = Path(tempfile.mkdtemp(prefix="deepcuts-scale-wrk-"))
        for name, suffix in (("plain", "/recommendations?n=10"),
                             ("depth", "/recommendations?n=10&depth=0.5")):  # fmt: skip
            meter = sl.CpuMeter(server.pid, client)
            if client == "wrk":
                results[name] = sl.wrk_closed_loop(
                    port, pool, "/users/", suffix, task["clients"], meter,
                    seconds=task["seconds"], warmup_s=2.0, seed=len(results), workdir=workdir,
                )  # fmt: skip
            else:
                results[name] = asyncio.run(
                    sl.closed_loop(
                        port,
                        lambda s=suffix: f"/users/{urllib.parse.quote(prng.choice(pool))}{s}",
                        task["clients"], meter, requests=task["requests"], warmup_s=2.0,
                    )
                )  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)
        # peak RSS of each serving process (VmHWM; with workers: the largest worker's), and
        # the whole tree's resident memory now
        pids = sl.tree_pids(server.pid) or [server.pid]
        serving = pids[1:] if workers > 1 else pids[:1]
        hwm = max(_status_kib(p, "VmHWM") for p in serving) * 1024
        total = sum(_status_kib(p, "VmRSS") for p in pids) * 1024
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "workers": workers,
        "startup_s": startup,
        "p99_ms": results["plain"]["p99_ms"],
        "depth_p99_ms": results["depth"]["p99_ms"],
        "depth_p50_ms": results["depth"]["p50_ms"],
        "depth_rps": results["depth"]["throughput_rps"],
        # the server's CPU per request (the client runs apart): what the machine's load leaves
        # of a core decides the p99, this does not depend on it
        "depth_cpu_ms_per_request": _cpu_ms(results["depth"]),
        "load_average": os.getloadavg()[0],
        "errors": results["plain"]["errors"] + results["depth"]["errors"],
        "rss_mib": hwm / MIB,
        "rss_total_mib": total / MIB,
        # whether the served model searches its index: "auto" is on only above the threshold
        "ann": resolve_ann(
            health["model"]["params"].get("ann", False), int(health["model"]["n_items"])
        ),
        "client": client,
    }


def _cpu_ms(result: dict) -> float:
    cpu = result.get("server_cpu_s")
    return float("nan") if cpu is None or not result["requests"] else cpu / result["requests"] * 1e3


STEPS = {
    "generate": step_generate,
    "ingest": step_ingest,
    "als": step_als,
    "persona": step_persona,
    "batch": step_batch,
    "topk": step_topk,
    "serve": step_serve,
}


def run_step(name: str, task: dict) -> dict:
    """Run one step in a fresh Python process; return its figures (raises on failure)."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", name, json.dumps(task)],
                                stdout=stdout, stderr=subprocess.PIPE, env=env)  # fmt: skip
        tail = b""
        # the worker's progress bars and messages pass through as they come
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            tail = (tail + chunk)[-4000:]
        proc.wait()
        stdout.seek(0)
        text = stdout.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"step {name} failed:\n{tail.decode(errors='replace')}")
    return json.loads(text.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def targets(r: dict) -> dict:
    """Each issue-15 target: (value, holds)."""
    t = {}
    if "ingest_lines_per_s" in r:
        t["ingest >= 300k lines/s"] = (r["ingest_lines_per_s"], r["ingest_lines_per_s"] >= 3e5)
        t["ingest peak RSS <= 4 GiB"] = (r["ingest_peak_rss_mib"], r["ingest_peak_rss_mib"] <= 4096)
    if "als_time_ratio" in r:
        t["ALS s/iter <= 0.5x implicit"] = (r["als_time_ratio"], r["als_time_ratio"] <= 0.5)
        t["ALS peak memory <= implicit"] = (r["als_memory_ratio"], r["als_memory_ratio"] <= 1.0)
    if "topk_speedup_ann_vs_implicit" in r:
        best = max(r["topk_speedup_ann_vs_implicit"], r["topk_speedup_exact_vs_implicit"])
        t["batch top-20 >= 3x implicit"] = (best, best >= 3)
        ok = r["ann_recall@20"] >= 0.95 and r["ann_single_ms_per_user"] <= 1.0
        t["ANN recall@20 >= 0.95 at <= 1 ms/user"] = (
            (r["ann_recall@20"], r["ann_single_ms_per_user"]), ok)  # fmt: skip
    if "saveload_als_identical" in r and "saveload_persona_identical" in r:
        ok = bool(r["saveload_als_identical"] and r["saveload_persona_identical"])
        t["saved models load and rank identically"] = (ok, ok)
    if "serve_depth_p99_ms" in r:
        t["service p99 <= 20 ms (depth knob)"] = (r["serve_depth_p99_ms"],
                                                  r["serve_depth_p99_ms"] <= 20)  # fmt: skip
        t["serving RSS <= 4 GiB"] = (r["serve_rss_mib"], r["serve_rss_mib"] <= 4096)
    for w in (2, 3, 4):
        if f"serve_w{w}_depth_p99_ms" in r:
            v, rss = r[f"serve_w{w}_depth_p99_ms"], r[f"serve_w{w}_rss_mib"]
            t[f"service p99 <= 20 ms (depth knob), {w} workers"] = (v, v <= 20)
            t[f"serving RSS <= 4 GiB per process, {w} workers"] = (rss, rss <= 4096)
    return t


def run(scale: float, args) -> dict:
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="deepcuts-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    task = {"scale": scale, "seed": args.seed, "dir": str(work), "iterations": args.iterations,
            "topk_users": args.topk_users, "clients": args.clients,
            "requests": args.requests, "seconds": args.seconds,
            "catalogue_scale": args.catalogue_scale, "serve_workers": args.serve_workers,
            "implicit_iterations": args.implicit_iterations}  # fmt: skip
    r: dict = {"scale": scale, "catalogue_scale": args.catalogue_scale or scale}
    t_all = time.perf_counter()
    steps = [s for s in STEPS if s not in args.skip]
    try:
        for s in steps:
            t0 = time.perf_counter()
            if s == "als":
                # alternating repeats, the best time of each library: on a shared machine a
                # neighbour's burst during one library's fit skews a single pair of runs
                best: dict = {}
                for _ in range(max(1, args.als_repeats)):
                    for lib in ("deepcuts", "implicit"):
                        for k, v in run_step(s, {**task, "library": lib}).items():
                            keep = max if k.endswith("_peak_mib") else min
                            best[k] = keep(best.get(k, v), v)
                r.update(best)
                r["als_repeats"] = max(1, args.als_repeats)
                r["als_time_ratio"] = r["als_deepcuts_s_per_iter"] / r["als_implicit_s_per_iter"]
                r["als_cpu_time_ratio"] = (
                    r["als_deepcuts_cpu_s_per_iter"] / r["als_implicit_cpu_s_per_iter"]
                )
                r["als_memory_ratio"] = r["als_deepcuts_peak_mib"] / max(
                    r["als_implicit_peak_mib"], 1e-9
                )
            else:
                r.update(run_step(s, task))
            r[f"step_{s}_s"] = time.perf_counter() - t0
            print(f"# {s} done in {r[f'step_{s}_s']:.1f} s", file=sys.stderr, flush=True)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    r["total_s"] = time.perf_counter() - t_all
    return r


def plot(path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in json.loads(path.read_text())["runs"]
            if r.get("catalogue_scale", r["scale"]) == r["scale"]]  # fmt: skip
    runs = sorted(runs, key=lambda r: r["scale"])
    s = [r["scale"] * 100 for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("ingest_s", "ingest"), ("step_generate_s", "generate + write")):
        a.plot(s, [r.get(key, np.nan) for r in runs], "o-", label=label)
    a.plot(s, [r.get("als_deepcuts_s_per_iter", np.nan) * 15 for r in runs], "o-",
           label="deepcuts ALS, 15 it")  # fmt: skip
    a.plot(s, [r.get("als_implicit_s_per_iter", np.nan) * 15 for r in runs], "o--",
           label="implicit ALS, 15 it")  # fmt: skip
    a.plot(s, [r.get("topk_ann_ms_per_user", np.nan) * r["n_users"] / 1e3 for r in runs], "o-",
           label="top-20 all users, ANN")  # fmt: skip
    a.plot(s, [r.get("topk_implicit_ms_per_user", np.nan) * r["n_users"] / 1e3 for r in runs],
           "o--", label="top-20 all users, implicit")  # fmt: skip
    a.plot(s, [r.get("batch_all_s", np.nan) for r in runs], "s-",
           label="top-20 all users, measured (saved model)")  # fmt: skip
    a.plot(s, [r.get("persona_fit_s", np.nan) for r in runs], "o-", label="persona fit")
    a.set(xscale="log", yscale="log", xlabel="% of the Taste Profile's shape", ylabel="seconds",
          title="time")  # fmt: skip
    a.legend(fontsize=7, loc="upper left")
    for key, label, style in (("ingest_peak_rss_mib", "ingest peak RSS", "o-"),
                              ("als_deepcuts_peak_mib", "deepcuts ALS fit", "o-"),
                              ("als_implicit_peak_mib", "implicit ALS fit", "o--"),
                              ("persona_peak_mib", "persona fit", "o-"),
                              ("serve_rss_mib", "serving RSS", "o-")):  # fmt: skip
        b.plot(s, [r.get(key, np.nan) for r in runs], style, label=label)
    b.axhline(4096, color="grey", lw=0.8, ls=":")
    b.text(s[0], 4096 * 1.05, "4 GiB target", fontsize=8, color="grey")
    b.set(xscale="log", yscale="log", xlabel="% of the Taste Profile's shape", ylabel="MiB",
          title="memory")  # fmt: skip
    b.legend(fontsize=8)
    for ax in (a, b):  # join the measured points across scales where a step was not run
        for line in ax.get_lines():
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            if len(x) == len(s):
                line.set_data(x[np.isfinite(y)], y[np.isfinite(y)])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=0.01, help="share of the Taste Profile (0.01)")
    p.add_argument("--catalogue-scale", type=float, default=None,
                   help="songs at this share of the Taste Profile instead (users: --scale)")  # fmt: skip
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--als-repeats", type=int, default=1,
                   help="ALS fits per library, alternating; the fastest of each is reported")  # fmt: skip
    p.add_argument("--topk-users", type=int, default=20000,
                   help="users ranked in the top-k comparison (0 or fewer users: all; the "
                        "batch step ranks every user)")  # fmt: skip
    p.add_argument("--implicit-iterations", type=int, default=None,
                   help="iterations timed for implicit's ALS (default --iterations; "
                        "seconds per iteration is the figure)")  # fmt: skip
    p.add_argument("--clients", type=int, default=50)
    p.add_argument(
        "--serve-workers",
        type=int,
        nargs="+",
        default=[1],
        help="serve with each of these worker counts in turn (default 1)",
    )
    p.add_argument("--requests", type=int, default=3000,
                   help="requests per serving phase (python client)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=8, help="seconds per serving phase (wrk)")
    p.add_argument("--skip", nargs="*", default=[], choices=list(STEPS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", help="keep the generated files and models here")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--merge", action="store_true",
                   help="add this scale to --json's runs (the figures of --skip'ped steps are "
                        "kept from the earlier run of the same scale)")  # fmt: skip
    p.add_argument("--plot", help="only draw docs/img/scale.png from this JSON file")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        name, task = args.worker
        print(json.dumps(STEPS[name](json.loads(task))))
        return 0
    if args.plot:
        plot(Path(args.plot), HERE.parent / "docs" / "img" / "scale.png")
        return 0
    r = run(args.scale, args)
    for k, v in r.items():
        print(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}")
    for name, (value, ok) in targets(r).items():
        print(f"target {name}: {'holds' if ok else 'does NOT hold'} ({value})")
    if args.json:
        path = Path(args.json)
        runs = []
        if args.merge and path.exists():
            runs = json.loads(path.read_text())["runs"]

            def shape(x):
                return x["scale"], x.get("catalogue_scale") or x["scale"]

            same = [x for x in runs if shape(x) == shape(r)]
            runs = [x for x in runs if shape(x) != shape(r)]
            if same:  # steps skipped this time keep their figures from the previous run
                kept = {k: v for x in same for k, v in x.items()}  # the last one wins
                kept = {k: v for k, v in kept.items() if k not in r and k != "earlier_steps"}
                r = {**kept, **r}
                if args.skip:
                    r["earlier_steps"] = sorted(args.skip)
        import platform

        doc = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "runs": sorted(runs + [r], key=lambda x: x["scale"]),
        }
        path.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
