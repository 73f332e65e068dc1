"""The one way chatocr runs its async core from synchronous code.

    result = run_sync(model.chat(messages))          # from a script, a CLI command, an OCR engine
    loop = LoopThread(); loop.run(coro)              # a long-lived object's own background loop

Two cases, both here and nowhere else:
- The calling thread runs no event loop (scripts, the CLI): the coroutine runs on this thread's own
  kept loop. One loop per thread, reused, because building a loop and a worker-thread pool per call
  (asyncio.run) costs about 0.5 ms. On the main thread, Ctrl-C while it runs cancels the
  coroutine, which sees the cancellation (so a local generation stops) before KeyboardInterrupt
  reaches the caller.
- The calling thread already runs a loop (sync code called from async code, e.g. an OCR engine's
  `read` inside a notebook): blocking that loop's thread on itself would deadlock, so the coroutine
  runs on a shared background loop thread and this thread waits for it.

`run_blocking` is the matching helper for backends: a blocking SDK call runs in a worker thread,
except on this thread's own sync loop, where nothing else runs and the hop would be pure overhead.
Whenever the wait is interrupted (KeyboardInterrupt, cancellation), the work is cancelled too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "in_sync_loop", "run_blocking", "run_sync", "thread_loop"]

T = TypeVar("T")

_state = threading.local()
_shared: LoopThread | None = None
_shared_lock = threading.Lock()


class LoopThread:
    """One event loop running forever in a daemon thread; `run` submits a coroutine and waits."""

    def __init__(self, name: str = "chatocr-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C while waiting: stop the work as well, not only the wait.
            future.cancel()
            raise


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's own sync loop (created on first use)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _state.loop = loop
    return loop


def _run_here(coro: Coroutine[Any, Any, T]) -> T:
    loop = thread_loop()
    task = loop.create_task(coro)
    interrupted = False
    previous: Any = None
    # On the main thread, with Python's own Ctrl-C handler in place (as asyncio.Runner does): the
    # first Ctrl-C cancels the task, so the work sees CancelledError wherever it waits (the default
    # handler would raise KeyboardInterrupt at a random point inside it); a second one raises.
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):

        def on_sigint(signum: int, frame: Any) -> None:
            nonlocal interrupted
            if interrupted or task.done():
                raise KeyboardInterrupt
            interrupted = True
            loop.call_soon_threadsafe(task.cancel)

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    except BaseException:
        if not task.done():  # e.g. a second Ctrl-C: the work is cancelled too, and sees it
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise
    else:
        if interrupted:  # the work finished before it saw the cancel (a blocking call inline)
            raise KeyboardInterrupt
        return result
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _shared_loop() -> LoopThread:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread("chatocr-bridge")
        return _shared


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion and return its result, from any synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(coro)
    return _shared_loop().run(coro)


def in_sync_loop() -> bool:
    """Whether the running loop is this thread's own sync loop (nothing else runs on it)."""
    loop = getattr(_state, "loop", None)
    if loop is None:
        return False
    try:
        return loop is asyncio.get_running_loop()
    except RuntimeError:
        return False


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking call without blocking the event loop: in a worker thread, except on the
    calling thread's own sync loop, where the thread hop (about 0.1 ms) would be pure overhead."""
    if in_sync_loop():
        return function(*args)
    return await asyncio.to_thread(function, *args)
