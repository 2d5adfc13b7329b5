"""What the worker processes of one server tell each other: an append-only event log.

``deepcuts serve --workers N`` runs N processes on one port. Each keeps the served model and
its bookkeeping in memory, so a listen posted to one worker, a model activated by another
worker's retrain, or a retrain started elsewhere must reach every worker. They share a small
file in the data directory, ``serve-events.jsonl``: one JSON line per event, appended under an
exclusive ``flock``, read by every worker before it answers (an ``fstat`` and a ``stat`` when
nothing is new: a few microseconds). A worker that posts listens appends the event before it
answers, so a client sees its own listens whichever worker answers next.

Events: ``{"kind": "listens", "t": time, "users": [...]}``, ``{"kind": "model"}`` (the active
model of the registry changed: re-read it), ``{"kind": "job", "job": {...}, "pid": pid}``
(retrain job state). At :data:`ROTATE_BYTES` the log is renamed to ``.old`` and a new one is
started; readers finish the old file through their open descriptor, and a timer thread in each
worker polls every second, so an idle worker cannot fall a whole file behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

__all__ = ["EventLog"]

#: size at which the event log starts a new file
ROTATE_BYTES = 16 * 2**20


class EventLog:
    """An append-only JSON-lines log shared by the processes of one server.

    Parameters
    ----------
    path : path
        The log file (created if missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.Lock()  # one reader at a time inside this process
        self._held = threading.local()  # this thread holds the file lock
        self._fd: int | None = None
        self._ino = -1
        self._offset = 0
        self._partial = b""
        self._open()

    @classmethod
    def reset(cls, path) -> EventLog:
        """Start an empty log (at server start, before the workers open it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(b"")
            os.replace(tmp, path)
        return cls(path)

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._ino, self._offset, self._partial = fd, os.fstat(fd).st_ino, 0, b""

    @contextmanager
    def exclusive(self):
        """Hold the log's exclusive lock: read, decide and :meth:`append` with no other process
        appending in between (e.g. "start a retrain unless one runs")."""
        if getattr(self._held, "on", False):
            yield self
            return
        with open(self._lock_path, "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            self._held.on = True
            try:
                yield self
            finally:
                self._held.on = False

    def append(self, event: dict) -> None:
        """Append one event (one ``write`` under the exclusive lock)."""
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        with self.exclusive():
            try:
                if os.path.getsize(self.path) + len(line) > ROTATE_BYTES:
                    os.replace(self.path, self.path.with_name(self.path.name + ".old"))
            except FileNotFoundError:
                pass
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def read_new(self) -> list[dict]:
        """Events appended since the last call (by any process, this one included)."""
        with self._mutex:
            out = self._read_fd()
            try:
                rotated = os.stat(self.path).st_ino != self._ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                self._open()
                out += self._read_fd()
            return out

    def _read_fd(self) -> list[dict]:
        size = os.fstat(self._fd).st_size
        if size <= self._offset:
            return []
        data = os.pread(self._fd, size - self._offset, self._offset)
        self._offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        return [json.loads(line) for line in data[:cut].splitlines() if line.strip()]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
