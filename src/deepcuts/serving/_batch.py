"""Coalescing concurrent requests into one batch (dynamic batching in the event loop).

Requests that arrive while the event loop is busy are answered together: the first request of
a batch schedules a flush with ``loop.call_soon``, every request that becomes ready in the same
loop iteration joins it, and the flush answers them with one call. Nothing waits on a timer, so
a lone request is answered as soon as it would have been without batching; under load the
batches grow by themselves (with 50 concurrent clients, typically to a few dozen requests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Batcher"]


class Batcher:
    """Answer the requests submitted in one event-loop iteration with one call.

    Parameters
    ----------
    answer : callable
        ``answer(requests) -> results``: one result per request, in order; a result that is
        an exception is raised to that request's caller only.
    max_batch : int, default=64
        Largest batch handed to ``answer``; larger bursts are split.

    Examples
    --------
    >>> import asyncio
    >>> calls = []
    >>> def answer(reqs):
    ...     calls.append(len(reqs))
    ...     return [r * 2 if r >= 0 else ValueError("negative") for r in reqs]
    >>> async def main():
    ...     b = Batcher(answer)
    ...     return await asyncio.gather(*(b.submit(i) for i in range(5)))
    >>> asyncio.run(main()), calls
    ([0, 2, 4, 6, 8], [5])
    """

    def __init__(self, answer: Callable[[Sequence[Any]], Sequence[Any]], *, max_batch: int = 64):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.answer = answer
        self.max_batch = int(max_batch)
        self._pending: list[tuple[Any, asyncio.Future]] = []
        #: number of batches answered and requests in them (for tests and diagnostics)
        self.batches = 0
        self.requests = 0

    async def submit(self, request: Any) -> Any:
        """Queue ``request`` and wait for its result."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((request, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            chunk = pending[start : start + self.max_batch]
            try:
                results = self.answer([req for req, _ in chunk])
                if len(results) != len(chunk):
                    raise RuntimeError(
                        f"the batch answer gave {len(results)} results for {len(chunk)} requests"
                    )
            except Exception as e:  # noqa: BLE001 - every caller of the batch gets it
                results = [e] * len(chunk)
            self.batches += 1
            self.requests += len(chunk)
            for (_, fut), res in zip(chunk, results):
                if fut.done():  # the caller went away (cancelled)
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
