"""A picture of an extraction: the document with each field's OCR boxes drawn and labelled in the
field's colour, every OCR line outlined faintly, and a legend listing every field with its status
and value (missing and ungrounded fields have no box, so the legend is where they show).

Labels need a font that has CJK glyphs: the first of Noto Sans CJK, WenQuanYi or DejaVu found,
else PIL's default (Latin only). `apt-get install fonts-noto-cjk` gives the best result.
"""

from __future__ import annotations

import hashlib
import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from chatocr.extraction.result import Extraction, FieldResult
from chatocr.fileio import atomic_write
from chatocr.llm._secrets import redact
from chatocr.ocr.images import load_input
from chatocr.ocr.types import Box, OCRDocument, Page

__all__ = ["FONT_CANDIDATES", "draw_extraction", "drawing_path", "find_font_path", "save_drawing"]

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# Distinct colours (Tableau 10 and a few more), one per field in order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939")
STATUS_MARK = {"grounded": "✓ grounded", "low_confidence": "~ low-confidence", "ungrounded": "? ungrounded",
               "missing": "– missing", "invalid": "✗ invalid"}
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
# A drawing holds at most this many pixels of pages: larger documents are drawn scaled down (a
# 12,000-px box in pre-OCR'd JSON must not make a 150-megapixel PNG).
MAX_DRAWING_PIXELS = 20_000_000


def _printable(text: str) -> str:
    """Text safe to draw: control characters (newlines in file names) as spaces, secrets masked."""
    return redact("".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text))


def _fit(result: Extraction, document: OCRDocument) -> tuple[Extraction, OCRDocument]:
    """The result and document scaled so that the pages fit MAX_DRAWING_PIXELS (unchanged if they do)."""
    area = sum(max(page.width, 200) * max(page.height, 100) for page in document.pages)
    if area <= MAX_DRAWING_PIXELS:
        return result, document
    k = math.sqrt(MAX_DRAWING_PIXELS / area)

    def box(points: Sequence[Sequence[float]]) -> Box:
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = points
        return (ax * k, ay * k), (bx * k, by * k), (cx * k, cy * k), (dx * k, dy * k)

    pages = tuple(
        Page(page.index, max(1, int(page.width * k)), max(1, int(page.height * k)),
             tuple(replace(line, box=box(line.box)) for line in page.lines))
        for page in document.pages
    )
    fields = {
        name: replace(f, evidence=[replace(e, box=[list(p) for p in box(e.box)]) for e in f.evidence])
        for name, f in result.fields.items()
    }
    return replace(result, fields=fields), replace(document, pages=pages)


def find_font_path() -> str | None:
    return next((path for path in FONT_CANDIDATES if Path(path).is_file()), None)


@lru_cache(maxsize=8)
def _font(size: int) -> Font:
    path = find_font_path()
    if path is not None:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _pages(document: OCRDocument, source: Path | None) -> list[Image.Image]:
    """The page images when the source is an image or PDF whose boxes are real, else white pages."""
    if source is not None and document.has_boxes and document.engine != "text":
        try:
            images = load_input(source).pages
            # Sized as the (possibly scaled-down, see _fit) OCR pages that the boxes refer to.
            return [image.convert("RGB").resize((page.width, page.height)) if image.size != (page.width, page.height)
                    else image.convert("RGB") for image, page in zip(images, document.pages, strict=False)]
        except Exception:  # a drawing is a convenience: fall back to blank pages
            pass
    return [Image.new("RGB", (max(page.width, 200), max(page.height, 100)), "white") for page in document.pages]


def _shorten(value: object, limit: int = 40) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour: str, font: Font) -> None:
    text = _printable(text)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = xy
    y = max(0.0, y - (bottom - top) - 6)
    draw.rectangle((x, y, x + right - left + 6, y + bottom - top + 6), fill=colour)
    draw.text((x + 3 - left, y + 3 - top), text, fill="white", font=font)


def draw_extraction(result: Extraction, document: OCRDocument, source: Path | None = None) -> Image.Image:
    result, document = _fit(result, document)
    pages = _pages(document, source)
    width = max(page.width for page in pages)
    height = sum(page.height for page in pages)
    size = max(14, min(40, round(width / 45)))
    font, line_width = _font(size), max(2, round(width / 400))
    fields = list(result.fields.values())
    entries = _legend_entries(result, fields)
    legend_width = round(max(font.getlength(_printable(text)) for text, _ in entries)) + size * 3
    legend_height = len(entries) * (size + 10) + size * 2
    canvas = Image.new("RGB", (width + legend_width, max(height, legend_height)), "white")
    draw = ImageDraw.Draw(canvas)
    offsets, y = [], 0
    for page in pages:
        canvas.paste(page, (0, y))
        offsets.append(y)
        y += page.height
    for page_index, ocr_page in enumerate(document.pages[: len(pages)]):
        for line in ocr_page.lines:  # every OCR line, faintly
            draw.polygon([(x, py + offsets[page_index]) for x, py in line.box], outline="#c8c8c8")
    colours = {f.name: PALETTE[i % len(PALETTE)] for i, f in enumerate(fields)}
    for field in fields:
        for n, evidence in enumerate(field.evidence):
            top = offsets[evidence.page] if evidence.page < len(offsets) else 0
            points = [(float(x), float(py) + top) for x, py in evidence.box]
            draw.polygon(points, outline=colours[field.name], width=line_width)
            if n > 0:  # a value on several lines: one label, on its first line
                continue
            _label(draw, (min(p[0] for p in points), min(p[1] for p in points)),
                   f"{field.name} {STATUS_MARK[field.status].split()[0]}", colours[field.name], font)
    _legend(draw, (width + size, size), entries, colours, font, size)
    return canvas


def _legend_entries(result: Extraction, fields: list[FieldResult]) -> list[tuple[str, FieldResult | None]]:
    """Legend lines: a title, then per field "name: status (confidence)" and its value, indented."""
    entries: list[tuple[str, FieldResult | None]] = [
        (f"{Path(result.source).name} · {result.scenario or 'no scenario'}", None)
    ]
    for field in fields:
        confidence = f" ({field.confidence:.2f})" if field.confidence is not None else ""
        entries.append((f"{field.name}: {STATUS_MARK[field.status]}{confidence}", field))
        entries.append((f"    {_shorten(field.value, 48)}", None))
    if not result.ocr.get("has_boxes", True):
        entries.append(("(boxes are synthetic: text input)", None))
    return entries


def _legend(draw: ImageDraw.ImageDraw, origin: tuple[int, int], entries: list[tuple[str, FieldResult | None]],
            colours: dict[str, str], font: Font, size: int) -> None:
    x, y = origin
    for text, field in entries:
        text = _printable(text)
        if field is not None:
            draw.rectangle((x, y + 2, x + size, y + size + 2), fill=colours[field.name])
            draw.text((x + size + 8, y), text, fill="black" if field.status == "grounded" else "#666666", font=font)
        else:
            draw.text((x, y), text, fill="black", font=font)
        y += size + 10


def drawing_path(out_dir: Path, source: Path, page: int | None = None) -> Path:
    """DIR/<stem>.png, with a short hash of the full path so that a.jpg in two folders do not clash
    (and -p<page> for a per-page result, so that the pages of one PDF do not overwrite each other)."""
    tag = hashlib.sha1(str(source.resolve()).encode("utf-8")).hexdigest()[:6]
    stem = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in source.stem)
    return out_dir / f"{stem}-{tag}{'' if page is None else f'-p{page}'}.png"


def save_drawing(result: Extraction, document: OCRDocument, source: Path, out_dir: Path) -> Path:
    """Write the drawing atomically (chatocr.fileio: a fresh temp file, never a planted link)."""
    target = drawing_path(out_dir, source, result.page)
    buffer = io.BytesIO()
    draw_extraction(result, document, source).save(buffer, format="PNG")
    atomic_write(target, buffer.getvalue())
    return target
