"""Row grouping at scale: the O(n log n) grouping gives exactly the rows of the plain quadratic
search it replaced, and a page over the line limit is refused before any work."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatocr.errors import DocumentTooLargeError
from chatocr.ocr import layout
from chatocr.ocr.layout import ROW_OVERLAP, SAME_LINE, STACK_OVERLAP, group_rows
from chatocr.ocr.types import OCRLine


def reference_rows(lines: list[OCRLine]) -> list[list[str]]:
    """The grouping as issue 18 found it (with the one-line-detected-twice rule added since): every
    line against every row (O(n^2)); boxes axis-aligned."""

    def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
        return max(0.0, min(a1, b1) - max(a0, b0))

    rows: list[dict[str, object]] = []
    items = [(line, *line.bounds) for line in lines]
    for line, x0, y0, x1, y1 in sorted(items, key=lambda it: ((it[2] + it[4]) / 2, it[1])):
        height, width = max(y1 - y0, 1e-6), max(x1 - x0, 1e-6)
        best, best_share = None, ROW_OVERLAP
        for row in rows:
            r0, r1, members = row["y0"], row["y1"], row["items"]
            share = overlap(y0, y1, r0, r1) / min(height, r1 - r0 or 1e-6)  # type: ignore[operator]
            if share < best_share:
                continue
            stacked = any(
                overlap(x0, x1, o[1], o[3]) > STACK_OVERLAP * min(width, max(o[3] - o[1], 1e-6))
                and overlap(y0, y1, o[2], o[4]) < SAME_LINE * min(height, max(o[4] - o[2], 1e-6))
                for o in members  # type: ignore[attr-defined]
            )
            if not stacked:
                best, best_share = row, share
        if best is None:
            rows.append({"y0": y0, "y1": y1, "items": [(line, x0, y0, x1, y1)]})
        else:
            members = best["items"]
            members.append((line, x0, y0, x1, y1))  # type: ignore[attr-defined]
            n = len(members)  # type: ignore[arg-type]
            best["y0"] += (y0 - best["y0"]) / n  # type: ignore[operator]
            best["y1"] += (y1 - best["y1"]) / n  # type: ignore[operator]
    rows.sort(key=lambda row: (row["y0"] + row["y1"]) / 2)  # type: ignore[operator]
    return [[m[0].id for m in sorted(row["items"], key=lambda m: m[1])] for row in rows]  # type: ignore[attr-defined]


boxes = st.lists(
    st.tuples(st.integers(0, 600), st.integers(0, 300), st.integers(5, 200), st.integers(4, 40)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(boxes)
def test_grouping_equals_the_quadratic_search(spec: list[tuple[int, int, int, int]]) -> None:
    lines = [
        OCRLine(f"l{n}", f"t{n}", ((x, y), (x + w, y), (x + w, y + h), (x, y + h)), 1.0)
        for n, (x, y, w, h) in enumerate(spec)
    ]
    assert [[line.id for line in row] for row in group_rows(lines)] == reference_rows(lines)


def test_a_page_over_the_line_limit_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "MAX_LINES_PER_PAGE", 10)
    lines = [
        OCRLine(f"l{n}", "x", ((0, n * 20), (50, n * 20), (50, n * 20 + 15), (0, n * 20 + 15)), 1.0) for n in range(11)
    ]
    with pytest.raises(DocumentTooLargeError, match="11 text lines, over the limit of 10"):
        group_rows(lines)
    assert len(group_rows(lines[:10])) == 10
