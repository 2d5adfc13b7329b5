"""Latency and throughput of ``GET /users/{user}/recommendations`` under 50 concurrent clients.

Starts ``deepcuts serve`` (ALS on the bundled Last.fm 2K, SQLite) in a subprocess on the
loopback interface, then drives it from this process with light asyncio HTTP/1.1 keep-alive
clients (no HTTP library in the measuring loop). Load is bounded: a fixed number of requests
per closed-loop phase and a fixed rate for a fixed time in the open-loop phase.

Phases
------
anchor      ``GET /health`` (no model work): the framework + loopback floor, same clients.
recs        recommendations for random trained users, 50 clients back to back (closed loop).
recs@1      the same from a single client (no queueing: the service time).
recs+knob   the same as recs with ``rarity=0.5`` (the rarity re-ranker).
folded      users created after training (their stored history is folded in per request).
open        recommendations at a fixed arrival rate over 50 connections (open loop; latency
            counted from the scheduled send time, so queueing is included).
retrain     closed-loop recommendations while a retrain job runs in the server.

The target is p99 <= 20 ms for ``recs``. ``ratio`` = phase p99 / anchor p99, so a slow,
shared machine shows up in both numbers. Run:

    python benchmarks/serve_latency.py [--requests 5000] [--clients 50] [--rate 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _request(reader, writer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
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


async def closed_loop(port: int, paths: list[str], clients: int) -> dict:
    """``clients`` connections sending ``paths`` back to back; latency per request."""
    queue = list(reversed(paths))
    lat: list[float] = []
    errors = 0

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                path = queue.pop()
                t0 = time.perf_counter()
                status, _ = await _request(reader, writer, "GET", path)
                lat.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return _summary(lat, errors, wall)


async def open_loop(port: int, paths: list[str], clients: int, rate: float) -> dict:
    """Requests scheduled at ``rate`` per second, sent over ``clients`` connections."""
    n = len(paths)
    next_i = 0
    lat: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def worker():
        nonlocal next_i, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_i < n:
                i = next_i
                next_i += 1
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status, _ = await _request(reader, writer, "GET", paths[i])
                lat.append(time.perf_counter() - due)  # includes waiting for a connection
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return _summary(lat, errors, time.perf_counter() - start)


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


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=5000, help="requests per closed-loop phase")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rate", type=float, default=400, help="open-loop arrival rate (req/s)")
    p.add_argument("--seconds", type=float, default=10, help="open-loop duration")
    p.add_argument("--data-dir", help="reuse a data dir (default: a fresh temporary one)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="deepcuts-bench-"))
    port = free_port()
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port)]
    t0 = time.time()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                print(server.stdout.read().decode(), file=sys.stderr)
                raise SystemExit("the server exited before answering")
            try:
                health = _get(base + "/health")
                break
            except OSError:
                time.sleep(0.25)
        startup = time.time() - t0
        model = health["model"]
        print(
            f"server ready in {startup:.1f}s: model {model['id']} {model['class']} "
            f"factors={model['params'].get('factors')} on {model['n_users']} users x "
            f"{model['n_items']} artists; {os.cpu_count()} CPUs"
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

        def rec_paths(pool, extra=""):
            return [f"/users/{rng.choice(pool)}/recommendations?n=10{extra}" for _ in range(n)]

        results: dict[str, dict] = {}
        asyncio.run(closed_loop(port, rec_paths(users)[:500], args.clients))  # warm-up
        results["anchor"] = asyncio.run(closed_loop(port, ["/health"] * n, args.clients))
        results["recs"] = asyncio.run(closed_loop(port, rec_paths(users), args.clients))
        results["recs@1"] = asyncio.run(closed_loop(port, rec_paths(users)[: n // 5], 1))
        results["recs+knob"] = asyncio.run(
            closed_loop(port, rec_paths(users, "&rarity=0.5"), args.clients)
        )
        results["folded"] = asyncio.run(closed_loop(port, rec_paths(folded), args.clients))
        n_open = int(args.rate * args.seconds)
        results["open"] = asyncio.run(
            open_loop(port, rec_paths(users)[:n_open] * 1, args.clients, args.rate)
        )
        results["open"]["rate"] = args.rate
        job = _post(base + "/retrain", {})
        during: list[dict] = []
        while True:
            during.append(asyncio.run(closed_loop(port, rec_paths(users)[:500], args.clients)))
            if _get(base + "/retrain")["status"] != "running":
                break
        job = _get(base + "/retrain")
        lat_all = {
            "requests": sum(d["requests"] for d in during),
            "errors": sum(d["errors"] for d in during),
            "p50_ms": float(np.median([d["p50_ms"] for d in during])),
            "p99_ms": float(max(d["p99_ms"] for d in during)),
            "max_ms": float(max(d["max_ms"] for d in during)),
            "throughput_rps": float(np.mean([d["throughput_rps"] for d in during])),
            "job": job["status"],
            "train_s": round(job["finished_at"] - job["started_at"], 2),
        }
        results["retrain"] = lat_all
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()

    anchor = results["anchor"]["p99_ms"]
    print(f"\n{args.clients} concurrent clients, loopback, {n} requests per closed-loop phase")
    print(f"{'phase':10s} {'reqs':>6s} {'err':>4s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'max ms':>8s} {'req/s':>8s} {'p99/anchor':>10s}")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:10s} {r['requests']:6d} {r['errors']:4d} {r['p50_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {r['max_ms']:8.1f} {r['throughput_rps']:8.0f} "
            f"{r['p99_ms'] / anchor:10.2f}"
        )
    rr = results["retrain"]
    print(f"retrain: job {rr['job']} in {rr['train_s']}s; {rr['errors']} failed requests meanwhile")
    target = results["recs"]["p99_ms"] <= 20
    print(f"target p99 <= 20 ms for recs at {args.clients} clients: "
          f"{'met' if target else 'NOT met'} ({results['recs']['p99_ms']:.1f} ms)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "clients": args.clients,
                    "cpus": os.cpu_count(),
                    "startup_s": startup,
                    "results": results,
                },
                indent=2,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
