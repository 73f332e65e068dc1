"""Run one call so that Ctrl-C cancels the call, not the program.

The REPL runs each OCR or model call as an asyncio task on its own event loop. While it runs,
SIGINT cancels the task (the backend sees CancelledError and stops its generation) and the caller
gets `Cancelled`; the session around the call is left as it was. A second Ctrl-C while the call is
still winding down raises KeyboardInterrupt at once, as Python does by default. (asyncio.Runner
does the same from Python 3.11; chatocr supports 3.10.)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Cancelled", "run_cancellable"]

T = TypeVar("T")


class Cancelled(Exception):
    """The user pressed Ctrl-C during the call; the call was cancelled."""


def run_cancellable(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], shown: AbstractContextManager[Any] | None = None
) -> T:
    """Run `coro` to its end; Ctrl-C cancels it (raises Cancelled). `shown` (e.g. a spinner that
    says "Ctrl-C cancels") is entered only once Ctrl-C does cancel: a key pressed the moment the
    promise appears must not be lost."""
    task = loop.create_task(coro)
    interrupted = False

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if task.done():  # it finished as the key was pressed: nothing left to cancel
            return
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)  # wakes the loop even while it waits in select()

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: Ctrl-C keeps its default meaning
        previous = None
    try:
        with shown if shown is not None else contextlib.nullcontext():
            return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise Cancelled from None
        raise
    finally:
        if not task.done():  # a second Ctrl-C left it running: it ends on the loop's next run
            task.cancel()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
