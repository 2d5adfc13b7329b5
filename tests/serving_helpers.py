"""Helpers of the serving tests: a small planted dataset, a throwaway PostgreSQL, a live server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd

N_BLOCKS, USERS_PER_BLOCK, ARTISTS_PER_BLOCK = 3, 20, 10


def planted_frames():
    """Three taste blocks: users u0..u59, artists "Artist 0".."Artist 29" with tags.

    User u (k-th of block b) played the artists of block b except the (k mod 10)-th (the one
    the model should recommend first), with counts 1..10; the second half of each block's
    artists only by even k, so artists differ in popularity (20 or 10 listeners, minus skips).
    """
    rows = []
    for b in range(N_BLOCKS):
        for k in range(USERS_PER_BLOCK):
            u = b * USERS_PER_BLOCK + k
            for j in range(ARTISTS_PER_BLOCK):
                a = b * ARTISTS_PER_BLOCK + j
                if j == k % ARTISTS_PER_BLOCK or (j >= ARTISTS_PER_BLOCK // 2 and k % 2):
                    continue
                rows.append((f"u{u}", f"artist {a}", float(1 + (u + a) % 10)))
    plays = pd.DataFrame(rows, columns=["user", "item", "count"])
    n = N_BLOCKS * ARTISTS_PER_BLOCK
    artists = pd.DataFrame(
        {
            "item": [f"artist {a}" for a in range(n)],
            "name": [f"Artist {a}" for a in range(n)],
            "tags": [[f"genre{a // ARTISTS_PER_BLOCK}", "music"] for a in range(n)],
        }
    )
    return plays, artists


def block_of(artist_key: str) -> int:
    return int(artist_key.split()[-1]) // ARTISTS_PER_BLOCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- PostgreSQL
def serve_popularity(data_dir, port: int, timeout: float = 120.0) -> subprocess.Popen:
    """Start ``deepcuts serve`` (popularity model, no seeding) on ``port``; wait for /health.

    The child gets this interpreter's ``sys.path`` so it imports the tree under test.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(data_dir),
           "--no-seed", "--model", "popularity", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
            time.sleep(0.2)


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl), trust auth on 127.0.0.1:port."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="deepcuts-pg-"))
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and runuser is missing")
            self.prefix = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, *args], check=True, capture_output=True, text=True, timeout=120
        )

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_skip_reason() -> str | None:
    bindir = postgres_bindir()
    if bindir is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
            "'postgresql' package (.ci/run does) to run this test"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as a normal user"
    try:
        import pwd

        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
    except KeyError:
        return "running as root and there is no 'postgres' user to run the server as"
    return None


# ---------------------------------------------------------------------- live server
class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def two_taste_frames():
    """Users with two tastes: user k plays block k mod 3 and block (k + 1) mod 3 (as in
    :func:`planted_frames`, each block missing one artist)."""
    plays, artists = planted_frames()
    rows = []
    for b in range(N_BLOCKS):
        for k in range(USERS_PER_BLOCK):
            u = b * USERS_PER_BLOCK + k
            for bb in (b, (b + 1) % N_BLOCKS):
                for j in range(ARTISTS_PER_BLOCK):
                    if j == (k + bb) % ARTISTS_PER_BLOCK:
                        continue
                    a = bb * ARTISTS_PER_BLOCK + j
                    rows.append((f"u{u}", f"artist {a}", float(1 + (u + a) % 10)))
    return pd.DataFrame(rows, columns=["user", "item", "count"]), artists
