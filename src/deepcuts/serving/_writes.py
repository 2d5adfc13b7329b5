"""Group commit of single-listen writes (``POST /listens``).

A listener's player posts one listen at a time. Storing each in its own transaction costs a
thread hop, a transaction and the artist-name normalisation per request, and concurrent
transactions queue for the database's write lock. :class:`GroupCommit` lets the requests
that arrive while a transaction is being written wait for the next one instead: a single
writer thread takes everything queued, stores it with one
:meth:`~deepcuts.serving.service.RecommenderService.add_listens` call (one transaction), and
only then answers each request. So an acknowledged listen is always committed (``kill -9``
loses none), and under load one transaction carries many listens.

A listen is validated on its own before it joins a group (the rule of
:mod:`deepcuts.serving._validate`), so one bad listen is refused alone; should a group's
transaction still fail, its listens are retried one by one, each answered with its own
result.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

from deepcuts.serving.store import Listen, Store

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)


class GroupCommit:
    """Batch concurrent single-listen writes into shared transactions.

    Parameters
    ----------
    add : callable
        ``add(list[Listen]) -> int``: stores listens in one transaction (the service's
        ``add_listens``).
    max_group : int, default=1000
        Most listens in one transaction.

    Examples
    --------
    >>> import asyncio
    >>> groups = []
    >>> gc = GroupCommit(lambda ls: groups.append(len(ls)) or len(ls))
    >>> async def main():
    ...     return await asyncio.gather(*(gc.submit(Listen("u", "a")) for _ in range(5)))
    >>> asyncio.run(main()), sum(groups)
    ([1, 1, 1, 1, 1], 5)
    >>> gc.close()
    """

    def __init__(self, add, *, max_group: int = 1000):
        self.add = add
        self.max_group = int(max_group)
        self._queue: deque = deque()
        self._wake = threading.Condition()
        self._closed = False
        #: transactions written and listens in them (diagnostics)
        self.groups = 0
        self.listens = 0
        self._thread = threading.Thread(target=self._run, name="deepcuts-writer", daemon=True)
        self._thread.start()

    async def submit(self, listen: Listen) -> int:
        """Store ``listen`` with the next group; returns 1 once it is committed."""
        Store._check_listens([listen])  # refused alone, before it can fail a group
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.append((listen, loop, fut))
            self._wake.notify()
        return await fut

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue and self._closed:
                    return
                group = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self.max_group))
                ]
            self._write(group)

    def _write(self, group: list) -> None:
        try:
            self.add([g[0] for g in group])
            results: list = [1] * len(group)
        except Exception:  # noqa: BLE001 - retry one by one: each request gets its own answer
            log.debug("a group of %d listens failed; retrying them one by one", len(group))
            results = []
            for listen, _, _ in group:
                try:
                    results.append(self.add([listen]))
                except Exception as e:  # noqa: BLE001 - handed to the request
                    results.append(e)
        self.groups += 1
        self.listens += len(group)
        # one wake-up of each event loop per group, not one per request
        by_loop: dict = {}
        for (_, loop, fut), res in zip(group, results):
            by_loop.setdefault(loop, []).append((fut, res))
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, answers)
            except RuntimeError:  # that loop is closed: nobody waits for these answers
                pass

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)


def _resolve_all(answers: list) -> None:
    for fut, res in answers:
        if fut.done():  # the client went away
            continue
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)


_FIELDS = {"user", "artist", "track", "listened_at", "fraction"}


def _plain_listen(body: bytes) -> Listen | None:
    """The listen of a plain, valid ``POST /listens`` body; ``None`` for anything else (the
    full route then validates it and words the error)."""
    import math

    import orjson

    from deepcuts.serving._validate import MAX_ID, MAX_NAME, check_id, check_name

    try:
        d = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(d, dict) or not set(d) <= _FIELDS or not {"user", "artist"} <= set(d):
        return None
    user, artist = d["user"], d["artist"]
    track, t, f = d.get("track"), d.get("listened_at"), d.get("fraction")
    if not isinstance(user, str) or not isinstance(artist, str):
        return None
    if track is not None and not isinstance(track, str):
        return None
    # the route's limits apply to the values as sent (before stripping)
    if len(user) > MAX_ID or len(artist) > MAX_NAME or len(track or "") > MAX_NAME:
        return None
    try:
        check_id(user)
        check_name(artist)
        if track is not None and track.strip():
            check_name(track, what="track title", field="track")
    except ValueError:
        return None
    if t is not None and (type(t) is not int or not 0 <= t < 2**42):
        return None
    if f is not None and (
        type(f) not in (int, float) or not math.isfinite(f) or not 0.0 <= f <= 1.0
    ):
        return None
    return Listen(user, artist, track, t, f)


class FastListens:
    """ASGI middleware: ``POST /listens`` with a plain, valid JSON body (at most 4 KiB, with a
    Content-Length) goes straight to :class:`GroupCommit`, without the framework's routing and
    validation; anything else goes on to the FastAPI route, which answers alike (201
    ``{"stored": 1}``) and words the errors. Runs inside the security checks."""

    def __init__(self, app, *, writer: GroupCommit, stats: dict):
        self.app, self.writer, self.stats = app, writer, stats

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/listens":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is None or not length.isdigit() or int(length) > 4096:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client left
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        listen = _plain_listen(body)
        if listen is not None:
            try:
                await self.writer.submit(listen)
            except Exception:  # noqa: BLE001 - the full route answers and words it
                listen = None
        if listen is None:
            sent = False

            async def replay():
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        out = b'{"stored":1}'
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-length", str(len(out)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})
        self.stats["fast_writes"] = self.stats.get("fast_writes", 0) + 1
