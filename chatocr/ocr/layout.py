"""Reading-order text: OCR lines grouped into visual rows, so a key and its value stay together.

Engines return one entry per detected text line, and a key and its value on the same visual row
(`金额：` ... `¥8,490.57`) often come back as two lines, sometimes far apart in the list. Giving
the LLM "one OCR line per text line" separates them; this module puts them back on one row:

1. Estimate the page's rotation from the lines' top edges and undo it, so a slightly rotated scan
   still groups rows correctly, and a page photographed sideways or upside down too.
2. Group lines into rows by vertical overlap (at least half the smaller line's height), never
   putting two lines that overlap horizontally into one row (they are stacked, not side by side).
3. Rows top to bottom; cells left to right, separated by spaces proportional to the gap
   (at least 2 when the gap is at least one character wide, at most MAX_SPACES).

`LayoutText.spans` maps every character range of the rendered text back to its line id; the
extraction pipeline grounds values to boxes with `LayoutText.line_ids(start, end)`.
"""

from __future__ import annotations

import bisect
import math
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatocr.errors import DocumentTooLargeError

if TYPE_CHECKING:  # only for annotations: types.py imports this module, not the other way round
    from chatocr.ocr.types import OCRLine, Page

__all__ = [
    "MAX_LINES_PER_PAGE",
    "MAX_SPACES",
    "LayoutText",
    "Span",
    "check_line_count",
    "display_width",
    "group_rows",
    "plain_text",
    "render_layout",
]

MAX_SPACES = 8
# A line joins a row when it overlaps the row vertically by this share of the smaller height.
ROW_OVERLAP = 0.5
# Two lines overlapping horizontally by this share of the narrower one are stacked, not a row ...
STACK_OVERLAP = 0.3
# ... unless they also overlap vertically by this share of the shorter one: one line, boxed twice.
SAME_LINE = 0.8
# The most lines one page may hold. Grouping is O(n log n) (20,000 lines in well under a second,
# benchmarks/bench_layout.py); the limit keeps a hostile or broken input from costing minutes in
# the LLM prompt downstream. Receipts and invoices have tens to a few hundred lines.
MAX_LINES_PER_PAGE = 50_000
_QUARTER = math.pi / 2


def check_line_count(count: int, where: str = "the page") -> None:
    """Raise DocumentTooLargeError for a page over MAX_LINES_PER_PAGE, before any work on it."""
    if count > MAX_LINES_PER_PAGE:
        raise DocumentTooLargeError(
            f"{where} has {count} text lines, over the limit of {MAX_LINES_PER_PAGE} per page.",
            hint="Split the document into smaller parts (e.g. one page or section per file).",
        )


@dataclass(frozen=True, slots=True)
class Span:
    """Characters [start, end) of the rendered text come from line `line_id`."""

    start: int
    end: int
    line_id: str


@dataclass(frozen=True, slots=True)
class LayoutText:
    text: str
    spans: tuple[Span, ...] = ()
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(span.start for span in self.spans))

    def spans_between(self, start: int, end: int) -> list[Span]:
        """The spans overlapping characters [start, end), in text order."""
        if end <= start:
            return []
        # Spans are sorted and disjoint: begin at the last span starting at or before `start`.
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        found = []
        for span in self.spans[first:]:
            if span.start >= end:
                break
            if span.end > start:
                found.append(span)
        return found

    def line_ids(self, start: int, end: int) -> list[str]:
        """Ids of the OCR lines covering characters [start, end) (each once, in text order)."""
        seen: dict[str, None] = {}
        for span in self.spans_between(start, end):
            seen.setdefault(span.line_id, None)
        return list(seen)


@dataclass(slots=True)
class _Item:
    line: OCRLine
    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1e-6)

    @property
    def width(self) -> float:
        return max(self.x1 - self.x0, 1e-6)


@dataclass(slots=True)
class _Row:
    items: list[_Item]
    y0: float
    y1: float
    x0s: list[float]  # the members' left edges, sorted (for the horizontal overlap check)
    widest: float  # the widest member's width
    by_x: list[_Item] = field(default_factory=list)  # the members in x0s's order

    def __post_init__(self) -> None:
        if not self.by_x:
            self.by_x = list(self.items)

    def add(self, item: _Item) -> None:
        self.items.append(item)
        at = bisect.bisect_right(self.x0s, item.x0)
        self.x0s.insert(at, item.x0)
        self.by_x.insert(at, item)
        self.widest = max(self.widest, item.width)
        n = len(self.items)
        # A running mean keeps the row band from drifting down a page with many tall members.
        self.y0 += (item.y0 - self.y0) / n
        self.y1 += (item.y1 - self.y1) / n


def _rotation(lines: Sequence[OCRLine]) -> float:
    """The page's rotation in radians: the direction its text runs, a quarter turn at a time, plus
    the skew within that quarter (the median angle of the top edges of wide lines).

    A line's top edge runs from its first corner to its second: engines list the corners from the
    text's own top-left, so a page photographed sideways or upside down (whose lines the OCR read
    the right way up: ocr/rapid.py turns such pages) has its text running down, left or up, and its
    rows are found after turning it back. Most wide lines must agree on the quarter."""
    quarters: defaultdict[int, list[float]] = defaultdict(list)
    for line in lines:
        (ax, ay), (bx, by), _, (dx, dy) = line.box
        # Only lines clearly longer along their text than across it say which way the text runs.
        if math.hypot(bx - ax, by - ay) > 2 * math.hypot(dx - ax, dy - ay):
            angle = math.atan2(by - ay, bx - ax)
            quarter = round(angle / _QUARTER) % 4
            quarters[quarter].append((angle - quarter * _QUARTER + math.pi) % (2 * math.pi) - math.pi)
    if not quarters:
        return 0.0
    quarter, skews = max(quarters.items(), key=lambda item: len(item[1]))
    if quarter and 2 * len(skews) <= sum(len(v) for v in quarters.values()):
        quarter, skews = 0, quarters.get(0, [0.0])
    # Within a quarter a skew is at most 45 degrees either way: a phone held at an angle.
    return quarter * _QUARTER + statistics.median(skews)


def _items(lines: Sequence[OCRLine], normalize: bool) -> list[_Item]:
    angle = _rotation(lines)
    cos, sin = math.cos(-angle), math.sin(-angle)
    items = []
    for line in lines:
        xs, ys = [], []
        for x, y in line.box:
            xs.append(x * cos - y * sin)
            ys.append(x * sin + y * cos)
        text = unicodedata.normalize("NFKC", line.text) if normalize else line.text
        items.append(_Item(line, text, min(xs), min(ys), max(xs), max(ys)))
    return items


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


class _RowIndex:
    """The rows found so far, findable by vertical band in O(rows overlapping) instead of O(all rows).

    Rows are registered in fixed-height y buckets covering their band; a query collects the rows of
    the buckets an item covers. The bucket height is at least the page's span / line count, so a
    page never has more buckets than lines, whatever its coordinates."""

    def __init__(self, items: list[_Item]) -> None:
        heights = sorted(item.height for item in items)
        top = min(item.y0 for item in items)
        span = max(item.y1 for item in items) - top
        self.top = top
        self.size = max(heights[len(heights) // 2], span / len(items), 1e-6)
        self.buckets: defaultdict[int, set[int]] = defaultdict(set)
        self.rows: list[_Row] = []

    def _range(self, y0: float, y1: float) -> range:
        return range(int((y0 - self.top) // self.size), int((y1 - self.top) // self.size) + 1)

    def overlapping(self, y0: float, y1: float) -> list[int]:
        """Indices (creation order) of rows whose band overlaps [y0, y1] by more than nothing."""
        found: set[int] = set()
        for bucket in self._range(y0, y1):
            found.update(self.buckets.get(bucket, ()))
        return sorted(n for n in found if _overlap(y0, y1, self.rows[n].y0, self.rows[n].y1) > 0)

    def new(self, item: _Item) -> None:
        self.rows.append(_Row([item], item.y0, item.y1, [item.x0], item.width))
        for bucket in self._range(item.y0, item.y1):
            self.buckets[bucket].add(len(self.rows) - 1)

    def add(self, index: int, item: _Item) -> None:
        row = self.rows[index]
        for bucket in self._range(row.y0, row.y1):
            self.buckets[bucket].discard(index)
        row.add(item)
        for bucket in self._range(row.y0, row.y1):
            self.buckets[bucket].add(index)


def _stacked(item: _Item, row: _Row) -> bool:
    """Whether `item` overlaps a member of `row` horizontally (then it is stacked, not in the row).
    Only members starting within one widest-member width left of the item can overlap it. Two
    boxes that also share their height (SAME_LINE) are not stacked but two detections of one text
    line (a station name printed with spaced characters, `宁` and `波站` in overlapping boxes)."""
    first = bisect.bisect_right(row.x0s, item.x0 - row.widest)
    last = bisect.bisect_left(row.x0s, item.x1)
    return any(
        _overlap(item.x0, item.x1, other.x0, other.x1) > STACK_OVERLAP * min(item.width, other.width)
        and _overlap(item.y0, item.y1, other.y0, other.y1) < SAME_LINE * min(item.height, other.height)
        for other in row.by_x[first:last]
    )


def _rows(items: list[_Item]) -> list[list[_Item]]:
    """Visual rows. Each line (top to bottom by centre) joins the row it overlaps most vertically,
    by at least ROW_OVERLAP, that holds nothing it overlaps horizontally; ties go to the later row."""
    if not items:
        return []
    index = _RowIndex(items)
    for item in sorted(items, key=lambda it: ((it.y0 + it.y1) / 2, it.x0)):
        best: int | None = None
        best_share = ROW_OVERLAP
        for n in index.overlapping(item.y0, item.y1):
            row = index.rows[n]
            share = _overlap(item.y0, item.y1, row.y0, row.y1) / min(item.height, row.y1 - row.y0 or 1e-6)
            if share >= best_share and not _stacked(item, row):
                best, best_share = n, share
        if best is None:
            index.new(item)
        else:
            index.add(best, item)
    rows = sorted(index.rows, key=lambda row: (row.y0 + row.y1) / 2)
    return [sorted(row.items, key=lambda it: it.x0) for row in rows]


def group_rows(lines: Sequence[OCRLine]) -> list[list[OCRLine]]:
    """The lines of one page as visual rows, top to bottom, each row left to right.
    Raises DocumentTooLargeError over MAX_LINES_PER_PAGE lines."""
    check_line_count(len(lines))
    return [[item.line for item in row] for row in _rows(_items(lines, normalize=False))]


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _char_width(items: list[_Item]) -> float:
    """The page's typical width of one half-width character, in pixels."""
    widths = [item.width / display_width(item.text) for item in items if item.text.strip()]
    return statistics.median(widths) if widths else 10.0


def _spaces(gap: float, char_width: float) -> int:
    if gap < char_width:
        return 1
    return max(2, min(MAX_SPACES, round(gap / char_width)))


def render_layout(pages: Sequence[Page], normalize: bool = False) -> LayoutText:
    """Render pages as reading-order text with spans back to line ids."""
    parts: list[str] = []
    spans: list[Span] = []
    length = 0

    def emit(piece: str, line_id: str | None = None) -> None:
        nonlocal length
        if line_id is not None and piece:
            spans.append(Span(length, length + len(piece), line_id))
        parts.append(piece)
        length += len(piece)

    for number, page in enumerate(pages):
        if len(pages) > 1:
            emit(("\n" if number else "") + f"--- page {number + 1} of {len(pages)} ---\n")
        check_line_count(len(page.lines), f"page {number + 1}")
        items = _items(page.lines, normalize)
        char_width = _char_width(items)
        for row in _rows(items):
            previous: _Item | None = None
            for item in row:
                if previous is not None:
                    emit(" " * _spaces(item.x0 - previous.x1, char_width))
                emit(item.text, item.line.id)
                previous = item
            emit("\n")
    text = "".join(parts)
    # Drop the final newline (nothing maps to it) so the text ends with the last row.
    return LayoutText(text[:-1] if text.endswith("\n") else text, tuple(spans))


def plain_text(pages: Sequence[Page], normalize: bool = False) -> str:
    """One OCR line per text line, in the document's (reading) order."""
    texts = [line.text for page in pages for line in page.lines]
    if normalize:
        texts = [unicodedata.normalize("NFKC", text) for text in texts]
    return "\n".join(texts)
