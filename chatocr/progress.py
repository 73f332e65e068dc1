"""What chatocr is doing right now, for people waiting on it: progress events.

A local extraction on a laptop CPU takes seconds to minutes (loading the model, evaluating the
prompt, generating); a program or a terminal that shows nothing meanwhile looks hung. The parts that
do the work announce each stage with `emit(...)`; whoever wants to know registers a callback for the
duration of a call with `listening(callback)` (the API's `on_event=`, the CLI's status line).

    with listening(print):
        ocr.extract("receipt.jpg", keys=["total"])
    # Event(stage='read', message='reading receipt.jpg', ...), Event(stage='ocr', ...), ...

The callback lives in a context variable, so it follows the call into asyncio tasks and into the
worker threads that `asyncio.to_thread` starts (both copy the context), and concurrent calls with
different callbacks do not see each other's events. It is called in the thread doing the work: keep
it short and thread-safe. An exception in a callback is logged and never breaks the extraction.

Stages: "read" (an input is being opened), "ocr" (OCR finished: lines, cached or not), "route" (the
scenario chosen), "load" (the model or OCR engine is being loaded), "prefix" (the examples' state
restored or evaluated), "prompt" (evaluating N prompt tokens), "generate" (tokens so far), "retry"
(a service failed, trying again after a pause), "done" (one document finished).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventCallback", "emit", "listening"]

log = logging.getLogger("chatocr")


@dataclass(frozen=True)
class Event:
    stage: str
    message: str
    source: str | None = None  # the document this is about, when known
    tokens: int | None = None  # prompt: tokens to evaluate; generate: tokens so far
    seconds: float | None = None  # how long the stage took, when it is reported at its end
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


EventCallback = Callable[[Event], None]

_listener: contextvars.ContextVar[EventCallback | None] = contextvars.ContextVar("chatocr_progress", default=None)
_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("chatocr_progress_source", default=None)


def active() -> bool:
    """Whether anyone listens (lets a caller skip building costly messages)."""
    return _listener.get() is not None


def emit(stage: str, message: str, **info: Any) -> None:
    callback = _listener.get()
    if callback is None:
        return
    known = {k: info.pop(k) for k in ("tokens", "seconds") if k in info}
    source = info.pop("source", None) or _source.get()
    try:
        callback(Event(stage, message, source, data=info, **known))
    except Exception:  # a display problem must never cost a document
        log.exception("a progress callback failed")


@contextlib.contextmanager
def listening(callback: EventCallback | None) -> Iterator[None]:
    """Deliver the events of everything run inside this block (and the tasks and threads it
    starts) to `callback`. None: leave whatever listener is active in place."""
    if callback is None:
        yield
        return
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


@contextlib.contextmanager
def about(source: str | None) -> Iterator[None]:
    """Events inside this block are about `source` (one document of a batch)."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)
