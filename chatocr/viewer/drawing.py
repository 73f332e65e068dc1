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
from chatocr.ocr.images import load_input
from chatocr.ocr.types import Box, OCRDocument, Page
from chatocr.secrets import redact

__all__ = ["FONT_CANDIDATES", "draw_extraction", "drawing_path", "find_font_path", "place_label", "save_drawing"]

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# Distinct colours (Tableau 10 and a few more), one per field in order.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#637939",
)
STATUS_MARK = {
    "grounded": "✓ grounded",
    "low_confidence": "~ low-confidence",
    "ungrounded": "? ungrounded",
    "missing": "– missing",
    "invalid": "✗ invalid",
}
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
        Page(
            page.index,
            max(1, int(page.width * k)),
            max(1, int(page.height * k)),
            tuple(replace(line, box=box(line.box)) for line in page.lines),
        )
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
            return [
                image.convert("RGB").resize((page.width, page.height))
                if image.size != (page.width, page.height)
                else image.convert("RGB")
                for image, page in zip(images, document.pages, strict=False)
            ]
        except Exception:  # a drawing is a convenience: fall back to blank pages
            pass
    return [Image.new("RGB", (max(page.width, 200), max(page.height, 100)), "white") for page in document.pages]


def _shorten(value: object, limit: int = 40) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


def _overlap(a: Rect, b: Rect) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def place_label(size: tuple[float, float], box: Rect, obstacles: list[Rect], canvas: Rect) -> Rect:
    """Where a label of `size` goes for a field boxed at `box`: above it, below it, right of it or
    left of it (in that order of preference), whichever covers the least of the `obstacles` (the
    other OCR lines and the labels placed before); inside the canvas."""
    width, height = size
    x0, y0, x1, y1 = box
    candidates = [(x0, y0 - height - 2), (x0, y1 + 2), (x1 + 4, y0), (x0 - width - 4, y0)]
    best: tuple[float, int, Rect] | None = None
    for rank, (x, y) in enumerate(candidates):
        x = min(max(x, canvas[0]), canvas[2] - width)
        y = min(max(y, canvas[1]), canvas[3] - height)
        rect = (x, y, x + width, y + height)
        covered = sum(_overlap(rect, other) for other in obstacles)
        if best is None or (covered, rank) < best[:2]:
            best = (covered, rank, rect)
    assert best is not None
    return best[2]


def _label(draw: ImageDraw.ImageDraw, rect: Rect, text: str, colour: str, font: Font) -> None:
    left, top, _, _ = draw.textbbox((0, 0), text, font=font)
    draw.rectangle(rect, fill=colour)
    draw.text((rect[0] + 3 - left, rect[1] + 3 - top), text, fill="white", font=font)


def _label_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[float, float]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left + 6, bottom - top + 6


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
    # Labels must not hide the text they explain, nor the lines around it, nor each other.
    obstacles: list[Rect] = [
        _bounds([(x, py + offsets[i]) for x, py in line.box])
        for i, ocr_page in enumerate(document.pages[: len(pages)])
        for line in ocr_page.lines
    ]
    for field in fields:
        for n, evidence in enumerate(field.evidence):
            top = offsets[evidence.page] if evidence.page < len(offsets) else 0
            points = [(float(x), float(py) + top) for x, py in evidence.box]
            draw.polygon(points, outline=colours[field.name], width=line_width)
            if n > 0:  # a value on several lines: one label, on its first line
                continue
            text = _printable(f"{field.name} {STATUS_MARK[field.status].split()[0]}")
            rect = place_label(_label_size(draw, text, font), _bounds(points), obstacles, (0, 0, width, canvas.height))
            _label(draw, rect, text, colours[field.name], font)
            obstacles.append(rect)
    _legend(draw, (width + size, size), entries, colours, font, size)
    return canvas


def _bounds(points: list[tuple[float, float]]) -> Rect:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


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


def _legend(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    entries: list[tuple[str, FieldResult | None]],
    colours: dict[str, str],
    font: Font,
    size: int,
) -> None:
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
