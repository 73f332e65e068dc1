"""One status line on stderr that says what chatocr is doing (never a silent wait).

Shown only when stderr is a terminal and --quiet is not given; pipes, files and CI logs get
nothing. Fed by chatocr.progress events:

    ⠋ receipt.jpg: generating: 37 tokens (4.1 s)

    with StatusLine.for_terminal(quiet=args.quiet) as status:
        with progress.listening(status.update):
            ...
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from chatocr.progress import Event

__all__ = ["StatusLine"]


class StatusLine:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._status: Any = None
        self._lock = threading.Lock()
        self._stage_started = time.monotonic()
        self._stage = ""
        self.timeline: list[Event] = []  # every event, for a closing "where the time went" line

    @classmethod
    def for_terminal(cls, quiet: bool = False) -> StatusLine:
        interactive = not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        return cls(interactive)

    def __enter__(self) -> StatusLine:
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True, highlight=False)
            self._status = console.status("starting…", spinner="dots")
            self._status.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None

    def say(self, message: str) -> None:
        """Show a message of the CLI's own (before any event arrives)."""
        with self._lock:
            if self._status is not None:
                self._status.update(message)

    def update(self, event: Event) -> None:
        self.timeline.append(event)
        with self._lock:
            if self._status is None:
                return
            if event.stage != self._stage:
                self._stage, self._stage_started = event.stage, time.monotonic()
            text = event.message
            if event.stage in ("generate", "prompt", "prefix", "load"):
                text += f" ({time.monotonic() - self._stage_started:.1f} s)"
            if event.source:
                text = f"{Path(event.source).name}: {text}"
            self._status.update(text)
