"""Who may start work now: a bounded number of requests run, a bounded number wait, the rest are
told to come back (429 with Retry-After) instead of piling up in memory.

    running  <= concurrency           (the process's extraction slots)
    running of one token <= per_token (one client cannot take every slot)
    running + waiting <= concurrency + queue

Built on asyncio semaphores: one event loop per process serves every request, so the counters
need no lock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chatocr.serve.errors import ServeError

__all__ = ["Admission"]


class Admission:
    def __init__(self, concurrency: int, queue: int, per_token: int) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + queue
        self.per_token = per_token
        self.admitted = 0  # running or waiting
        self.running = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._tokens: dict[str, asyncio.Semaphore] = {}
        self._holders: dict[str, int] = {}
        self._mean_seconds = 1.0  # moving average of a request's run time, for Retry-After

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the waiting line's expected drain time."""
        waiting = max(0, self.admitted - self.running)
        return max(1, math.ceil(self._mean_seconds * (waiting + 1) / self.concurrency))

    @asynccontextmanager
    async def slot(self, caller: str) -> AsyncIterator[None]:
        if self.admitted >= self.capacity:
            raise ServeError(
                429,
                "QueueFull",
                f"The server is busy: {self.running} request(s) running and {self.admitted - self.running} "
                f"waiting (queue limit {self.capacity - self.concurrency}).",
                "Retry after the number of seconds in the Retry-After header, or send fewer requests at once.",
                headers={"Retry-After": str(self.retry_after())},
            )
        own = self._tokens.get(caller)
        if own is None:
            own = self._tokens[caller] = asyncio.Semaphore(self.per_token)
        self.admitted += 1
        self._holders[caller] = self._holders.get(caller, 0) + 1
        try:
            async with own, self._slots:
                self.running += 1
                started = time.perf_counter()
                try:
                    yield
                finally:
                    self.running -= 1
                    self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.perf_counter() - started)
        finally:
            self.admitted -= 1
            self._holders[caller] -= 1
            if not self._holders[caller]:  # forget idle callers: the map stays as small as the load
                del self._holders[caller]
                del self._tokens[caller]
