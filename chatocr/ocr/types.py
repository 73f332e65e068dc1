"""What every OCR engine returns: a document of pages of lines, each line with a 4-point box.

These are plain frozen dataclasses with a JSON form (`to_dict`/`from_dict`) so that the cache,
results and transcripts can store them without pickling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# layout.py needs OCRLine/Page only for annotations, so this import is one-way (no import circle).
from chatocr.ocr.layout import LayoutText, plain_text, render_layout

__all__ = ["Box", "OCRDocument", "OCRLine", "Page", "Point", "box_from_any"]

Point = tuple[float, float]
# Four corners, clockwise from the top-left of the text as read (the PP-OCR convention).
Box = tuple[Point, Point, Point, Point]

# Bumped whenever the JSON form changes, so that old cache entries miss instead of misloading.
FORMAT_VERSION = 1


def box_from_any(value: Any) -> Box:
    """A Box from 4 points, 8 numbers (x1,y1..x4,y4) or 4 numbers (x0,y0,x1,y1).

    Raises ValueError for anything else; callers turn that into their own typed error.
    """
    try:
        flat = [float(v) for point in value for v in (point if isinstance(point, (list, tuple)) else [point])]
    except (TypeError, ValueError) as error:
        raise ValueError(f"not a box: {value!r}") from error
    if len(flat) == 4:
        x0, y0, x1, y1 = flat
        flat = [x0, y0, x1, y0, x1, y1, x0, y1]
    if len(flat) != 8:
        raise ValueError(f"a box needs 4 points, 8 numbers or 4 numbers, got {len(flat)} numbers")
    return (flat[0], flat[1]), (flat[2], flat[3]), (flat[4], flat[5]), (flat[6], flat[7])


@dataclass(frozen=True, slots=True)
class OCRLine:
    """One recognised line. `id` is unique within its document ("p0-l12": page 0, line 12 in
    reading order) and stable for the same OCR output, so the pipeline can cite it."""

    id: str
    text: str
    box: Box
    confidence: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The axis-aligned rectangle (x0, y0, x1, y1) around the box."""
        xs = [p[0] for p in self.box]
        ys = [p[1] for p in self.box]
        return min(xs), min(ys), max(xs), max(ys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "box": [[round(x, 2), round(y, 2)] for x, y in self.box],
            "confidence": round(self.confidence, 5),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OCRLine:
        return cls(str(data["id"]), str(data["text"]), box_from_any(data["box"]), float(data["confidence"]))


@dataclass(frozen=True, slots=True)
class Page:
    index: int
    width: int
    height: int
    lines: tuple[OCRLine, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "height": self.height,
            "lines": [line.to_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        return cls(
            int(data["index"]),
            int(data["width"]),
            int(data["height"]),
            tuple(OCRLine.from_dict(line) for line in data["lines"]),
        )


@dataclass(frozen=True, slots=True)
class OCRDocument:
    """The OCR of one input (an image, a multi-frame TIFF or a PDF).

    has_boxes: False when the engine gives text only (the `vlm` engine, plain-text input); the
        boxes are then synthetic (one row per line) and must not be drawn on the image.
    sha256: of the input bytes when known (the cache key's first part).
    cached: True when this copy came from the OCR cache.
    """

    pages: tuple[Page, ...]
    engine: str
    model: str
    source: str
    seconds: float
    has_boxes: bool = True
    sha256: str | None = None
    config: str = ""
    cached: bool = False
    warnings: tuple[str, ...] = field(default=())

    @property
    def lines(self) -> tuple[OCRLine, ...]:
        """Every line of every page, in reading order."""
        return tuple(line for page in self.pages for line in page.lines)

    def line(self, line_id: str) -> OCRLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(line_id)

    def pages_as_documents(self) -> tuple[OCRDocument, ...]:
        """One single-page document per page (a PDF page, a TIFF frame), for one result per page.

        Each keeps its Page as it is (index, size, line ids such as "p1-l3", boxes), so evidence
        found on it still names its page in the whole input; source, engine and hash are shared."""
        return tuple(replace(self, pages=(page,)) for page in self.pages)

    def layout(self, normalize: bool = False) -> LayoutText:
        return render_layout(self.pages, normalize=normalize)

    def text(self, layout: bool = True, normalize: bool = False) -> str:
        """The document as text: with `layout`, rows kept together and cells spaced as on the
        page; without, one OCR line per text line. `normalize` applies NFKC (full-width forms)."""
        if layout:
            return self.layout(normalize=normalize).text
        return plain_text(self.pages, normalize=normalize)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "engine": self.engine,
            "model": self.model,
            "source": self.source,
            "seconds": round(self.seconds, 4),
            "has_boxes": self.has_boxes,
            "sha256": self.sha256,
            "config": self.config,
            "warnings": list(self.warnings),
            "pages": [page.to_dict() for page in self.pages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OCRDocument:
        if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"unsupported OCR document format {data.get('format')!r}")
        return cls(
            pages=tuple(Page.from_dict(page) for page in data["pages"]),
            engine=str(data["engine"]),
            model=str(data.get("model", "")),
            source=str(data.get("source", "")),
            seconds=float(data.get("seconds", 0.0)),
            has_boxes=bool(data.get("has_boxes", True)),
            sha256=data.get("sha256"),
            config=str(data.get("config", "")),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )
