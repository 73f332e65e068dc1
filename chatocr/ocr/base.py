"""The OCR engine interface, and a base class that does everything but the recognition.

An engine is anything with `name`, `config_key()` and `read(source) -> OCRDocument`. Most engines
subclass `ImageEngine` and implement only `_recognize(image) -> [RawLine]` for one RGB page:
input decoding and limits, reading order, line ids, timing and the JSON-able result are shared.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from chatocr import cores
from chatocr.ocr.images import ImageLimits, Source, load_input
from chatocr.ocr.layout import group_rows
from chatocr.ocr.types import Box, OCRDocument, OCRLine, Page

__all__ = ["ImageEngine", "OCREngine", "RawLine", "build_page", "release_freed_memory"]


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to do
        return None


def release_freed_memory() -> None:
    """Give the heap memory freed by the last recognition back to the operating system.

    Why: a page's OCR peaks at about 1 GB (RapidOCR) and frees it all, but glibc keeps freed
    memory for reuse; the local model loaded next then adds its 2 GB on top of that, and the
    process holds both. `malloc_trim(0)` (glibc only; a no-op elsewhere) returns it; its cost is
    inside benchmarks/bench_ocr.py's wrapper-overhead ratio (chatocr's read vs RapidOCR direct)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@runtime_checkable
class OCREngine(Protocol):
    """What the pipeline codes against. `read` is synchronous and CPU bound: call it from a
    worker thread (e.g. `await asyncio.to_thread(engine.read, path)`)."""

    name: str

    def config_key(self) -> str:
        """Everything about this engine's settings that can change its output (for the cache)."""
        ...

    def read(self, source: Source) -> OCRDocument: ...


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line as an engine found it, before ordering and ids."""

    text: str
    box: Box
    confidence: float


def build_page(index: int, width: int, height: int, raw: Sequence[RawLine]) -> Page:
    """A Page with lines in reading order and ids "p<page>-l<n>" numbered in that order."""
    provisional = [OCRLine(f"tmp{i}", r.text, r.box, r.confidence) for i, r in enumerate(raw) if r.text.strip()]
    ordered = [line for row in group_rows(provisional) for line in row]
    lines = tuple(
        OCRLine(f"p{index}-l{n}", line.text.strip(), line.box, line.confidence) for n, line in enumerate(ordered)
    )
    return Page(index, width, height, lines)


class ImageEngine(ABC):
    """Base class for engines that recognise RGB page images.

    Subclasses set `name`, implement `_recognize` and `settings()`, and may override `model`.
    Calls into the underlying library are serialised with a lock: neither PaddleOCR's predictor
    nor RapidOCR promise thread safety, and the pipeline may share one engine across threads.
    """

    name: str = ""
    model: str = ""
    has_boxes: bool = True

    def __init__(self, *, limits: ImageLimits | None = None) -> None:
        self.limits = limits or ImageLimits()
        self._lock = threading.Lock()

    @abstractmethod
    def _recognize(self, image: Image.Image) -> list[RawLine]:
        """OCR one RGB page."""

    def settings(self) -> dict[str, Any]:
        """The engine's own settings that change its output; part of `config_key`."""
        return {}

    def cores(self) -> int:
        """The cores a recognition keeps busy (its threads), announced while it runs so that the
        local model decodes on the others (chatocr/cores.py). Default: every usable one."""
        return cores.usable_cpus()

    def config_key(self) -> str:
        settings = {"model": self.model, **self.settings(), "pdf_dpi": self.limits.pdf_dpi}
        return f"{self.name}:" + json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))

    def read(self, source: Source) -> OCRDocument:
        if isinstance(source, OCRDocument):
            return source
        started = time.perf_counter()
        loaded = load_input(source, self.limits)
        pages = []
        for index, image in enumerate(loaded.pages):
            with self._lock, cores.taking(self.cores()):
                raw = self._recognize(image)
                release_freed_memory()
            pages.append(build_page(index, image.width, image.height, raw))
        return OCRDocument(
            pages=tuple(pages),
            engine=self.name,
            model=self.model,
            source=loaded.source,
            seconds=time.perf_counter() - started,
            has_boxes=self.has_boxes,
            sha256=loaded.sha256,
            config=self.config_key(),
            warnings=tuple(loaded.warnings),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config_key()}>"
