"""The HTML report: each document's data as JSON inside one self-contained page.

Everything that comes from a document or a model (OCR text, values, warnings, file names) goes
into the page only as JSON data in a `<script type="application/json">` block, escaped by Jinja2's
`tojson` (which turns `<`, `>`, `&` and `'` into \\u escapes, so no text can close the block); the
page's own script builds the view with DOM calls (`textContent`, attributes), never from HTML
strings. A Content-Security-Policy with a per-report nonce lets only the page's own script run and
forbids every network request: images are embedded as data URIs, downscaled JPEGs.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from chatocr.extraction.result import Extraction, FieldResult
from chatocr.fileio import atomic_write
from chatocr.ocr.types import OCRDocument
from chatocr.secrets import redact
from chatocr.viewer.drawing import PALETTE  # one colour per field, the same as the --draw pictures

__all__ = ["LOW_CONFIDENCE", "MAX_BLANK_PAGES", "ReportItem", "build_report", "document_view", "write_report"]

# A grounded value whose confidence (lowest OCR confidence of its lines x match score) is below this
# is marked "low confidence" in the report.
LOW_CONFIDENCE = 0.8
# Embedded page images: the long side at most this many pixels, JPEG at this quality. A receipt is
# then ~40-120 KB; the boxes stay exact because they are drawn in the page's own coordinates.
IMAGE_MAX_SIDE = 1200
JPEG_QUALITY = 72
# Pages drawn blank (no OCR, no image) for a result whose OCR summary says it has more: a record
# may say anything, and each blank page is work and bytes in the report.
MAX_BLANK_PAGES = 50


@dataclass
class ReportItem:
    """One result to show, with what is known about its input.

    document: its OCR (for every line's box; None: only the fields' boxes are drawn).
    images: the input's page images, in page order (None: blank pages of the page size).
    notes: said on the document's view, e.g. why the image is missing.
    """

    result: Extraction
    document: OCRDocument | None = None
    images: Sequence[Image.Image] | None = None
    notes: list[str] = field(default_factory=list)


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _points(box: Any) -> list[float]:
    return [round(float(c), 1) for point in box for c in point]


def _data_uri(image: Image.Image, max_side: int, quality: int) -> str:
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _field_view(item: FieldResult, colour: str, low_confidence: float) -> dict[str, Any]:
    # "low" is about the grounding confidence (OCR x match), what `confidence` was before calibration.
    grounding = item.grounding_confidence if item.signals is not None else item.confidence
    low = item.status == "grounded" and grounding is not None and grounding < low_confidence
    signals = item.signals
    return {
        "name": item.name,
        "value": _shown(item.value),
        "normalized": _shown(item.normalized),
        "status": item.status,
        "match": item.match,
        "match_score": item.match_score,
        "confidence": item.confidence,
        "calibrated": item.calibrated,
        "grounding_confidence": grounding,
        "decision": item.decision,
        "signals_used": list(item.signals_used),
        "checks_failed": list(signals.checks_failed) if signals is not None else [],
        "value_probability": signals.value_probability if signals is not None else None,
        "label": signals.label if signals is not None else None,
        "low": low,
        "problem": item.problem,
        "required": item.required,
        "color": colour,
        "boxes": [{"page": e.page, "line": e.line_id, "text": e.text, "points": _points(e.box)} for e in item.evidence],
    }


def _claimed_pages(value: Any) -> int:
    """The page count a result's OCR summary states, as at most MAX_BLANK_PAGES blank pages."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, MAX_BLANK_PAGES)


def _page_indexes(item: ReportItem) -> list[int]:
    """The pages this result is about: its own page for a per-page result, else every page the OCR or
    the images have (or, without them, the count the result states, at most MAX_BLANK_PAGES), and
    every page its evidence names: the report grows with what the record holds, never with what a
    number in it says (a record naming page 999,999 draws one page, not a million)."""
    result = item.result
    if result.page is not None:
        return [result.page - 1]
    count = len(item.document.pages) if item.document else len(item.images or ())
    count = count or _claimed_pages(result.ocr.get("pages"))
    evidence_pages = {e.page for f in result.fields.values() for e in f.evidence}
    return sorted(set(range(count)) | evidence_pages)


def _page_view(
    item: ReportItem, index: int, fields: list[dict[str, Any]], max_side: int, quality: int
) -> dict[str, Any]:
    document, images = item.document, item.images or ()
    ocr_page = next((p for p in document.pages if p.index == index), None) if document else None
    image = images[index] if index < len(images) else None
    if ocr_page is not None:
        width, height = ocr_page.width, ocr_page.height
    elif image is not None:
        width, height = image.size
    else:  # neither OCR nor image: a page just large enough for the boxes
        xs = [x for f in fields for b in f["boxes"] if b["page"] == index for x in b["points"][0::2]]
        ys = [y for f in fields for b in f["boxes"] if b["page"] == index for y in b["points"][1::2]]
        width, height = round(max(xs, default=400) * 1.05) + 20, round(max(ys, default=300) * 1.05) + 20
    has_boxes = document.has_boxes if document is not None else bool(item.result.ocr.get("has_boxes", True))
    lines = [
        {"id": line.id, "text": line.text, "confidence": round(line.confidence, 3), "points": _points(line.box)}
        for line in (ocr_page.lines if ocr_page is not None else ())
    ]
    return {
        "index": index,
        "width": max(int(width), 1),
        "height": max(int(height), 1),
        "image": _data_uri(image, max_side, quality) if image is not None and has_boxes else None,
        "synthetic": not has_boxes,  # text input: the boxes are rows, not places on an image
        "lines": lines,
    }


def document_view(
    item: ReportItem,
    *,
    low_confidence: float = LOW_CONFIDENCE,
    max_side: int = IMAGE_MAX_SIDE,
    quality: int = JPEG_QUALITY,
) -> dict[str, Any]:
    """One document as the JSON the page script draws."""
    result = item.result
    views = {
        name: _field_view(f, PALETTE[i % len(PALETTE)], low_confidence)
        for i, (name, f) in enumerate(result.fields.items())
    }
    review = result.to_review  # the fields to review first, lowest confidence first; colours stay each field's
    fields = [views[name] for name in [*review, *(n for n in views if n not in review)]]
    route = result.route
    rule = result.acceptance
    return {
        "name": Path(result.source).name or result.source,
        "source": result.source,
        "page": result.page,
        "scenario": result.scenario,
        "route": None
        if route is None
        else {"mode": route.mode, "confidence": route.confidence, "reason": route.reason},
        "ok": result.ok,
        "error": result.error,
        "warnings": list(result.warnings),
        "notes": list(item.notes),
        "usage": result.usage,
        "timings": result.timings,
        "ocr": {k: result.ocr.get(k) for k in ("engine", "model", "cached", "lines", "has_boxes")},
        "examples": list(result.examples),
        "fields": fields,
        "review": None
        if rule is None
        else {
            "summary": result.review_summary(),
            "to_review": review,
            "threshold": rule.threshold,
            "source": rule.source,
            "note": rule.note,
            "calibration": rule.calibration,
        },
        "checks": [check.to_dict() for check in result.checks],
        "pages": [_page_view(item, index, fields, max_side, quality) for index in _page_indexes(item)],
    }


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("assets")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")


def build_report(
    items: Sequence[ReportItem],
    *,
    title: str = "chatocr results",
    low_confidence: float = LOW_CONFIDENCE,
    max_side: int = IMAGE_MAX_SIDE,
    quality: int = JPEG_QUALITY,
) -> str:
    """The report as one HTML string."""
    documents = [document_view(i, low_confidence=low_confidence, max_side=max_side, quality=quality) for i in items]
    data = {
        "title": title,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "low_confidence": low_confidence,
        "documents": documents,
    }
    assets = Path(__file__).with_name("assets")
    return _template().render(
        title=title,
        data=data,
        nonce=secrets.token_urlsafe(16),
        style=(assets / "report.css").read_text(encoding="utf-8"),
        script=(assets / "report.js").read_text(encoding="utf-8"),
    )


def write_report(path: str | os.PathLike[str], items: Sequence[ReportItem], **options: Any) -> Path:
    """Write the report atomically: a temporary file in the same folder, then a rename, which
    replaces a planted symlink instead of writing through it."""
    target = Path(path)
    atomic_write(target, redact(build_report(items, **options)))  # chatocr.fileio; known secrets masked
    return target
