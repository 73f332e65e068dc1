"""`text`: input that is already OCR'd, from a file or bytes.

Understood formats (detected from the content):
- a JSON array of lines: `[{"text": ..., "box": [...], "confidence": ...}, ...]` where a box is
  4 points, 8 numbers (x1,y1,...,x4,y4) or 4 numbers (x0,y0,x1,y1); `points`/`bbox`/`poly`
  and `score` are accepted as key names; PaddleOCR 2.x pairs `[box, [text, score]]` too;
- JSON Lines: one such object per line;
- a PaddleOCR 3.x result object (`rec_texts`, `rec_polys`, `rec_scores`);
- chatocr's own `OCRDocument.to_dict()` JSON (a cached or saved OCR);
- anything else: plain UTF-8 text, one line per text line.

Lines without boxes get synthetic ones (one row each, top to bottom) and the document says
`has_boxes=False`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from typing import Any

from PIL import Image

from chatocr.errors import DocumentTooLargeError, InputError
from chatocr.ocr.base import RawLine, build_page
from chatocr.ocr.images import (
    EmptyImageError,
    ImageLimits,
    Source,
    UnsupportedInputError,
    describe_source,
    source_digest,
)
from chatocr.ocr.layout import check_line_count, display_width
from chatocr.ocr.types import Box, OCRDocument, box_from_any

__all__ = ["TextEngine", "parse_ocr_text", "synthetic_box"]

_TEXT_KEYS = ("text", "transcription", "words")
_BOX_KEYS = ("box", "points", "bbox", "poly", "polygon")
_SCORE_KEYS = ("confidence", "score")
# Synthetic geometry: one 20-px row per line, 10 px per half-width character.
_ROW, _CHAR = 20.0, 10.0
# Pre-OCR'd input larger than this is refused before it is parsed (20,000 lines are about 0.8 MB).
MAX_TEXT_BYTES = 16 * 1024 * 1024
# Boxes are page pixels: a coordinate past this is not a page (and would make a drawing huge).
MAX_COORDINATE = 1_000_000.0
_TEXT_HINT = (
    "Give a JSON array of {'text', 'box'} objects (a box is 4 points, 8 numbers or 4 numbers), "
    "JSON Lines, chatocr's own OCR JSON, or plain UTF-8 text."
)


class _TextInputError(UnsupportedInputError):
    default_hint = _TEXT_HINT


def synthetic_box(row: int, text: str) -> Box:
    """A box for a line without one: row `row` of a page of 20-px rows."""
    y0, y1 = row * _ROW + 2, row * _ROW + _ROW - 2
    x1 = max(_CHAR, display_width(text) * _CHAR)
    return (0.0, y0), (x1, y0), (x1, y1), (0.0, y1)


def _pick(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in item:
            return item[key]
    return None


def _line(item: Any, where: str) -> tuple[str, Any, float]:
    if isinstance(item, dict):
        text = _pick(item, _TEXT_KEYS)
        if text is None:
            raise _TextInputError(f"{where}: a line object has no 'text' key (keys: {sorted(item)}).")
        score = _pick(item, _SCORE_KEYS)
        return str(text), _pick(item, _BOX_KEYS), 1.0 if score is None else _score(score, where)
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], (list, tuple)):
        if len(item[1]) != 2:
            raise _TextInputError(f"{where}: a [box, [text, score]] line has {len(item[1])} items in its second part.")
        box, (text, score) = item[0], item[1]  # PaddleOCR 2.x: [box, [text, score]]
        return str(text), box, _score(score, where)
    if isinstance(item, str):
        return item, None, 1.0
    raise _TextInputError(f"{where}: cannot read a line from {_short(item)}.")


def _short(value: Any) -> str:
    try:
        return f"{value!r:.80}"
    except RecursionError:  # a deeply nested value has no useful repr
        return f"a deeply nested {type(value).__name__}"


def _score(value: Any, where: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise _TextInputError(f"{where}: a confidence must be a number, got {_short(value)}.") from None
    if not math.isfinite(score):
        raise _TextInputError(f"{where}: a confidence must be a finite number, got {score}.")
    return score


def _checked_box(value: Any) -> Box:
    """box_from_any, and every coordinate finite and within MAX_COORDINATE (ValueError otherwise)."""
    box = box_from_any(value)
    if not all(math.isfinite(c) and abs(c) <= MAX_COORDINATE for point in box for c in point):
        raise ValueError(f"box coordinates must be finite numbers within +-{MAX_COORDINATE:.0f}, got {_short(value)}")
    return box


def _raw_lines(entries: list[tuple[str, Any, float]], where: str) -> tuple[list[RawLine], bool]:
    has_boxes = bool(entries) and all(box is not None for _, box, _ in entries)
    lines = []
    for row, (text, box, score) in enumerate(entries):
        try:
            real = _checked_box(box) if has_boxes else synthetic_box(row, text)
        except (ValueError, RecursionError) as error:
            reason = "a box nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise _TextInputError(f"{where}: line {row + 1}: {reason}") from None
        lines.append(RawLine(text, real, score))
    return lines, has_boxes


def parse_ocr_text(content: str, where: str = "<text>") -> tuple[list[RawLine], bool] | OCRDocument:
    """Lines (with whether the boxes are real), or a whole OCRDocument for chatocr's own JSON."""
    stripped = content.strip()
    if not stripped:
        raise EmptyImageError(f"{where} has no text.")
    if stripped[0] in "[{":
        try:
            data: Any = json.loads(stripped)
        except RecursionError:
            raise _TextInputError(f"{where}: the JSON is nested too deeply to be OCR lines.") from None
        except json.JSONDecodeError as first:
            try:
                data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
            except RecursionError:
                raise _TextInputError(f"{where}: the JSON is nested too deeply to be OCR lines.") from None
            except json.JSONDecodeError:
                raise _TextInputError(
                    f"{where} looks like JSON but does not parse: {first.msg} at line {first.lineno} "
                    f"column {first.colno}."
                ) from None
        if isinstance(data, dict):
            if "pages" in data and "engine" in data:
                try:
                    document = OCRDocument.from_dict(data)
                except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
                    raise _TextInputError(f"{where}: not a valid chatocr OCR document: {_short(error)}") from None
                for page in document.pages:
                    check_line_count(len(page.lines), f"{where} page {page.index + 1}")
                    for line in page.lines:
                        try:
                            _checked_box(line.box)
                        except ValueError as error:
                            raise _TextInputError(f"{where}: line {line.id}: {error}") from None
                return document
            if "rec_texts" in data:
                texts = data["rec_texts"]
                if not isinstance(texts, list):
                    raise _TextInputError(f"{where}: 'rec_texts' must be a list of strings.")
                polys = data.get("rec_polys") or [None] * len(texts)
                scores = data.get("rec_scores") or [1.0] * len(texts)
                return _raw_lines(
                    [(str(t), p, _score(s, where)) for t, p, s in zip(texts, polys, scores, strict=False)],
                    where,
                )
            data = [data]
        if not isinstance(data, list):
            raise _TextInputError(f"{where}: a JSON {type(data).__name__} is not a list of OCR lines.")
        check_line_count(len(data), where)
        return _raw_lines([_line(item, where) for item in data], where)
    texts = [line.rstrip() for line in content.splitlines()]
    check_line_count(sum(1 for text in texts if text.strip()), where)
    return _raw_lines([(text, None, 1.0) for text in texts if text.strip()], where)


def _page_size(lines: list[RawLine]) -> tuple[int, int]:
    xs = [x for line in lines for x, _ in line.box]
    ys = [y for line in lines for _, y in line.box]
    return (int(max(xs, default=1)) + 1, int(max(ys, default=1)) + 1)


class TextEngine:
    """Reads pre-OCR'd text or JSON. Not an image engine: images are refused with a clear error."""

    name = "text"
    model = "pre-ocr"

    def __init__(self, *, limits: ImageLimits | None = None) -> None:
        self.limits = limits or ImageLimits()
        self.max_text_bytes = min(self.limits.max_bytes, MAX_TEXT_BYTES)

    def config_key(self) -> str:
        return "text:v1"

    def read(self, source: Source) -> OCRDocument:
        if isinstance(source, OCRDocument):
            return source
        if isinstance(source, (str, os.PathLike)):
            try:
                # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
                fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
                with open(fd, "rb") as handle:
                    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                        raise UnsupportedInputError(
                            f"{source} is not a regular file.", hint="Give the path of a text or JSON file."
                        )
                    data = handle.read(self.max_text_bytes + 1)
            except OSError as error:
                raise InputError(f"Cannot read {source}: {error.strerror or error}.", hint="Check the path.") from None
        elif isinstance(source, bytes):
            data = source
        elif isinstance(source, Image.Image) or hasattr(source, "shape"):
            raise UnsupportedInputError(
                "The text engine reads pre-OCR'd text or JSON, not images.",
                hint="Use an image engine (rapid, paddle, vlm) for images.",
            )
        else:
            raise UnsupportedInputError(f"The text engine cannot read a {type(source).__name__}.")
        if len(data) > self.max_text_bytes:
            raise DocumentTooLargeError(
                f"{describe_source(source)} is over {self.max_text_bytes} bytes of pre-OCR'd text.",
                hint="Split the document into smaller files.",
            )
        try:
            content = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnsupportedInputError(
                f"{describe_source(source)} is not UTF-8 text.",
                hint="The text engine reads UTF-8 text or JSON; use an image engine for images.",
            ) from None
        return self.read_text(content, source=describe_source(source), sha256=source_digest(data))

    def read_text(self, content: str, *, source: str = "<text>", sha256: str | None = None) -> OCRDocument:
        started = time.perf_counter()
        parsed = parse_ocr_text(content, source)
        if isinstance(parsed, OCRDocument):
            return parsed
        lines, has_boxes = parsed
        width, height = _page_size(lines)
        return OCRDocument(
            pages=(build_page(0, width, height, lines),),
            engine=self.name,
            model=self.model,
            source=source,
            seconds=time.perf_counter() - started,
            has_boxes=has_boxes,
            sha256=sha256,
            config=self.config_key(),
        )
