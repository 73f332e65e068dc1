"""Reading-order text: rows by y-overlap, cells by x, spans back to line ids."""

from __future__ import annotations

import math

import pytest

from chatocr.ocr import OCRDocument, group_rows
from chatocr.ocr.layout import MAX_SPACES
from chatocr.ocr.types import Box, OCRLine, Page

from .helpers import document, rect


def rotated(x0: float, y0: float, x1: float, y1: float, degrees: float, cx: float = 500, cy: float = 500) -> Box:
    angle = math.radians(degrees)

    def turn(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - cx, y - cy
        return cx + dx * math.cos(angle) - dy * math.sin(angle), cy + dx * math.sin(angle) + dy * math.cos(angle)

    a, b, c, d = rect(x0, y0, x1, y1)
    return turn(*a), turn(*b), turn(*c), turn(*d)


def test_key_and_value_on_one_row_stay_together_even_when_the_engine_lists_them_apart() -> None:
    doc = document(
        ("金额：", rect(60, 300, 170, 340)),
        ("税率：6%", rect(60, 380, 220, 420)),
        ("¥8,490.57", rect(640, 302, 820, 338)),  # listed last by the engine, but on the first row
    )
    assert doc.text().splitlines() == ["金额：" + " " * MAX_SPACES + "¥8,490.57", "税率：6%"]
    assert doc.text(layout=False).splitlines() == ["金额：", "税率：6%", "¥8,490.57"]


def test_spacing_is_proportional_to_the_gap() -> None:
    # 10 px per character (100 px wide, 10 chars): a 30 px gap is 3 spaces, a 5 px gap one.
    doc = document(
        ("abcdefghij", rect(0, 0, 100, 20)),
        ("klm", rect(130, 0, 160, 20)),
        ("n", rect(165, 0, 175, 20)),
    )
    assert doc.text() == "abcdefghij   klm n"


def test_multi_column_rows_keep_left_to_right_order() -> None:
    doc = document(
        ("C2", rect(600, 100, 650, 130)),
        ("A1", rect(0, 50, 50, 80)),
        ("B1", rect(300, 52, 350, 82)),
        ("C1", rect(600, 48, 650, 78)),
        ("A2", rect(0, 100, 50, 130)),
    )
    rows = [[line.text for line in row] for row in group_rows(doc.lines)]
    assert rows == [["A1", "B1", "C1"], ["A2", "C2"]]


def test_stacked_lines_that_overlap_horizontally_are_separate_rows() -> None:
    # A tall line next to two short ones: the short ones overlap each other horizontally.
    doc = document(
        ("top", rect(0, 0, 100, 22)),
        ("bottom", rect(10, 14, 110, 36)),
    )
    assert [[line.text for line in row] for row in group_rows(doc.lines)] == [["top"], ["bottom"]]


def test_one_line_detected_as_two_overlapping_boxes_stays_one_row() -> None:
    # A station name printed with spaced characters: the detector boxed the first character alone
    # and the rest in a box that overlaps it; the boxes share their height, so they are one line.
    doc = document(
        ("波站", rect(354, 190, 864, 365)),
        ("G7532", rect(950, 192, 1300, 366)),
        ("宁", rect(291, 226, 424, 355)),
        ("Ningbo", rect(418, 342, 700, 444)),
    )
    assert [[line.text for line in row] for row in group_rows(doc.lines)] == [["宁", "波站", "G7532"], ["Ningbo"]]
    assert doc.text().splitlines()[0].startswith("宁 波站")


def test_skewed_page_still_groups_rows() -> None:
    # Rows 40 px apart; the page is rotated 4 degrees, so the right-hand cell of a row sits
    # about 40 px lower than its key: without deskewing it would fall into the next row.
    cells = []
    for row in range(6):
        y = 100 + row * 40
        cells.append((f"key{row}", rotated(50, y, 200, y + 24, 4)))
        cells.append((f"value{row}", rotated(650, y, 800, y + 24, 4)))
    doc = document(*cells)
    rows = [[line.text for line in row] for row in group_rows(doc.lines)]
    assert rows == [[f"key{r}", f"value{r}"] for r in range(6)]


@pytest.mark.parametrize("degrees", [90, 180, 270, 94, 176, -87, 40, -38, 130])
def test_a_page_turned_or_tilted_keeps_its_rows(degrees: float) -> None:
    """Each box lists its corners from its text's top-left (as RapidEngine gives a turned page's
    lines), so the text runs down, left or up: rows and reading order are found all the same; and
    on a page tilted up to 45 degrees (a phone held at an angle; rows were lost past 30 before)."""
    cells = [("TITLE LINE OF THE PAGE", rotated(50, 40, 500, 64, degrees))]
    for row in range(6):
        y = 100 + row * 40
        cells.append((f"key{row}", rotated(50, y, 200, y + 24, degrees)))
        cells.append((f"value{row}", rotated(650, y, 800, y + 24, degrees)))
    rows = [[line.text for line in row] for row in group_rows(document(*reversed(cells)).lines)]
    assert rows == [["TITLE LINE OF THE PAGE"]] + [[f"key{r}", f"value{r}"] for r in range(6)]


def test_a_few_lines_the_other_way_do_not_turn_the_page() -> None:
    # Two vertical labels on an upright page (a margin note, a stamp): the upright rows win.
    cells = [(f"key{r}", rect(50, 100 + r * 40, 200, 124 + r * 40)) for r in range(4)]
    cells += [(f"note{i}", rotated(900, 100 + i * 200, 1050, 124 + i * 200, 90)) for i in range(2)]
    rows = [[line.text for line in row] for row in group_rows(document(*cells).lines)]
    assert [row[0] for row in rows if row[0].startswith("key")] == [f"key{r}" for r in range(4)]


def test_spans_map_text_ranges_back_to_line_ids() -> None:
    doc = document(("Total:", rect(0, 0, 60, 20)), ("RM 9.00", rect(200, 0, 270, 20)), ("Cash", rect(0, 40, 40, 60)))
    layout = doc.layout()
    start = layout.text.index("9.00")
    assert layout.line_ids(start, start + 4) == ["p0-l1"]
    assert layout.line_ids(0, len(layout.text)) == ["p0-l0", "p0-l1", "p0-l2"]
    assert layout.line_ids(layout.text.index("Total"), layout.text.index("RM") + 2) == ["p0-l0", "p0-l1"]
    # The spacing between cells belongs to no line.
    gap = layout.text.index(":") + 1
    assert layout.line_ids(gap, gap + 1) == []
    span = next(span for span in layout.spans if span.line_id == "p0-l2")
    assert layout.text[span.start : span.end] == "Cash"


def test_normalize_applies_nfkc_and_spans_follow_the_normalised_text() -> None:
    doc = document(("金額：", rect(0, 0, 60, 20)), ("￥８，４９０．５７", rect(200, 0, 380, 20)))
    layout = doc.layout(normalize=True)
    assert "¥8,490.57" in layout.text
    assert "金額:" in layout.text
    start = layout.text.index("¥8,490.57")
    assert layout.line_ids(start, start + 9) == ["p0-l1"]
    assert "￥８" in doc.text()  # not normalised unless asked


def test_pages_are_separated_clearly() -> None:
    first = Page(0, 100, 100, (OCRLine("p0-l0", "one", rect(0, 0, 30, 10), 1.0),))
    second = Page(1, 100, 100, (OCRLine("p1-l0", "two", rect(0, 0, 30, 10), 1.0),))
    doc = OCRDocument((first, second), "fake", "m", "<test>", 0.0)
    assert doc.text() == "--- page 1 of 2 ---\none\n\n--- page 2 of 2 ---\ntwo"
    layout = doc.layout()
    assert layout.line_ids(layout.text.index("two"), layout.text.index("two") + 3) == ["p1-l0"]


def test_empty_document_renders_empty_text() -> None:
    doc = OCRDocument((Page(0, 10, 10, ()),), "fake", "m", "<test>", 0.0)
    assert doc.text() == ""
    assert doc.layout().line_ids(0, 5) == []


def test_document_json_round_trip() -> None:
    doc = document(("金额：", rect(0, 0, 60, 20)), ("¥8,490.57", rect(200, 0.5, 380, 20)))
    again = OCRDocument.from_dict(doc.to_dict())
    assert again == doc
    assert again.line("p0-l1").text == "¥8,490.57"
