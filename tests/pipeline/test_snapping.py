"""Snapping: a grounded value is returned as the page's own text, the model's answer kept beside.

The cases are written for these tests (synthetic receipts and tickets); they are also what the
thresholds in chatocr/extraction/snapping.py were chosen on.
"""

from __future__ import annotations

import pytest

from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import FieldResult
from chatocr.extraction.snapping import page_text_for, snap_result, snap_value
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.scenarios import FieldSpec
from chatocr.scenarios.model import FieldType


def document(*rows: str | tuple[str, ...]) -> OCRDocument:
    """One OCR line per cell; cells of a row side by side, rows 40 px apart."""
    lines = []
    for r, row in enumerate(rows):
        cells = (row,) if isinstance(row, str) else row
        x = 10.0
        for cell in cells:
            width = 12.0 * len(cell)
            y = 10.0 + 40 * r
            box = ((x, y), (x + width, y), (x + width, y + 24), (x, y + 24))
            lines.append(OCRLine(f"p0-l{len(lines)}", cell, box, 0.95))
            x += width + 120
    return OCRDocument((Page(0, 1000, 40 * len(rows) + 40, tuple(lines)),), "test", "test", "test.png", 0.0)


def index_of(*rows: str | tuple[str, ...]) -> TextIndex:
    return TextIndex(document(*rows).layout())


def snapped(index: TextIndex, value: str, kind: str = "text") -> str | None:
    match = index.find(value, kind)
    assert match is not None, f"{value!r} should be grounded"
    snap = snap_value(value, index, match, kind)
    return None if snap is None else snap.text


RECEIPT = index_of(
    "BOOK CORNER (TAMAN DAYA)",
    "SDN BHD.",
    "NO. 5, JALAN BESAR 3,",
    "81100 JOHOR BAHRU, JOHOR",
    ("DATE:", "21/06/2019"),
    ("TOTAL", "RM 25,000.00"),
)
TICKET = index_of(("北京南站", "G123", "上海虹桥站"), "2019年06月21日 08:00开")


@pytest.mark.parametrize(
    ("index", "answer", "kind", "page"),
    [
        (TICKET, "北京南", "text", "北京南站"),  # the station without 站
        (TICKET, "上海虹桥", "text", "上海虹桥站"),
        (RECEIPT, "21-06-2019", "date", "21/06/2019"),  # the model's form of the page's date
        (RECEIPT, "2019-06-21", "date", "21/06/2019"),
        (RECEIPT, "25000.00", "amount", "25,000.00"),
        (RECEIPT, "book corner (taman daya)", "text", "BOOK CORNER (TAMAN DAYA)"),  # normalized match
        (RECEIPT, "SDN BHD", "text", "SDN BHD."),  # what is left of the line is only punctuation
        # A comma dropped (fuzzy match over three lines): the page's address, commas and all.
        (
            RECEIPT,
            "NO. 5 JALAN BESAR 3 81100 JOHOR BAHRU JOHOR",
            "text",
            "NO. 5, JALAN BESAR 3, 81100 JOHOR BAHRU, JOHOR",
        ),
    ],
)
def test_answers_snap_to_the_pages_own_text(index: TextIndex, answer: str, kind: str, page: str) -> None:
    assert snapped(index, answer, kind) == page


def test_lines_on_one_row_or_several_are_joined_as_text_is_written() -> None:
    # "汉" and "口站" read as two boxes on one row: the layout puts spaces between them.
    split = index_of(("汉", "口站"), "LOT 7,", "JALAN MERDEKA")
    match = split.find("汉口站")
    assert match is not None and page_text_for(split, match).text == "汉口站"  # no space inside
    assert snapped(split, "汉口站") is None  # so the answer is the page's text already
    assert snapped(split, "lot 7, jalan merdeka") == "LOT 7, JALAN MERDEKA"


@pytest.mark.parametrize(
    ("index", "answer", "kind"),
    [
        (RECEIPT, "BOOK CORNER (TAMAN DAYA)", "text"),  # already the page's text
        (RECEIPT, "21/06/2019", "date"),
        (TICKET, "G123", "text"),
    ],
)
def test_an_answer_that_is_the_pages_text_is_kept(index: TextIndex, answer: str, kind: str) -> None:
    assert snapped(index, answer, kind) is None


def test_snapping_never_takes_a_line_without_most_of_the_answers_characters() -> None:
    # "北京" is a whole token's small part here: the token holds many other characters.
    index = index_of("购买方名称北京某某科技有限公司", "G1234北京")
    assert snapped(index, "北京某某科技有限公司") is None  # the label glued on would be added
    assert snapped(index, "北京") is None  # "G1234北京" is mostly something else


def test_an_ocr_misreading_the_model_corrected_is_not_brought_back() -> None:
    index = index_of("BOOK TA .K(TAMAN DAYA) SDN BND", "NO.55, JALAN PERDANA")
    assert snapped(index, "BOOK TA .K(TAMAN DAYA) SDN BHD") is None  # fuzzy, letters differ
    assert snapped(index, "NO.53 JALAN PERDANA") is None  # a digit differs
    assert snapped(index, "NO.55 JALAN PERDANA") == "NO.55, JALAN PERDANA"  # only the comma differs


def test_a_number_inside_a_longer_number_is_not_widened() -> None:
    index = index_of(("TOTAL", "9.000"))
    match = index.find("9.00", "amount")
    assert match is not None
    snap = snap_value("9.00", index, match, "amount")
    assert snap is None or snap.text != "9.000"


def test_noise_document_keeps_the_answer_and_the_result_records_both() -> None:
    noise = index_of("~~ ,. :; ||", "#%&* ^^ '' \"\"", "lIl1 oO0 ..")
    field = FieldSpec(name="company")
    answer = FieldResult("company", "ACME SDN BHD", "ACME SDN BHD", status="ungrounded")
    assert snap_result(field, answer, noise) is answer  # ungrounded: nothing to snap to
    grounded = FieldResult("company", "lIl1", "lIl1", status="grounded", match="exact", match_score=1.0)
    assert snap_result(field, grounded, noise) is grounded  # already the page's text


def test_snap_result_keeps_the_models_answer_and_renormalises() -> None:
    field = FieldSpec(name="date", type=FieldType.date)
    result = FieldResult("date", "2019-06-21", "2019-06-21", status="grounded", match="date", match_score=1.0)
    out = snap_result(field, result, RECEIPT)
    assert (out.value, out.answer, out.normalized, out.snap) == ("21/06/2019", "2019-06-21", "2019-06-21", "span")
    station = FieldSpec(name="starting_station")
    result = FieldResult("starting_station", "北京南", "北京南", status="grounded", match="exact", match_score=0.9)
    out = snap_result(station, result, TICKET)
    assert (out.value, out.answer, out.normalized) == ("北京南站", "北京南", "北京南站")


def test_enum_and_list_fields_are_not_snapped() -> None:
    grade = FieldSpec(name="grade", type=FieldType.enum, choices=("二等座", "一等座"))
    result = FieldResult("grade", "二等座", "二等座", status="grounded", match="exact", match_score=0.9)
    assert snap_result(grade, result, index_of("二等座位")) is result
