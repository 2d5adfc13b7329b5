"""Single-listen writes at 50 clients: acknowledged POSTs per second, latency, and kill -9.

A ``deepcuts serve`` process (SQLite, a small generated dataset, the popularity model) on
127.0.0.1 gets ``--clients`` keep-alive HTTP/1.1 connections, each posting one listen at a
time and waiting for its answer (closed loop), for ``--seconds``:

* ``POST /listens``: group commit (``deepcuts.serving._writes``): the posts that arrive while
  a transaction is written share the next one;
* the anchor, in the same run: the same single listens through ``POST /listens/batch`` (one
  transaction per request, what ``POST /listens`` did before).

Every listen carries a unique ``(user, listened_at)``; after each phase the database is read
back and every acknowledged listen must be in it. The kill -9 phase posts at full rate, kills
the server with SIGKILL after ``--kill-after`` seconds, and then reads the database: every
acknowledged listen must be stored (``lost = 0``).

What limits the number: the CPU time of the server's processes, of this client (a raw asyncio
HTTP/1.1 keep-alive client, no HTTP library) and of everything else on the machine is measured
over each phase (``*_cpu_cores``: cores busy on average; ``server_us_per_post``), with the load
average, so a run on a busy machine says so.

Run: ``PYTHONPATH=src python benchmarks/write_load.py [--clients 50] [--seconds 10]``.
Prints ``name = value`` lines and writes docs/write_load.json. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _prepare(data_dir: Path) -> None:
    from deepcuts.data import generate_listening
    from deepcuts.serving.store import Store, default_url

    x = generate_listening(300, 120, random_state=0).interactions
    coo = x.matrix.tocoo()
    import pandas as pd

    plays = pd.DataFrame(
        {
            "user": x.user_map.external(coo.row).astype(str),
            "item": x.item_map.external(coo.col).astype(str),
            "count": coo.data.astype(float),
        }
    )
    store = Store(default_url(data_dir))
    store.import_play_counts(plays)
    store.close()


def _start(data_dir: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(data_dir),
           "--no-seed", "--model", "popularity", "--host", HOST, "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def _session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of every process of session ``sid`` (the server and its
    workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended
            continue
        if int(fields[3]) == sid:  # fields[3] is the session id (field 6 of stat)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _machine_busy() -> float:
    """CPU seconds all cores of the machine spent busy so far (``/proc/stat``)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle, iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def _client(port, path, c, stop_at, acked, lat, seq0):
    reader, writer = await asyncio.open_connection(HOST, port)
    seq = seq0
    try:
        while time.perf_counter() < stop_at:
            seq += 1
            listen = {"user": f"w{c}", "artist": f"Artist {seq % 40}", "listened_at": seq}
            body = json.dumps({"listens": [listen]} if path.endswith("batch") else listen)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            t = time.perf_counter()
            writer.write(head.encode() + body.encode())
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
            headers = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in headers.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            await reader.readexactly(n)
            if b" 201 " in status_line:
                lat.append(time.perf_counter() - t)
                acked.append((f"w{c}", seq))
            else:
                raise RuntimeError(f"unexpected answer {status_line!r}")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the server was killed
    finally:
        writer.close()


async def _load(port, path, clients, seconds, seq0=0):
    acked: list = []
    lat: list = []
    stop_at = time.perf_counter() + seconds
    t = time.perf_counter()
    await asyncio.gather(
        *(_client(port, path, c, stop_at, acked, lat, seq0) for c in range(clients))
    )
    return acked, np.array(lat), time.perf_counter() - t


def _phase(name, proc, data_dir, port, path, clients, seconds, out, seq0):
    asyncio.run(_load(port, path, clients, 1.0, seq0=seq0 + 10**6))  # warm-up
    server0, client0, busy0 = _session_cpu(proc.pid), time.process_time(), _machine_busy()
    acked, lat, dt = asyncio.run(_load(port, path, clients, seconds, seq0=seq0))
    server = (_session_cpu(proc.pid) - server0) / dt
    client = (time.process_time() - client0) / dt
    others = max(0.0, (_machine_busy() - busy0) / dt - server - client)
    out[f"{name}_per_s"] = len(acked) / dt
    out[f"{name}_p50_ms"] = float(np.percentile(lat, 50) * 1e3)
    out[f"{name}_p99_ms"] = float(np.percentile(lat, 99) * 1e3)
    out[f"{name}_server_cpu_cores"] = server
    out[f"{name}_client_cpu_cores"] = client
    out[f"{name}_others_cpu_cores"] = others
    out[f"{name}_server_us_per_post"] = server * dt / max(len(acked), 1) * 1e6
    out[f"{name}_loadavg_1min"] = os.getloadavg()[0]
    stored = _stored(data_dir)
    out[f"{name}_lost"] = sum(1 for a in acked if a not in stored)
    for k in ("per_s", "p50_ms", "p99_ms", "server_cpu_cores", "client_cpu_cores",
              "others_cpu_cores", "server_us_per_post", "loadavg_1min", "lost"):  # fmt: skip
        v = out[f"{name}_{k}"]
        print(f"{name}_{k} = {v:.2f}" if isinstance(v, float) else f"{name}_{k} = {v}", flush=True)


def _stored(data_dir: Path) -> set:
    import sqlite3

    con = sqlite3.connect(data_dir / "deepcuts.sqlite3")
    rows = con.execute(
        "SELECT u.external_id, l.listened_at FROM listens l JOIN users u ON u.id = l.user_id"
    ).fetchall()
    con.close()
    return set(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--kill-after", type=float, default=3.0)
    ap.add_argument("--kills", type=int, default=3, help="kill -9 rounds")
    ap.add_argument("--out", default=str(ROOT / "docs" / "write_load.json"))
    args = ap.parse_args(argv)
    out: dict = {"clients": args.clients, "workers": args.workers, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="deepcuts-write-") as tmp:
        data_dir = Path(tmp)
        _prepare(data_dir)
        port = _free_port()
        proc = _start(data_dir, port, args.workers)
        try:
            _phase("group_commit", proc, data_dir, port, "/listens", args.clients,
                   args.seconds, out, seq0=0)  # fmt: skip
            _phase("anchor_one_txn_per_post", proc, data_dir, port, "/listens/batch",
                   args.clients, args.seconds, out, seq0=5 * 10**6)  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        out["speedup_vs_anchor"] = out["group_commit_per_s"] / out["anchor_one_txn_per_post_per_s"]
        print(f"speedup_vs_anchor = {out['speedup_vs_anchor']:.2f}")
        out["target_holds"] = bool(
            out["group_commit_per_s"] >= 2000 and out["group_commit_p99_ms"] <= 50
        )
        print(f"target_2000_per_s_p99_50ms = {'holds' if out['target_holds'] else 'missed'}")
        # kill -9 under load: every acknowledged listen must be stored
        lost = acked_total = 0
        for k in range(args.kills):
            proc = _start(data_dir, port, args.workers)
            seq0 = (k + 1) * 10**7

            async def killer(proc=proc):
                await asyncio.sleep(args.kill_after)
                os.killpg(proc.pid, signal.SIGKILL) if args.workers > 1 else proc.kill()

            async def run(seq0=seq0, killer=killer):
                load = _load(port, "/listens", args.clients, args.kill_after + 5, seq0=seq0)
                res, _ = await asyncio.gather(load, killer())
                return res

            acked, _, _ = asyncio.run(run())
            proc.wait(30)
            stored = _stored(data_dir)
            lost += sum(1 for a in acked if a not in stored)
            acked_total += len(acked)
        out["kill9_rounds"] = args.kills
        out["kill9_acknowledged"] = acked_total
        out["kill9_lost"] = lost
        print(f"kill9_acknowledged = {acked_total}")
        print(f"kill9_lost = {lost}")
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    lost += out["group_commit_lost"] + out["anchor_one_txn_per_post_lost"]
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
