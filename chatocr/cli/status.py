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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from chatocr.progress import Event

__all__ = ["StatusLine"]


class StatusLine:
    def __init__(self, enabled: bool, record: bool = False) -> None:
        self.enabled = enabled
        self.record = record  # keep the events for where_time_went (--timings); off: nothing grows
        self._status: Any = None
        self._stream: TextIO | None = None
        self._lock = threading.Lock()
        self._stage_started = time.monotonic()
        self._stage = ""
        self.timeline: list[Event] = []  # every event, for a closing "where the time went" line
        # Where events go once a progress bar owns the terminal (rich allows one live display).
        self.sink: Callable[[Event], None] | None = None

    @classmethod
    def for_terminal(cls, quiet: bool = False, record: bool = False) -> StatusLine:
        interactive = not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        return cls(interactive, record)

    def __enter__(self) -> StatusLine:
        if self.enabled:
            from rich.console import Console

            # The line writes to its own copy of the terminal's descriptor: while a local model
            # loads (beside the OCR), llama-cpp-python points the process's stderr at /dev/null,
            # and the line must keep saying what is happening meanwhile.
            self._stream = _own_copy(sys.stderr)
            console = Console(file=self._stream, stderr=self._stream is None, highlight=False)
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
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def say(self, message: str) -> None:
        """Show a message of the CLI's own (before any event arrives)."""
        with self._lock:
            if self._status is not None:
                self._status.update(message)

    def update(self, event: Event) -> None:
        if self.record and event.stage != "generate":  # one per token: not needed for the summary
            self.timeline.append(event)
        if self.sink is not None:
            self.sink(event)
            return
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


def _own_copy(stream: TextIO) -> TextIO | None:
    """A new file object on a duplicate of `stream`'s descriptor (None when it has none)."""
    try:
        return os.fdopen(os.dup(stream.fileno()), "w", encoding=stream.encoding or "utf-8", errors="replace")
    except (OSError, ValueError, AttributeError):
        return None


def where_time_went(result: Any, timeline: list[Event]) -> str:
    """One line for a person: how one document's seconds split between OCR, loading the model,
    the examples' prefix, the prompt and the generation. The model's split is the document's own
    calls' (`CallRecord.perf`: the figures the backend gave each reply), summed over its calls
    (a re-ask is a second call), so it stays this document's while others are in flight."""
    parts: list[str] = []
    total = float((result.timings or {}).get("total_s") or 0.0)
    ocr = (result.timings or {}).get("ocr_s") or 0.0
    parts.append(f"OCR {ocr:.1f} s" + (" (cached)" if (result.ocr or {}).get("cached") else ""))
    load = sum(e.seconds or 0.0 for e in timeline if e.stage == "load" and e.seconds is not None)
    if load:
        parts.append(f"model load {load:.1f} s" + (" (beside the OCR)" if _loaded_beside_ocr(timeline) else ""))
    perfs = [call.perf for call in getattr(result, "calls", None) or () if getattr(call, "perf", None)]
    if perfs:
        first = perfs[0]
        calls = f", {len(perfs)} calls" if len(perfs) > 1 else ""

        def summed(key: str) -> float:
            return sum(float(perf.get(key) or 0) for perf in perfs)

        parts.append(f"examples' prefix {summed('prefix_s'):.1f} s ({first.get('prefix_state')})")
        parts.append(f"prompt {summed('prompt_eval_s'):.1f} s ({summed('prompt_eval_tokens'):.0f} tokens{calls})")
        generated = f"generation {summed('generation_s'):.1f} s ({summed('generated_tokens'):.0f} tokens"
        widest = max(int(perf.get("batch") or 1) for perf in perfs)
        parts.append(generated + (f", beside up to {widest - 1} other documents)" if widest > 1 else ")"))
    else:
        parts.append(f"model calls {(result.timings or {}).get('llm_s', 0):.1f} s")
    return f"where the time went: {' · '.join(parts)} · total {total:.1f} s"


def _loaded_beside_ocr(timeline: list[Event]) -> bool:
    """Whether the model started loading while a document's OCR ran (ExtractionPipeline.read
    does both at once; the "ocr" event comes when both are done): its seconds are not added."""
    reading_since: float | None = None
    for event in timeline:
        if event.stage == "read":
            reading_since = event.at
        elif event.stage == "ocr":
            reading_since = None
        elif event.stage == "load" and event.seconds is None and reading_since is not None:
            return True
    return False
