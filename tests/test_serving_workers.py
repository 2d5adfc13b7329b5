"""Several server processes on one database: the shared event log, services that follow it,
and ``deepcuts serve --workers 2`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from serving_helpers import free_port, planted_frames

from deepcuts.serving import _shared
from deepcuts.serving._shared import EventLog
from deepcuts.serving.service import RecommenderService, RetrainBusyError
from deepcuts.serving.store import Listen, Store, default_url

ALS_PARAMS = {"factors": 8, "iterations": 8, "regularization": 0.05, "reg_scaling": "none",
              "random_state": 0}  # fmt: skip


# ---------------------------------------------------------------------- the event log
def test_event_log_reaches_every_reader_in_order(tmp_path):
    path = tmp_path / "events.jsonl"
    a, b = EventLog.reset(path), EventLog(path)
    a.append({"kind": "x", "k": 1})
    b.append({"kind": "x", "k": 2})
    assert [e["k"] for e in a.read_new()] == [1, 2]
    assert [e["k"] for e in b.read_new()] == [1, 2]
    assert a.read_new() == [] and b.read_new() == []
    # a line being written is not read half
    with open(path, "ab") as f:
        f.write(b'{"kind": "x", "k"')
    assert a.read_new() == []
    with open(path, "ab") as f:
        f.write(b": 3}\n")
    assert [e["k"] for e in a.read_new()] == [3]
    # a new server starts an empty log
    EventLog.reset(path)
    c = EventLog(path)
    assert c.read_new() == []


def test_event_log_rotation_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_shared, "ROTATE_BYTES", 200)
    path = tmp_path / "events.jsonl"
    writer, reader = EventLog.reset(path), EventLog(path)
    got = []
    for k in range(60):
        writer.append({"kind": "x", "k": k})
        if k % 4 == 3:
            got += [e["k"] for e in reader.read_new()]
    got += [e["k"] for e in reader.read_new()]
    assert got == list(range(60))
    assert path.with_name(path.name + ".old").exists() and path.stat().st_size <= 200


def test_event_log_exclusive_blocks_other_appenders(tmp_path):
    path = tmp_path / "events.jsonl"
    a, b = EventLog.reset(path), EventLog(path)
    order = []
    with a.exclusive():
        t = threading.Thread(target=lambda: (b.append({"kind": "late"}), order.append("b")))
        t.start()
        time.sleep(0.3)
        order.append("a")
        a.append({"kind": "first"})  # re-entrant inside exclusive()
    t.join(10)
    assert order == ["a", "b"]
    assert [e["kind"] for e in a.read_new()] == ["first", "late"]


# ---------------------------------------------------------------------- two workers
@pytest.fixture()
def two_workers(tmp_path):
    url = default_url(tmp_path)
    store = Store(url)
    store.import_play_counts(*planted_frames())
    log_path = tmp_path / "serve-events.jsonl"
    EventLog.reset(log_path)

    def worker():
        svc = RecommenderService(
            Store(url),
            tmp_path,
            model="als",
            model_params=ALS_PARAMS,
            seed=False,
            events=EventLog(log_path),
        )
        svc.start()
        return svc

    a = worker()  # trains the first model
    b = worker()  # loads it from the registry
    assert a.handle.model_id == b.handle.model_id
    return a, b


def test_listens_posted_to_one_worker_reach_the_other(two_workers):
    a, b = two_workers
    assert b.recommend("u3", n=3)["source"] == "model"
    a.add_listens([Listen("w-new", f"Artist {k}") for k in (20, 21, 22)])
    a.add_listens([Listen("u3", "Artist 40")])
    # b never saw add_listens: it learns both from the log before answering
    got = b.recommend("w-new", n=4)
    assert got["source"] == "history"
    assert got["items"] == a.recommend("w-new", n=4)["items"]
    assert b.recommend("u3", n=3)["source"] == "history"
    assert not b.needs_store("u5") and not b.needs_store("u3")  # u3's history is in memory
    a.add_listens([Listen("u3", "Artist 41")])
    assert b.needs_store("u3")  # a newer listen: read it again
    assert "artist 41" not in [it["artist"] for it in b.recommend("u3", n=30)["items"]]


def test_a_retrain_on_one_worker_is_seen_and_swapped_by_the_other(two_workers):
    a, b = two_workers
    first = b.handle.model_id
    job = a.retrain()
    assert b.job()["status"] == "running" and b.job()["job"] == job["job"]
    with pytest.raises(RetrainBusyError):
        b.retrain()
    assert a.wait(120)["status"] == "done"
    assert b.job()["status"] == "done"
    deadline = time.time() + 60
    while b.handle.model_id == first and time.time() < deadline:
        time.sleep(0.05)  # b loads the new model in the background, answering meanwhile
    assert b.handle.model_id == a.handle.model_id != first
    assert b.recommend("u3", n=1)["model"] == a.handle.model_id
    # the next job number continues across workers
    assert b.retrain()["job"] == job["job"] + 1
    assert b.wait(120)["status"] == "done"


def test_a_job_of_a_vanished_worker_does_not_block_retraining(two_workers):
    a, b = two_workers
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    job = {"job": 7, "status": "running", "kind": "als", "params": {}, "model_id": None,
           "started_at": time.time(), "finished_at": None, "error": None}  # fmt: skip
    a.events.append({"kind": "job", "job": job, "pid": dead.pid})
    seen = b.job()
    assert seen["job"] == 7 and seen["status"] == "failed" and str(dead.pid) in seen["error"]
    assert b.retrain()["job"] == 8
    assert b.wait(120)["status"] == "done"


# ---------------------------------------------------------------------- the CLI
def _get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # a new connection each call
        return r.status, json.loads(r.read())


def _post(url, payload):
    req = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read())


@pytest.mark.slow
def test_serve_with_two_workers_end_to_end(tmp_path):
    port = free_port()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "deepcuts.cli", "serve", "--data-dir", str(tmp_path)]
    cmd += ["--port", str(port), "--workers", "2", "--param", "factors=8", "iterations=3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                _get(base + "/health", timeout=5)
                break
            except (OSError, urllib.error.URLError):
                assert time.time() < deadline, "the server did not start"
                time.sleep(0.5)
        pids = set()
        for _ in range(200):
            pids.add(_get(base + "/health")[1]["worker"]["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, "requests should reach both worker processes"
        assert proc.pid not in pids

        # listens posted through one connection are used by whichever worker answers next
        assert _post(base + "/listens/batch", {"listens": [
            {"user": "two-workers", "artist": a} for a in ("Radiohead", "Portishead", "Björk")
        ]})[0] == 201  # fmt: skip
        answers = [_get(base + "/users/two-workers/recommendations?n=5")[1] for _ in range(12)]
        assert {a["source"] for a in answers} == {"history"}
        assert len({json.dumps(a["items"]) for a in answers}) == 1

        first = _get(base + "/health")[1]["model"]["id"]
        assert _post(base + "/retrain", {})[0] == 202
        with pytest.raises(urllib.error.HTTPError) as busy:  # from either worker
            _post(base + "/retrain", {})
        assert busy.value.code == 409
        deadline = time.time() + 180
        while _get(base + "/retrain")[1]["status"] == "running":
            assert time.time() < deadline
            time.sleep(0.5)
        assert _get(base + "/retrain")[1]["status"] == "done"
        seen: dict[int, int] = {}
        deadline = time.time() + 60
        while (len(seen) < 2 or first in seen.values()) and time.time() < deadline:
            h = _get(base + "/health")[1]
            seen[h["worker"]["pid"]] = h["model"]["id"]
            time.sleep(0.05)
        assert len(seen) == 2 and set(seen.values()) == {first + 1}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    time.sleep(0.5)
    with pytest.raises(OSError):  # the workers are gone with the server
        _get(base + "/health", timeout=2)
