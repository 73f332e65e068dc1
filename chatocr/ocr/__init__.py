"""OCR engines behind one small interface, reading-order text, input safety and an OCR cache.

    from chatocr.ocr import get_ocr_engine, CachedEngine
    engine = CachedEngine(get_ocr_engine("rapid"))
    document = engine.read("receipt.jpg")
    print(document.text())                 # rows kept together, cells spaced as on the page
    layout = document.layout(normalize=True)
    start = layout.text.find("9.00")
    layout.line_ids(start, start + 4)      # -> ["p0-l17"]: the line(s), hence the box(es)

Engines (`get_ocr_engine(name, **options)`): "rapid" (RapidOCR, bundled models, the default),
"paddle" (PaddleOCR 3.x), "text" (pre-OCR'd text/JSON), "vlm" (a vision LLM); plugins through
the `chatocr.ocr` entry-point group. Heavy libraries are imported only when an engine is made.
"""

from __future__ import annotations

from chatocr.ocr.base import ImageEngine, OCREngine, RawLine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.images import (
    CorruptImageError,
    EmptyImageError,
    EncryptedInputError,
    ImageLimits,
    ImageTooLargeError,
    Source,
    TooManyPagesError,
    UnsupportedInputError,
    load_input,
)
from chatocr.ocr.layout import LayoutText, Span, group_rows, render_layout
from chatocr.ocr.registry import (
    DEFAULT_OCR_ENGINE,
    available_ocr_engines,
    get_ocr_engine,
    make_engine,
    register_ocr_engine,
)
from chatocr.ocr.types import Box, OCRDocument, OCRLine, Page, Point

__all__ = [
    "DEFAULT_OCR_ENGINE",
    "Box",
    "CachedEngine",
    "CorruptImageError",
    "EmptyImageError",
    "EncryptedInputError",
    "ImageEngine",
    "ImageLimits",
    "ImageTooLargeError",
    "LayoutText",
    "OCRCache",
    "OCRDocument",
    "OCREngine",
    "OCRLine",
    "Page",
    "Point",
    "RawLine",
    "Source",
    "Span",
    "TooManyPagesError",
    "UnsupportedInputError",
    "available_ocr_engines",
    "get_ocr_engine",
    "group_rows",
    "load_input",
    "make_engine",
    "register_ocr_engine",
    "render_layout",
]
