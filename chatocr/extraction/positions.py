"""Fields whose meaning is their position: put swapped answers back by where they sit.

A train ticket's start and destination stations, an invoice's buyer and seller look alike; what
tells them apart is the page: the start station is left of the arrow (the train number), the buyer's
block is above the seller's. A small model sometimes answers them the other way round. A scenario
declares the order (`before:` on a field: "this field precedes that one, left of it on the same
row, else above it"); after extraction, when both values are grounded on different lines and their
lines sit the other way round, the two answers are exchanged and a warning says so.

Decided from the boxes, not from the model: the boxes are the OCR's, and "left of / above" is
geometry. Values that are not both grounded, or share a line, are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from chatocr.extraction.result import Evidence, FieldResult
from chatocr.scenarios.model import FieldSpec

__all__ = ["precedes", "put_back_by_position"]

# Two boxes are on one row when they overlap vertically by this share of the smaller height
# (the layout renderer's rule, chatocr.ocr.layout.ROW_OVERLAP).
_ROW_OVERLAP = 0.5


def _bounds(evidence: Evidence) -> tuple[float, float, float, float]:
    xs = [p[0] for p in evidence.box]
    ys = [p[1] for p in evidence.box]
    return min(xs), min(ys), max(xs), max(ys)


def precedes(a: Evidence, b: Evidence) -> bool | None:
    """Whether line `a` comes before line `b` on the page: left of it on one row, else above it.
    None when it cannot be told (another page, the same line)."""
    if a.page != b.page:
        return a.page < b.page
    if a.line_id == b.line_id:
        return None
    ax0, ay0, ax1, ay1 = _bounds(a)
    bx0, by0, bx1, by1 = _bounds(b)
    overlap = max(0.0, min(ay1, by1) - max(ay0, by0))
    smaller = max(min(ay1 - ay0, by1 - by0), 1e-6)
    if overlap / smaller >= _ROW_OVERLAP:
        return (ax0 + ax1) < (bx0 + bx1)
    return (ay0 + ay1) < (by0 + by1)


def _swapped(first: FieldResult, second: FieldResult) -> tuple[FieldResult, FieldResult]:
    """Each result with the other's answer, keeping its own name and `required`."""

    def take(target: FieldResult, source: FieldResult) -> FieldResult:
        return replace(source, name=target.name, required=target.required)

    return take(first, second), take(second, first)


def put_back_by_position(
    fields: Sequence[FieldSpec], results: Mapping[str, FieldResult]
) -> tuple[dict[str, FieldResult], list[str]]:
    """The results with every declared pair in page order, and a warning per pair exchanged."""
    out = dict(results)
    warnings: list[str] = []
    names = {f.name for f in fields}
    for field in fields:
        other = field.before
        if other is None or other not in names or field.name not in out or other not in out:
            continue
        first, second = out[field.name], out[other]
        if first.status != "grounded" or second.status != "grounded" or not first.evidence or not second.evidence:
            continue
        if precedes(first.evidence[0], second.evidence[0]) is False:
            out[field.name], out[other] = _swapped(first, second)
            warnings.append(
                f"{field.name} and {other} were answered the other way round: exchanged by where they sit "
                f"({field.name} comes first on the page)"
            )
    return out, warnings
