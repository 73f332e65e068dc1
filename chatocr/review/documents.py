"""The documents of a results file as the review page shows them: each one's result, its OCR lines
(found as the HTML report finds them), its page images (only the results' own, checked), and the
JSON view of its fields with their current review.

OCR lines come, in this order, from the result itself (an `ocr.document` section in the
`OCRDocument` JSON form, when a run kept it), from the OCR cache by the input's hash, from the
engine again when the input is still there (unless told not to), and else only the fields' own
evidence lines (the page says so). Page images are served only from the path a result names, and
only when it is a regular file that is not a link out of its folder; the page says why an image
is not shown (moved, a link elsewhere, changed since, unreadable).
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from PIL import Image

from chatocr.checks import CheckResult
from chatocr.errors import InputError
from chatocr.extraction.result import Evidence, Extraction, FieldResult
from chatocr.fileio import file_sha256
from chatocr.ocr.base import OCREngine
from chatocr.ocr.images import ImageLimits, load_input
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.review.events import DocKey, ReviewState
from chatocr.viewer.drawing import PALETTE
from chatocr.viewer.sources import ocr_document

__all__ = [
    "LOW_CONFIDENCE",
    "ReviewDocument",
    "evidence_line",
    "field_needs_review",
    "read_results_file",
    "safe_image",
]

# A grounded value below this confidence needs a look, as the HTML report marks it.
LOW_CONFIDENCE = 0.8
# Page images as served: the long side at most this, JPEG at this quality (boxes stay exact: they
# are drawn in the page's own coordinates, scaled by the browser).
IMAGE_MAX_SIDE = 1600
JPEG_QUALITY = 80
_TEXT_ENGINES = ("text",)
_EXTRACTION_FIELDS = {f.name for f in fields(Extraction)}

EngineFor = Callable[[str], OCREngine | None]


@dataclass
class ReviewDocument:
    """One result of the results file, with what the page needs to show it."""

    number: int  # its place in the results file, from 0
    key: DocKey
    result: Extraction
    extras: dict[str, Any] = field(default_factory=dict)  # record keys this chatocr's Extraction lacks
    _ocr: OCRDocument | None = None
    _ocr_notes: list[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        name = Path(self.key[0]).name or self.key[0]
        return f"{name} (page {self.key[2]})" if self.key[2] is not None else name

    @property
    def checks(self) -> list[CheckResult]:
        """The scenario's document checks the result carries (docs/trust.md: sums, check digits...)."""
        return list(self.result.checks)

    def ocr(self, engine_for: EngineFor | None, run_ocr: bool) -> tuple[OCRDocument | None, list[str]]:
        """The document's OCR lines (see the module docstring), found once."""
        with self._lock:
            if self._ocr_notes is None:
                self._ocr, self._ocr_notes = _find_ocr(self, engine_for, run_ocr)
            return self._ocr, list(self._ocr_notes)

    def lines_by_id(self, document: OCRDocument | None) -> dict[str, dict[str, Any]]:
        """Every line the page offers (the OCR's, else the evidence's), by id."""
        out: dict[str, dict[str, Any]] = {}
        if document is not None:
            for page in document.pages:
                for line in page.lines:
                    out[line.id] = {**line.to_dict(), "page": page.index}
        for item in self.result.fields.values():
            for evidence in item.evidence:
                out.setdefault(evidence.line_id, evidence_line(evidence))
        return out


def evidence_line(evidence: Evidence) -> dict[str, Any]:
    box = [[round(float(x), 2), round(float(y), 2)] for x, y in evidence.box]
    return {
        "id": evidence.line_id,
        "text": evidence.text,
        "box": box,
        "confidence": evidence.confidence,
        "page": evidence.page,
    }


def _find_ocr(doc: ReviewDocument, engine_for: EngineFor | None, run_ocr: bool) -> tuple[OCRDocument | None, list[str]]:
    result, notes = doc.result, []
    kept = result.ocr.get("document")
    document: OCRDocument | None = None
    if isinstance(kept, dict):
        try:
            document = OCRDocument.from_dict(kept)
        except (ValueError, KeyError, TypeError) as exc:
            notes.append(f"The result's own OCR lines could not be read ({exc}).")
    if document is None and result.ocr:
        name = str(result.ocr.get("engine") or "")
        engine = engine_for(name) if engine_for is not None and name else None
        if engine is None:
            notes.append("OCR lines not shown: no OCR engine for this result here.")
        else:
            document = ocr_document(result, doc.key[1] or None, engine, run_ocr=run_ocr, notes=notes)
    if document is not None and result.page is not None:  # one result per page: that page's lines
        pages = tuple(p for p in document.pages if p.index == result.page - 1)
        document = OCRDocument(pages, document.engine, document.model, document.source, 0.0, document.has_boxes)
    if document is None and any(f.evidence for f in result.fields.values()):
        notes.append("Only the lines the fields were found on can be clicked.")
    return document, notes


def read_results_file(path: Path) -> tuple[list[ReviewDocument], list[tuple[int, str]]]:
    """The documents of a results file (JSON Lines, or the JSON of `--format json`), and the
    records that are not chatocr results (line number, why): those are left out, the rest shown."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"Cannot read the results file {path}: {exc}.", hint="Give the --out file of chatocr extract."
        ) from None
    records: list[tuple[int, Any]] = []
    whole: Any = None
    if path.suffix.lower() == ".json":
        try:
            whole = json.loads(text)
        except (ValueError, RecursionError):
            whole = None
    if isinstance(whole, (dict, list)):
        records = list(enumerate(whole if isinstance(whole, list) else [whole], 1))
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except (ValueError, RecursionError):
                    records.append((number, None))
    documents: list[ReviewDocument] = []
    problems: list[tuple[int, str]] = []
    seen: set[DocKey] = set()
    for number, record in records:
        try:
            document = _document(len(documents), record)
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            problems.append((number, f"not a chatocr result ({type(exc).__name__})"))
            continue
        if document.key in seen:
            problems.append((number, "the same document again; the first is shown"))
            continue
        seen.add(document.key)
        documents.append(document)
    return documents, problems


def _document(number: int, record: Any) -> ReviewDocument:
    data = dict(record)
    meta = data.pop("input")
    page = meta.get("page")
    extras = {k: data.pop(k) for k in list(data) if k not in _EXTRACTION_FIELDS and k not in ("ok", "usage")}
    result = Extraction.from_dict(data)
    key: DocKey = (str(meta["path"]), str(meta.get("sha256") or ""), None if page is None else int(page))
    return ReviewDocument(number, key, result, extras)


# -- images -----------------------------------------------------------------------------------


def safe_image(doc: ReviewDocument) -> tuple[Path | None, str | None]:
    """The image file to show for a result, or None with why not (None, None: a text input, no
    image to show). Only the path the result names, never through a link out of its folder."""
    result = doc.result
    engine = str(result.ocr.get("engine") or "")
    if not result.ocr or engine in _TEXT_ENGINES or not result.ocr.get("has_boxes", True):
        return None, None
    path = Path(doc.key[0])
    if not path.is_absolute():
        return None, f"The image path {path} is not absolute; it is not shown."
    if not os.path.lexists(path):
        return None, f"The image {path} is missing (moved or deleted); the boxes are drawn on a blank page."
    real, named = Path(os.path.realpath(path)), Path(os.path.abspath(path))
    if real != named and (path.parent.is_symlink() or real.parent != Path(os.path.realpath(path.parent))):
        return None, f"The image {path} is a link to a file outside its folder; it is not shown."
    if not real.is_file():
        return None, f"The image {path} is not a regular file; it is not shown."
    if doc.key[1]:
        try:
            if file_sha256(real) != doc.key[1]:
                return real, f"The image {path} has changed since it was extracted: the boxes may not match it."
        except InputError as exc:
            return None, f"The image {path} cannot be read: {exc.message}"
    return real, None


class PageImages:
    """Page images as downscaled JPEG bytes, read through load_input's limits; the last few kept."""

    def __init__(self, limits: ImageLimits | None = None, keep: int = 16) -> None:
        self.limits = limits or ImageLimits()
        self.keep = keep
        self._cache: OrderedDict[tuple[str, int, float], tuple[bytes, tuple[int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def jpeg(self, path: Path, index: int) -> tuple[bytes, tuple[int, int]]:
        """(JPEG bytes, original size) of page `index` of the file; InputError when unreadable."""
        key = (str(path), index, path.stat().st_mtime)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        pages = load_input(path, self.limits).pages
        if not 0 <= index < len(pages):
            raise InputError(f"{path} has no page {index + 1}.")
        picture = pages[index].convert("RGB")
        size = picture.size
        if max(size) > IMAGE_MAX_SIDE:
            picture.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        made = (buffer.getvalue(), size)
        with self._lock:
            self._cache[key] = made
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return made


# -- views ------------------------------------------------------------------------------------


def field_needs_review(item: FieldResult) -> bool:
    """The extraction's decision when it made one (`review`: the calibrated confidence is below the
    accept threshold, docs/trust.md); for a result without decisions, not grounded or grounded
    below LOW_CONFIDENCE."""
    if item.decision is not None:
        return item.decision == "review"
    if item.status != "grounded":
        return True
    return item.confidence is not None and item.confidence < LOW_CONFIDENCE


def _need_order(item: FieldResult) -> tuple[int, float]:
    """Fields needing review first, lowest confidence first among them and among the rest."""
    confidence = item.confidence if item.confidence is not None else -1.0
    return (0 if field_needs_review(item) else 1, confidence)


def _points(box: Any) -> list[float]:
    return [round(float(c), 1) for point in box for c in point]


def _field_checks(doc: ReviewDocument, name: str) -> list[dict[str, Any]]:
    """The document checks naming this field that failed (a skipped check says nothing)."""
    return [_check_view(check) for check in doc.checks if name in check.fields and check.passed is False]


def _check_view(check: CheckResult) -> dict[str, Any]:
    state = "skipped" if check.passed is None else "passed" if check.passed else "failed"
    return {"name": check.name, "message": check.message, "status": state}


def field_view(doc: ReviewDocument, item: FieldResult, colour: str, state: ReviewState) -> dict[str, Any]:
    review = state.current(doc.key, item.name)
    evidence = [{"page": e.page, "line": e.line_id, "text": e.text, "points": _points(e.box)} for e in item.evidence]
    reviewed = None
    if review is not None:
        event = review.event
        reviewed = {
            "state": review.state,
            "value": event.new,
            "event": event.id,
            "time": event.time,
            "reviewer": event.reviewer,
            "lines": [
                {
                    "page": line.get("page", 0),
                    "line": line.get("id"),
                    "text": line.get("text"),
                    "points": _points(line["box"]),
                }
                for line in event.lines
                if isinstance(line.get("box"), list)
            ],
        }
    return {
        "name": item.name,
        "value": item.value,
        "normalized": item.normalized,
        "status": item.status,
        "confidence": item.confidence,
        "match": item.match,
        "problem": item.problem,
        "required": item.required,
        "needs_review": field_needs_review(item),
        "decision": item.decision,
        "calibrated": item.calibrated,
        "checks": _field_checks(doc, item.name),
        "color": colour,
        "boxes": evidence,
        "review": reviewed,
        "history": len(state.history(doc.key, item.name)),
    }


def document_view(
    doc: ReviewDocument,
    state: ReviewState,
    document: OCRDocument | None,
    notes: list[str],
    image: tuple[Path | None, str | None],
    image_size: Callable[[int], tuple[int, int] | None],
) -> dict[str, Any]:
    """The JSON the page draws one document from."""
    result = doc.result
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(result.fields)}
    ordered = sorted(result.fields.values(), key=_need_order)
    views = [field_view(doc, item, colours[item.name], state) for item in ordered]
    path, image_note = image
    notes = [*notes, *([image_note] if image_note else [])]
    return {
        "number": doc.number,
        "name": doc.name,
        "path": doc.key[0],
        "sha256": doc.key[1],
        "page": doc.key[2],
        "scenario": result.scenario,
        "ok": result.ok,
        "error": result.error,
        "warnings": list(result.warnings),
        "notes": notes,
        "checks": [_check_view(c) for c in doc.checks],
        "fields": views,
        "reviewed": sum(v["review"] is not None for v in views),
        "pages": _page_views(doc, document, views, path is not None, image_size),
    }


def _page_views(
    doc: ReviewDocument,
    document: OCRDocument | None,
    views: list[dict[str, Any]],
    has_image: bool,
    image_size: Callable[[int], tuple[int, int] | None],
) -> list[dict[str, Any]]:
    result = doc.result
    if document is not None:
        pages: list[Page] = list(document.pages)
    else:  # only the evidence: pages as large as their boxes (or the image)
        indexes = sorted({e.page for f in result.fields.values() for e in f.evidence}) or (
            [0 if result.page is None else result.page - 1] if has_image else []
        )
        pages = [_evidence_page(doc, index) for index in indexes]
    out = []
    for number, page in enumerate(pages):
        lines = page.lines
        width, height = page.width, page.height
        served = number if result.page is None else 0  # a per-page result's image is its one page
        if document is None and has_image and (size := image_size(served)) is not None:
            width, height = size
        out.append(
            {
                "index": page.index,
                "width": max(int(width), 1),
                "height": max(int(height), 1),
                "image": f"api/documents/{doc.number}/pages/{served}/image" if has_image else None,
                "lines": [
                    {
                        "id": line.id,
                        "text": line.text,
                        "confidence": round(line.confidence, 3),
                        "points": _points(line.box),
                    }
                    for line in lines
                ],
            }
        )
    return out


def _evidence_page(doc: ReviewDocument, index: int) -> Page:
    seen: dict[str, OCRLine] = {}
    for item in doc.result.fields.values():
        for e in item.evidence:
            if e.page == index and e.line_id not in seen:
                box = tuple((float(x), float(y)) for x, y in e.box)
                seen[e.line_id] = OCRLine(e.line_id, e.text, box, e.confidence)  # type: ignore[arg-type]
    xs = [p[0] for line in seen.values() for p in line.box] or [400.0]
    ys = [p[1] for line in seen.values() for p in line.box] or [300.0]
    return Page(index, round(max(xs) * 1.05) + 20, round(max(ys) * 1.05) + 20, tuple(seen.values()))
