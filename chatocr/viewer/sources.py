"""Finding what a report shows about each result: the page images (from the source path the result
stores) and the OCR lines (from the OCR cache, or by running the engine again).

A result whose image has gone is still shown: its boxes on a blank page of the page's size (from
the cached OCR, else just large enough for the boxes), with a note saying which file is missing.
So is a result whose file changed since (its SHA-256 is not the one the result stores): the file
now at that path is another document, so neither its image nor its OCR is shown under the result,
and the note says so.

Results files are read by `chatocr.runs.records.read_records`: a record that is not bounded JSON
or not a chatocr result (`"fields": [1, 2]`) is left out with its line and the reason, and the
others are shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from chatocr.errors import ChatOCRError
from chatocr.extraction.result import Extraction
from chatocr.fileio import file_sha256
from chatocr.ocr.base import OCREngine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.images import load_input
from chatocr.ocr.types import OCRDocument
from chatocr.runs.records import read_records
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


def _changed(source: Path, sha256: str | None) -> bool:
    """Whether the file at a result's path is no longer the one the result was made from."""
    if not sha256:
        return False
    try:
        return file_sha256(source) != sha256
    except ChatOCRError:  # unreadable now: treated as missing by the caller's notes
        return False


def gather_items(
    results: Iterable[tuple[str | None, Extraction]], engine_for: EngineFor | None = None, *, run_ocr: bool = True
) -> list[ReportItem]:
    """ReportItems for (sha256 or None, result) pairs: page images read from each result's source,
    OCR lines from engine_for(result's OCR engine) (the cache first; with run_ocr, OCR again), never
    from a file that changed since the result was made."""
    items = []
    for sha256, result in results:
        notes: list[str] = []
        source = Path(result.source)
        exists = source.is_file()
        if exists and _changed(source, sha256):
            exists = False  # another document is at that path now: show neither its image nor its text
            notes.append(
                f"{result.source} changed since this result was made (its SHA-256 differs): its image and OCR "
                "lines are not shown; the boxes are drawn on a blank page."
            )
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
            elif not notes:
                notes.append(f"The image {result.source} is missing; the boxes are drawn on a blank page.")
        items.append(ReportItem(result, document, images, notes))
    return items


def read_result_file(path: Path) -> tuple[list[tuple[str | None, Extraction]], list[tuple[str, str]]]:
    """(sha256 or None, result) for every good record of a chatocr results file: JSON Lines (`--out
    x.jsonl`) or JSON (`--format json`: one record or a list); and (where, why) of each record left
    out (not JSON, nested too deeply, not a chatocr result), so that a hand-edited file still shows
    what it can. DataFileError when the file cannot be read at all."""
    read = read_records(path)
    pairs = [(record.key[1] if record.key else None, record.result) for record in read.records]
    return pairs, read.skipped
