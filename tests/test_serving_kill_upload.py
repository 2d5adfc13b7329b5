"""kill -9 of ``deepcuts serve`` while history uploads and single listens are being written
(issue 13, kill -9 suites): no acknowledged listen lost, no half-imported upload, and a
consistent registry after the restart."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from serving_helpers import free_port, planted_frames, serve_popularity

from deepcuts.serving.store import Store, default_url

LINES = 8_000  # per upload: about 1 MB


def _history(n: int, seed: int) -> bytes:
    rows = (
        json.dumps(
            {
                "listened_at": 1_600_000_000 + seed * 10**6 + i,
                "track_metadata": {
                    "artist_name": f"Artist {(i * 7 + seed) % 60}",
                    "track_name": f"t{i % 9}",
                },
            }
        )  # fmt: skip
        for i in range(n)
    )
    return ("\n".join(rows) + "\n").encode()


def _multipart(payload: bytes) -> tuple[bytes, str]:
    b = "deepcutsboundary7f3a"
    head = (
        f'--{b}\r\nContent-Disposition: form-data; name="format"\r\n\r\nlistenbrainz\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="h.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


@pytest.mark.slow
def test_kill_9_during_history_uploads_loses_nothing_acknowledged(tmp_path):
    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    store.close()
    port = free_port()

    def start():
        return serve_popularity(tmp_path, port)

    server = start()
    stop = threading.Event()
    acked: list[tuple[str, int]] = []  # single listens answered 201
    uploads: dict[str, str] = {}  # user -> "sent" | "stored" | "failed: ..."
    body = _history(LINES, 0)

    def poster(c):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                data = json.dumps({"user": f"p{c}", "artist": f"Artist {seq % 50}",
                                   "listened_at": seq})  # fmt: skip
                conn.request("POST", "/listens", data, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 201, r.status
                acked.append((f"p{c}", seq))
        except (OSError, http.client.HTTPException):
            pass  # the server was killed

    def uploader(k):
        i = 0
        while not stop.is_set():
            user = f"up{k}-{i}"
            i += 1
            data, ctype = _multipart(body)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            uploads[user] = "sent"
            try:
                conn.request("POST", f"/users/{user}/history", data, {"Content-Type": ctype})
                r = conn.getresponse()
                text = r.read()
                uploads[user] = "stored" if r.status == 201 else f"failed: {r.status} {text!r}"
            except (OSError, http.client.HTTPException):
                return  # the server was killed mid-upload
            finally:
                conn.close()

    threads = [threading.Thread(target=poster, args=(c,)) for c in range(4)]
    threads += [threading.Thread(target=uploader, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 60
        while sum(v == "stored" for v in uploads.values()) < 1 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.4)  # into the next uploads
    finally:
        server.kill()  # kill -9
        server.wait(30)
        stop.set()
        for t in threads:
            t.join(60)
    stored_uploads = [u for u, s in uploads.items() if s == "stored"]
    in_flight = [u for u, s in uploads.items() if s == "sent"]
    assert stored_uploads, uploads
    assert in_flight, f"no upload was in flight at the kill: {uploads}"
    assert not [s for s in uploads.values() if s.startswith("failed")], uploads
    assert len(acked) > 20

    con = sqlite3.connect(tmp_path / "deepcuts.sqlite3")
    listens = set(
        con.execute(
            "SELECT u.external_id, l.listened_at FROM listens l JOIN users u ON u.id = l.user_id"
        ).fetchall()
    )
    per_user = dict(
        con.execute(
            "SELECT u.external_id, COUNT(l.id) FROM users u LEFT JOIN listens l "
            "ON l.user_id = u.id WHERE u.external_id LIKE 'up%' GROUP BY u.external_id"
        ).fetchall()
    )
    con.close()
    lost = [a for a in acked if a not in listens]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged listens lost"
    for user in stored_uploads:  # acknowledged: complete
        assert per_user.get(user) == LINES, (user, per_user.get(user))
    for user in in_flight:  # all or nothing: no user row, or every listen
        assert per_user.get(user) in (None, LINES), (user, per_user.get(user))

    server = start()  # the registry after the kill: consistent, and the service writes on
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=30) as r:
            rows = json.loads(r.read())["models"]
        assert rows and not [m for m in rows if m["status"] == "training"]
        ready = {m["id"] for m in rows if m["status"] == "ready"}
        files = {p.name for p in (tmp_path / "models").iterdir()}
        assert files == {f"model-{i}.{e}" for i in ready for e in ("npz", "json")}
        retry = next((u for u in in_flight if per_user.get(u) is None), None)
        if retry is not None:  # an upload cut by the kill can be sent again
            data, ctype = _multipart(_history(10, 1))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", f"/users/{retry}/history", data, {"Content-Type": ctype})
            r = conn.getresponse()
            assert r.status == 201, r.read()
            conn.close()
    finally:
        server.terminate()
        server.wait(30)
