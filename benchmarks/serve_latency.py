"""Latency and throughput of ``GET /users/{user}/recommendations`` under 50 concurrent clients.

Starts ``deepcuts serve`` (ALS on the bundled Last.fm 2K, SQLite) in a subprocess on the
loopback interface (``--workers N`` server processes when N > 1), then drives it with one of
two load generators:

``wrk``     the C load generator (``apt install wrk``), one thread; a generated Lua script picks
            a random user per request and prints the results from its ``done`` hook. Used for
            the closed-loop phases when it is installed (``--client auto``, the default).
``python``  light asyncio HTTP/1.1 keep-alive clients in this process (no HTTP library in the
            measuring loop). Always used for the open-loop and retrain phases.

On a small machine the client matters: the Python clients use a large share of the cores the
server needs, wrk a few per cent. The table reports the CPU seconds of the server's process
tree (server and its children, from ``/proc``) and of the client for every phase.

Closed-loop phases are measured in steady state: all connections are opened first, then an
unmeasured warm-up runs (``--warmup`` seconds; python: at least 3 requests per connection on
the same connections; wrk: a separate run, and the measured run waits 0.5 s after connecting
before its first request so every connection has been accepted by the idle server). A new
connection's first request on a saturated server can wait up to ~1 s to be read, which
otherwise dominates p99.

Phases
------
anchor      ``GET /health`` (no model work): the framework + loopback floor, same client.
recs        recommendations for random trained users, 50 clients back to back (closed loop).
recs@1      the same from a single client (no queueing: the service time).
recs+knob   the same as recs with ``rarity=0.5`` (the rarity re-ranker).
folded      users created after training (their stored history is folded in per request).
open        recommendations at a fixed arrival rate over 50 connections (open loop; latency
            counted from the scheduled send time, so queueing is included).
retrain     closed-loop recommendations while a retrain job runs in the server.

The target is p99 <= 20 ms for ``recs``. ``ratio`` = phase p99 / anchor p99, so a slow,
shared machine shows up in both numbers. Run:

    python benchmarks/serve_latency.py [--workers 2] [--client wrk] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
WRK_CONNECT_PAUSE_S = 0.5  # idle pause between wrk's connects and its first request


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- CPU accounting


def _proc_table() -> dict[int, tuple[int, int]] | None:
    """``pid -> (parent pid, CPU clock ticks)`` of every live process (Linux /proc; None
    without it). The ticks are utime + stime + cutime + cstime."""
    table: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        table[int(name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def tree_pids(root: int, table: dict | None = None) -> list[int] | None:
    """``root`` and its live descendants, root first (None where /proc or ``root`` is not
    there)."""
    table = _proc_table() if table is None else table
    if table is None or root not in table:
        return None
    tree = [root]
    for pid in tree:  # grows while it is walked: breadth first
        tree.extend(c for c, (pp, _) in table.items() if pp == pid)
    return tree


def _tree_cpu_ticks(root: int) -> tuple[int, int] | None:
    """CPU clock ticks and process count of ``root`` and its live descendants (Linux /proc).

    Sums utime + stime + cutime + cstime, so children that exited and were reaped count
    through their parent's ``cutime``/``cstime``. None where /proc is not available.
    """
    table = _proc_table()
    tree = tree_pids(root, table)
    if tree is None:
        return None
    return sum(table[p][1] for p in tree), len(tree)


class CpuMeter:
    """CPU seconds of the server tree and of the client over one measured window."""

    def __init__(self, server_pid: int, client: str):
        self.server_pid = server_pid
        self.client = client  # "python": this process; "wrk": reaped child processes
        self.tick = os.sysconf("SC_CLK_TCK")

    def _now(self) -> tuple[float, float | None, float]:
        t = os.times()
        own = t.user + t.system if self.client == "python" else t.children_user + t.children_system
        tree = _tree_cpu_ticks(self.server_pid)
        return time.perf_counter(), None if tree is None else tree[0] / self.tick, own

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict:
        t1, srv1, cli1 = self._now()
        t0, srv0, cli0 = self._start
        return {
            "wall_s": round(t1 - t0, 3),
            "server_cpu_s": None if srv1 is None or srv0 is None else round(srv1 - srv0, 2),
            "client_cpu_s": round(cli1 - cli0, 2),
        }


# --------------------------------------------------------------------------- python client


async def _request(reader, writer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    data = await reader.readexactly(length) if length else b""
    return status, data


async def closed_loop(
    port: int,
    next_path,
    clients: int,
    meter: CpuMeter,
    *,
    requests: int | None = None,
    until=None,
    warmup_s: float = 2.0,
    warmup_per_conn: int = 3,
) -> dict:
    """``clients`` keep-alive connections sending ``next_path()`` back to back.

    All connections are opened first; the first ``warmup_s`` seconds (and at least
    ``warmup_per_conn`` requests on every connection) are not measured. The measured part
    ends after ``requests`` requests, or when the coroutine ``until()`` (started when the
    measurement starts) returns; its return value is stored under ``"until"``.
    """
    conns = await asyncio.gather(*(asyncio.open_connection(HOST, port) for _ in range(clients)))
    lat: list[float] = []
    errors = 0
    sent = 0
    warmed = 0  # connections that finished their warm-up requests
    t_open = time.perf_counter()
    measuring = asyncio.Event()
    finished = asyncio.Event()
    until_task = None

    def start_measuring():
        nonlocal until_task
        meter.start()
        measuring.set()
        if until is not None:
            until_task = asyncio.ensure_future(until())
            until_task.add_done_callback(lambda _: finished.set())

    async def worker(reader, writer):
        nonlocal errors, sent, warmed
        n_warm = 0
        while not measuring.is_set():
            await _request(reader, writer, "GET", next_path())
            n_warm += 1
            warmed += n_warm == warmup_per_conn
            if (
                not measuring.is_set()
                and warmed == clients
                and time.perf_counter() - t_open >= warmup_s
            ):
                start_measuring()
        while not finished.is_set():
            if requests is not None:
                if sent >= requests:
                    break
                sent += 1
            path = next_path()
            t0 = time.perf_counter()
            status, _ = await _request(reader, writer, "GET", path)
            lat.append(time.perf_counter() - t0)
            errors += not 200 <= status < 300

    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        for _, w in conns:
            w.close()
    out = meter.stop()
    out = {**_summary(lat, errors, out["wall_s"]), **out}
    if until_task is not None:
        out["until"] = until_task.result()
        out["p99_worst_500_ms"] = _worst_window_p99([x * 1000 for x in lat])
    return out


async def open_loop(
    port: int, next_path, clients: int, meter: CpuMeter, rate: float, seconds: float
) -> dict:
    """Requests scheduled at ``rate`` per second for ``seconds``, sent over ``clients``
    connections opened beforehand; latency counts from the scheduled time."""
    n = int(rate * seconds)
    conns = await asyncio.gather(*(asyncio.open_connection(HOST, port) for _ in range(clients)))
    next_i = 0
    lat: list[float] = []
    errors = 0
    meter.start()
    start = time.perf_counter() + 0.05

    async def worker(reader, writer):
        nonlocal next_i, errors
        while next_i < n:
            i = next_i
            next_i += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, _ = await _request(reader, writer, "GET", next_path())
            lat.append(time.perf_counter() - due)  # includes waiting for a connection
            errors += not 200 <= status < 300

    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        for _, w in conns:
            w.close()
    out = meter.stop()
    return {**_summary(lat, errors, out["wall_s"]), **out, "rate": rate}


def _summary(lat: list[float], errors: int, wall: float) -> dict:
    a = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "errors": int(errors),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "throughput_rps": len(lat) / wall,
    }


# --------------------------------------------------------------------------- wrk client

WRK_SCRIPT = """\
-- generated by benchmarks/serve_latency.py: GET prefix .. <random id> .. suffix
local ids = {}
for line in io.lines(%(ids_file)s) do ids[#ids + 1] = line end
local prefix, suffix = %(prefix)s, %(suffix)s
local pause_ms, connections = %(pause_ms)d, %(clients)d
math.randomseed(%(seed)d)
local paused = 0
non2xx = 0

request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)] .. suffix)
end

-- hold every connection's first request until all of them are connected and accepted
delay = function()
  paused = paused + 1
  if paused <= connections then return pause_ms end
  return 0
end

response = function(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'DEEPCUTS_WRK {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%.0f, "p90_us": %%.0f, "p99_us": %%.0f, "max_us": %%.0f}\\n',
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _lua_str(s: str) -> str:
    if not s.isascii() or not s.isprintable():
        raise ValueError(f"not a plain ASCII string for the wrk script: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_closed_loop(
    port: int,
    ids: list[str],
    prefix: str,
    suffix: str,
    clients: int,
    meter: CpuMeter,
    *,
    seconds: float,
    warmup_s: float,
    seed: int,
    workdir: Path,
) -> dict:
    """GET ``prefix + id + suffix`` for random ``ids`` with ``wrk -t1 -c<clients>``.

    One unmeasured run of ``warmup_s`` seconds, then the measured run of about ``seconds``.
    """
    ids_file = workdir / f"ids-{seed}.txt"
    ids_file.write_text("".join(urllib.parse.quote(i, safe="") + "\n" for i in ids))
    script = workdir / f"bench-{seed}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "ids_file": _lua_str(str(ids_file)),
            "prefix": _lua_str(prefix),
            "suffix": _lua_str(suffix),
            "pause_ms": int(WRK_CONNECT_PAUSE_S * 1000),
            "clients": clients,
            "seed": seed,
        }
    )

    def run(duration_s: int) -> dict:
        cmd = ["wrk", "-t1", f"-c{clients}", f"-d{duration_s}s", "--timeout", "30s"]
        cmd += ["-s", str(script), f"http://{HOST}:{port}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
        for line in proc.stdout.splitlines():
            if line.startswith("DEEPCUTS_WRK "):
                return json.loads(line.split(" ", 1)[1])
        raise RuntimeError(
            f"wrk gave no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )

    run(max(1, math.ceil(warmup_s)))  # unmeasured
    # wrk takes whole seconds; its first WRK_CONNECT_PAUSE_S are idle (connections set up)
    duration = max(1, math.ceil(seconds)) + 1
    meter.start()
    r = run(duration)
    cpu = meter.stop()
    measured_s = r["duration_us"] / 1e6 - WRK_CONNECT_PAUSE_S
    return {
        "requests": r["requests"],
        "errors": r["non2xx"] + r["socket_errors"],
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "throughput_rps": r["requests"] / measured_s,
        **cpu,
        "wall_s": round(measured_s, 3),
    }


# --------------------------------------------------------------------------- helpers


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _worst_window_p99(lat_ms: list[float], window: int = 500) -> float:
    """Highest p99 over consecutive windows of ``window`` requests (completion order)."""
    chunks = [lat_ms[i : i + window] for i in range(0, len(lat_ms), window)]
    return float(max(np.percentile(c, 99) for c in chunks if len(c) >= window // 5))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--requests", type=int, default=5000, help="requests per python closed-loop phase"
    )
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rate", type=float, default=400, help="open-loop arrival rate (req/s)")
    p.add_argument(
        "--seconds", type=float, default=10, help="open-loop and measured wrk duration (s)"
    )
    p.add_argument(
        "--warmup", type=float, default=2, help="unmeasured warm-up per closed-loop phase (s)"
    )
    p.add_argument("--workers", type=int, default=1, help="server processes (deepcuts serve)")
    p.add_argument(
        "--client",
        choices=("auto", "python", "wrk"),
        default="auto",
        help="load generator for the closed-loop phases (auto: wrk if installed)",
    )
    p.add_argument(
        "--data-dir", help="use and keep this data dir (default: a temporary one, removed)"
    )
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        p.error("--client wrk: wrk is not on PATH (Debian/Ubuntu: apt install wrk)")

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="deepcuts-bench-"))
    workdir = Path(tempfile.mkdtemp(prefix="deepcuts-bench-wrk-"))
    port = free_port()
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"  # the server's output survives if it dies
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port)]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    t0 = time.time()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    py_meter = CpuMeter(server.pid, "python")
    closed_meter = CpuMeter(server.pid, client)
    try:
        while True:
            if server.poll() is not None:
                print(server.stdout.read().decode(), file=sys.stderr)
                raise SystemExit(
                    f"the server exited (status {server.returncode}) before answering: {cmd}"
                )
            try:
                health = _get(base + "/health")
                break
            except OSError:
                time.sleep(0.25)
        # with --workers N, the first answer comes from the first worker up: wait (up to a
        # minute) until N worker pids have answered, so no worker is still loading its model
        # while the measured phases run (each /health is a new connection; any idle worker
        # may accept it)
        pids = {health.get("worker", {}).get("pid")}
        while args.workers > 1 and len(pids) < args.workers and time.time() - t0 < 60:
            pids.add(_get(base + "/health").get("worker", {}).get("pid"))
            time.sleep(0.02)
        if args.workers > 1 and len(pids) < args.workers:
            print(f"warning: only {len(pids)} of {args.workers} workers answered /health")
        startup = time.time() - t0
        model = health["model"]
        tree = _tree_cpu_ticks(server.pid)
        n_procs = "?" if tree is None else tree[1]
        print(
            f"server ready in {startup:.1f}s: model {model['id']} {model['class']} "
            f"factors={model['params'].get('factors')} on {model['n_users']} users x "
            f"{model['n_items']} artists; --workers {args.workers} ({n_procs} server "
            f"processes); {cpus} CPUs ({usable} usable); client {client}"
        )
        rng = random.Random(args.seed)
        users = _get(base + "/users?limit=1000&offset=0")["users"]
        users += _get(base + "/users?limit=1000&offset=1000")["users"]
        # new users with a few listens each: served by folding in their stored history
        artists = [it["artist"] for it in _get(base + "/users/2/recommendations?n=50")["items"]]
        folded = [f"bench-new-{k}" for k in range(50)]
        _post(
            base + "/listens/batch",
            {"listens": [{"user": u, "artist": a} for u in folded for a in rng.sample(artists, 8)]},
        )
        n = args.requests
        recs = "/recommendations?n=10"

        def random_path(pool, prefix="/users/", suffix=recs):
            return lambda: f"{prefix}{urllib.parse.quote(rng.choice(pool), safe='')}{suffix}"

        def closed(pool, prefix, suffix, clients, requests, name):
            """One closed-loop phase with the chosen client (python: ``requests`` requests)."""
            if client == "wrk":
                r = wrk_closed_loop(
                    port, pool, prefix, suffix, clients, closed_meter,
                    seconds=args.seconds, warmup_s=args.warmup,
                    seed=args.seed * 1000 + len(results), workdir=workdir,
                )  # fmt: skip
            else:
                r = asyncio.run(
                    closed_loop(
                        port, random_path(pool, prefix, suffix), clients, py_meter,
                        requests=requests, warmup_s=args.warmup,
                    )
                )  # fmt: skip
            results[name] = {"client": client, **r}

        results: dict[str, dict] = {}
        closed(["health"], "/", "", args.clients, n, "anchor")
        closed(users, "/users/", recs, args.clients, n, "recs")
        closed(users, "/users/", recs, 1, n // 5, "recs@1")
        closed(users, "/users/", recs + "&rarity=0.5", args.clients, n, "recs+knob")
        closed(folded, "/users/", recs, args.clients, n, "folded")
        results["open"] = {
            "client": "python",
            **asyncio.run(
                open_loop(port, random_path(users), args.clients, py_meter, args.rate, args.seconds)
            ),
        }

        async def retrain_job():
            await asyncio.to_thread(_post, base + "/retrain", {})
            while True:
                await asyncio.sleep(0.25)
                job = await asyncio.to_thread(_get, base + "/retrain")
                if job["status"] != "running":
                    return job

        r = asyncio.run(
            closed_loop(
                port, random_path(users), args.clients, py_meter, until=retrain_job,
                warmup_s=args.warmup,
            )
        )  # fmt: skip
        job = r.pop("until")
        r["job"] = job["status"]
        r["train_s"] = round(job["finished_at"] - job["started_at"], 2)
        results["retrain"] = {"client": "python", **r}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)

    anchor = results["anchor"]["p99_ms"]
    print(
        f"\n{args.clients} concurrent clients, loopback; server: --workers {args.workers}; "
        f"{cpus} CPUs shared by server and client; closed-loop client: {client}"
    )
    if client == "wrk":
        print(f"closed-loop phases: wrk -t1, ~{math.ceil(args.seconds) + 0.5:g} s measured each")
    else:
        print(f"closed-loop phases: {n} requests each (recs@1: {n // 5})")
    print(
        f"steady state: connections opened first and {args.warmup:g} s of unmeasured warm-up "
        "per closed-loop phase (start-up transient excluded)"
    )
    print(
        f"{'phase':10s} {'client':6s} {'reqs':>6s} {'err':>4s} {'p50 ms':>8s} {'p90 ms':>8s} "
        f"{'p99 ms':>8s} {'max ms':>8s} {'req/s':>7s} {'wall s':>6s} {'srv cpu':>7s} "
        f"{'cli cpu':>7s} {'ratio':>6s}"
    )
    for name, r in results.items():
        srv = "n/a" if r["server_cpu_s"] is None else f"{r['server_cpu_s']:.1f}"
        print(
            f"{name:10s} {r['client']:6s} {r['requests']:6d} {r['errors']:4d} "
            f"{r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.1f} "
            f"{r['throughput_rps']:7.0f} {r['wall_s']:6.1f} {srv:>7s} "
            f"{r['client_cpu_s']:7.1f} {r['p99_ms'] / anchor:6.2f}"
        )
    print(
        "ratio = phase p99 / anchor p99; srv cpu = CPU seconds of the server process tree, "
        "cli cpu = of the client, over the measured wall time"
    )
    rr = results["retrain"]
    print(
        f"retrain: job {rr['job']} in {rr['train_s']}s; {rr['errors']} failed requests "
        f"meanwhile; worst p99 over 500-request windows {rr['p99_worst_500_ms']:.1f} ms"
    )
    target = results["recs"]["p99_ms"] <= 20
    print(f"target p99 <= 20 ms for recs at {args.clients} clients: "
          f"{'met' if target else 'NOT met'} ({results['recs']['p99_ms']:.1f} ms)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "clients": args.clients,
                    "client": client,
                    "workers": args.workers,
                    "server_processes": n_procs,
                    "cpus": cpus,
                    "usable_cpus": usable,
                    "warmup_s": args.warmup,
                    "startup_s": startup,
                    "results": results,
                },
                indent=2,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
