"""Finding what a report shows about each result: the page images (from the source path the result
stores) and the OCR lines (from the OCR cache, or by running the engine again).

A result whose image has gone is still shown: its boxes on a blank page of the page's size (from
the cached OCR, else just large enough for the boxes), with a note saying which file is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from chatocr.extraction.result import Extraction
from chatocr.ocr.base import OCREngine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.images import load_input
from chatocr.ocr.types import OCRDocument
from chatocr.viewer.report import ReportItem

__all__ = ["EngineFor", "gather_items", "ocr_document", "read_result_file"]

# The OCR engine (ideally a CachedEngine) to find a result's OCR lines with, by engine name; None: none.
EngineFor = Callable[[str], OCREngine | None]
# Engines whose input is a picture: their results' sources are images to embed.
_TEXT_ENGINES = ("text",)


def _cached(engine: OCREngine, sha256: str | None) -> OCRDocument | None:
    """The cached OCR of the input with this content hash, without reading the input."""
    if not isinstance(engine, CachedEngine) or not sha256:
        return None
    return engine.cache.get(OCRCache.key(sha256, engine.name, engine.config_key()))


def ocr_document(
    result: Extraction, sha256: str | None, engine: OCREngine | None, *, run_ocr: bool, notes: list[str]
) -> OCRDocument | None:
    """A result's OCR lines as the report finds them (the OCR cache by the input's hash, else with
    `run_ocr` the engine again when the input is still there), or None with the reason in `notes`.
    The review app (chatocr.review) finds them the same way."""
    return _document(result, sha256, engine, run_ocr, Path(result.source).is_file(), notes)


def _document(
    result: Extraction, sha256: str | None, engine: OCREngine | None, run_ocr: bool, exists: bool, notes: list[str]
) -> OCRDocument | None:
    if engine is None:
        return None
    try:
        document = _cached(engine, sha256)
        if document is None and run_ocr and exists:
            document = engine.read(result.source)
    except Exception as exc:  # the report still shows the fields' boxes
        notes.append(f"OCR lines not shown: {exc}")
        return None
    if document is None:
        notes.append(
            "OCR lines not shown: not in the OCR cache"
            + ("" if exists else " and the input is missing")
            + (" (run without --no-ocr to OCR again)" if exists and not run_ocr else "")
        )
    return document


def gather_items(
    results: Iterable[tuple[str | None, Extraction]], engine_for: EngineFor | None = None, *, run_ocr: bool = True
) -> list[ReportItem]:
    """ReportItems for (sha256 or None, result) pairs: page images read from each result's source,
    OCR lines from engine_for(result's OCR engine) (the cache first; with run_ocr, OCR again)."""
    items = []
    for sha256, result in results:
        notes: list[str] = []
        source = Path(result.source)
        exists = source.is_file()
        engine_name = str(result.ocr.get("engine") or "")
        engine = engine_for(engine_name) if engine_for is not None and engine_name else None
        document = _document(result, sha256, engine, run_ocr, exists, notes) if result.ocr else None
        images: list[Image.Image] | None = None
        # No OCR summary: the input could not be read at all (its error says why); nothing to draw on.
        if result.ocr and engine_name not in _TEXT_ENGINES and result.ocr.get("has_boxes", True):
            if exists:
                try:
                    images = list(load_input(source).pages)
                except Exception as exc:
                    notes.append(f"The page image could not be read ({exc}); the boxes are drawn on a blank page.")
            else:
                notes.append(f"The image {result.source} is missing; the boxes are drawn on a blank page.")
        items.append(ReportItem(result, document, images, notes))
    return items


def read_result_file(path: Path) -> tuple[list[tuple[str | None, Extraction]], int]:
    """(sha256 or None, result) for every record of a chatocr results file: JSON Lines (`--out
    x.jsonl`) or JSON (`--format json`: one record or a list). Also returns how many lines were not
    chatocr results (skipped, so that a hand-edited file still shows what it can)."""
    text = path.read_text(encoding="utf-8")
    records: list[Any]
    skipped = 0
    try:
        whole = json.loads(text) if path.suffix.lower() == ".json" else None
    except ValueError:
        whole = None
    if isinstance(whole, (dict, list)):
        records = whole if isinstance(whole, list) else [whole]
    else:
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                skipped += 1
    out: list[tuple[str | None, Extraction]] = []
    for record in records:
        try:
            data = dict(record)
            meta = data.pop("input", None) or {}
            out.append((meta.get("sha256"), Extraction.from_dict(data)))
        except (TypeError, ValueError, KeyError):
            skipped += 1
    return out, skipped
