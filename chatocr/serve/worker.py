"""The service's work loop: one thread with an event loop of its own, where everything a request
costs in Python runs (parsing its body, the extraction pipeline's bookkeeping, the job runner,
rendering the answer), so that uvicorn's event loop only moves bytes and answers /healthz.

Why a thread and not the server's own loop: the pipeline is async (it awaits OCR threads and model
calls), but between those awaits it computes (the prompt, grounding, signals, checks, the result's
JSON) on whatever loop runs it. On uvicorn's loop that work delayed every other answer: under a
load of 32 clients on 2 cores /healthz waited up to 178 ms behind four extractions' bookkeeping.
On a loop of its own it shares the interpreter lock with the server's loop, which takes its turn
every switch interval (serve/server.py) instead of waiting for whole callbacks to finish
(docs/benchmarks-serve.md measures both).

Why one thread: Python runs one of them at a time anyway, and every thread more that wants the
lock delays the server loop's turn. The pipeline's blocking calls (OCR, a local model's call) run
in this loop's call threads and mostly outside the lock (onnxruntime, llama.cpp, HTTP).

Why a lower CPU priority for this one thread (Linux: nice +WORK_NICE): on a machine with fewer
cores than runnable threads the kernel decides who runs next, and the server's loop, which is idle
most of the time, should win when it wakes (docs/benchmarks-serve.md). The threads this loop hands
blocking calls to (OCR, a model's call, and the threads those start: llama.cpp's) would inherit it,
and on a shared machine the service's extractions would then yield to everyone else's work: they
are started beforehand, from the caller's thread, and keep the caller's priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WorkLoop"]

T = TypeVar("T")
WORK_NICE = 10
CALL_THREADS = 6  # asyncio's own default on 2 cores; the service sizes it from its slots


def _started_pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads all start now, from the calling thread (whose priority they
    keep), not later from whichever thread first hands them work."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    started = threading.Barrier(workers + 1)
    for _ in range(workers):  # each waits at the barrier, so each submit finds no idle thread: a new one
        pool.submit(started.wait)
    started.wait()
    return pool


def _lower_priority() -> None:
    """This thread at nice +WORK_NICE, where the platform has it (threads it starts inherit it)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: run as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_NICE)


class WorkLoop:
    """An event loop in a daemon thread of its own; `run`/`call` await work on it from another loop."""

    def __init__(self, name: str = "chatocr-work", call_threads: int = CALL_THREADS) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(_started_pool(call_threads, f"{name}-call"))
        self._thread = threading.Thread(target=self._forever, name=name, daemon=True)
        self._thread.start()

    def _forever(self) -> None:
        _lower_priority()
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `work` on the work loop; cancelling the returned future cancels it there."""
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work`'s result, awaited from the caller's loop. Cancelling the caller cancels `work`
        (at its next await on the work loop; code running in a thread finishes first)."""
        return await asyncio.wrap_future(self.submit(work))

    async def call(self, function: Callable[[], T]) -> T:
        """`function()` run on the work loop's thread (CPU work: parsing, rendering)."""

        async def called() -> T:
            return function()

        return await self.run(called())

    def notify(self, callback: Callable[[], object]) -> None:
        """Call `callback` on the work loop soon (e.g. to set an asyncio.Event that lives there)."""
        self.loop.call_soon_threadsafe(callback)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Cancel what still runs on the loop, stop it, and wait (at most `timeout` s) for its thread."""
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.run(cancel_all()), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, timeout)
        if not self._thread.is_alive():
            self.loop.close()  # its executor's threads are let go, not waited for
