"""An amount, number or date is on the page only when the page holds that value: never a fuzzy
match, never a piece of a longer number (issue 34: a total of 8.00 "grounded" on `CHANGE 7.00`,
13.00 on `TOTAL 3.00`, 25/12/2019 on `25/12/2018`). Every path that grounds a typed value goes
through `TextIndex.find`: the checked loop, line items, snapping and free-text answers."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatocr.api import ChatOCR
from chatocr.extraction import TextIndex
from chatocr.extraction.answers import check_answer
from chatocr.extraction.grounding import number_value
from chatocr.extraction.items import ground_parts
from chatocr.extraction.result import FieldResult
from chatocr.extraction.snapping import snap_result
from chatocr.extraction.validation import check_value, date_readings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.ocr.layout import LayoutText, Span
from chatocr.ocr.text import TextEngine
from chatocr.scenarios import FieldSpec


def layout_of(*lines: str) -> LayoutText:
    text, spans, at = "", [], 0
    for i, line in enumerate(lines):
        spans.append(Span(at, at + len(line), f"p0-l{i}"))
        text += line + "\n"
        at += len(line) + 1
    return LayoutText(text.rstrip("\n"), tuple(spans))


# (page lines, value, kind): the value is NOT on the page.
NEAR_MISSES = [
    (("CASH 15.00", "CHANGE 7.00"), "8.00", "amount"),
    (("SUBTOTAL 3.00", "TOTAL 3.00"), "13.00", "amount"),
    (("TOTAL 13.00",), "3.00", "amount"),
    (("TOTAL 19.00",), "9.00", "amount"),
    (("TOTAL 1,234,567.00",), "1,234", "amount"),
    (("TOTAL 1,234,567.00",), "234,567.00", "amount"),
    (("TOTAL 9.00",), "9.01", "amount"),
    (("TOTAL RM 2,500.00",), "25,000.00", "amount"),
    (("TICKETS 12",), "2", "number"),
    (("DATE 25/12/2018",), "25/12/2019", "date"),
    (("DATE 25/12/2018",), "2019-12-25", "date"),
    (("DATE 25/12/2019",), "5/12/2019", "date"),
    (("DATE 2024年03月18日",), "2024-03-19", "date"),
    (("INVOICE 125/12/2019",), "25/12/2019", "date"),
    (("DATE 14 Mar 2018",), "14 Mar 2019", "date"),
]

# (page lines, value, kind, the page's text the match must cover)
ON_THE_PAGE = [
    (("TOTAL RM 1,234.50",), "1234.50", "amount", "1,234.50"),
    (("TOTAL 9.00",), "RM9.00", "amount", "9.00"),
    (("TOTAL 9.00",), "9", "amount", "9.00"),  # a model answering the number 9: the same value
    (("TOTAL RM9.00",), "9.00", "amount", "9.00"),
    (("Summe 1.234,56 €",), "1234.56", "amount", "1.234,56"),
    (("TOTAL 25 000.00",), "25000.00", "amount", "25 000.00"),
    (("合计 ￥8,490.57",), "8490.57", "amount", "8,490.57"),
    (("CHANGE 7.00", "TOTAL 8.00"), "8.00", "amount", "8.00"),
    (("DATE 2024年03月18日",), "2024-03-18", "date", "2024年03月18日"),
    (("9/11/2611:43",), "2026-11-09", "date", "9/11/26"),
    (("DATE 25/12/2018 10:31",), "25/12/2018", "date", "25/12/2018"),
    (("DATE: 25/12/2018.",), "25/12/2018", "date", "25/12/2018"),
]


@pytest.mark.parametrize(("lines", "value", "kind"), NEAR_MISSES)
def test_a_near_miss_is_another_value_and_not_grounded(lines: tuple[str, ...], value: str, kind: str) -> None:
    assert TextIndex(layout_of(*lines)).find(value, kind) is None


@pytest.mark.parametrize(("lines", "value", "kind", "covered"), ON_THE_PAGE)
def test_the_same_value_in_another_form_is_grounded(
    lines: tuple[str, ...], value: str, kind: str, covered: str
) -> None:
    index = TextIndex(layout_of(*lines))
    match = index.find(value, kind, ["total"])
    assert match is not None and match.kind != "fuzzy"
    assert index.text[match.start : match.end] == covered


def test_text_still_matches_fuzzily() -> None:
    """OCR errors the model corrected in a name: fuzzy matching is for text."""
    index = TextIndex(layout_of("N0. 55 JALAN SAGU 18"))
    match = index.find("NO. 55 JALAN SAGU 18")
    assert match is not None and match.kind == "fuzzy"


def test_the_checked_loop_leaves_a_near_miss_total_ungrounded(tmp_path: Path) -> None:
    receipt = tmp_path / "r.txt"
    receipt.write_text("SHOP ABC\nCASH 15.00\nCHANGE 7.00\n", encoding="utf-8")
    model = ScriptedChatModel([json.dumps({"company": "SHOP ABC", "total": "8.00"})] * 4)
    result = ChatOCR(llm=model, ocr="text").extract(str(receipt), keys=["company", "total:amount"])
    assert result.fields["company"].status == "grounded"
    assert result.fields["total"].status == "ungrounded"
    assert "total" not in result.trusted_values()


def test_a_line_item_amount_is_grounded_only_on_its_value() -> None:
    field = FieldSpec.model_validate(
        {
            "name": "items",
            "type": "list",
            "items": [{"name": "description", "type": "text"}, {"name": "amount", "type": "amount"}],
        }
    )
    index = TextIndex(layout_of("ROTI CANAI  7.00", "TEH TARIK  2.00"))
    value = [{"description": "ROTI CANAI", "amount": "8.00"}, {"description": "TEH TARIK", "amount": "2.00"}]
    checked = check_value(field, value)
    parts = ground_parts(field, value, checked.normalized, index, lambda start, end: [])
    assert parts.leaves["items[0].description"].status == "grounded"
    assert parts.leaves["items[0].amount"].status == "ungrounded"
    assert parts.leaves["items[1].amount"].status == "grounded"


def test_snapping_never_turns_a_value_into_a_neighbouring_number() -> None:
    index = TextIndex(layout_of("TOTAL 13.00"))
    field = FieldSpec(name="total", type="amount")
    grounded = FieldResult("total", "3.00", "3.00", status="grounded", match="exact")
    assert snap_result(field, grounded, index).value == "3.00"  # no match: left as it was


def test_a_free_text_answer_stating_a_near_miss_is_unsupported() -> None:
    document = TextEngine().read_text("SHOP ABC\nCASH 15.00\nCHANGE 7.00\nDATE 25/12/2018\n")
    checked = check_answer("You got 8.00 back on 25/12/2019.", document)
    assert [c.text for c in checked.unsupported] == ["8.00", "25/12/2019"]


# -- properties ----------------------------------------------------------------------------------

_ITEMS = ("TEA", "CAKE", "JAM", "PEAR", "MEAT", "RICE")
_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


def _printed(amount: Decimal, style: int) -> str:
    plain = f"{amount:.2f}"
    if style == 1:
        return f"{amount:,.2f}"
    if style == 2:
        return "RM" + plain
    if style == 3:
        return f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")  # 1.234,56
    return plain


@settings(max_examples=300, deadline=None)
@given(
    page=st.lists(st.tuples(_amounts, st.integers(0, 3)), min_size=1, max_size=6),
    value=_amounts,
    style=st.integers(0, 2),
)
@example(page=[(Decimal("0.01"), 0)] * 4, value=Decimal("3.00"), style=0)
def test_a_number_grounds_only_on_its_own_value(page: list[tuple[Decimal, int]], value: Decimal, style: int) -> None:
    # Items named by words, not numbered: "ITEM 3" would put the number 3 on the page, and 3.00
    # grounds on it as it should (found by hypothesis: a page of 0.01s and "ITEM 3").
    lines = [f"{_ITEMS[n]} {_printed(amount, shown)}" for n, (amount, shown) in enumerate(page)]
    index = TextIndex(layout_of(*lines))
    answer = _printed(value, style)
    match = index.find(answer, "amount", ["total"])
    on_page = any(amount == value for amount, _ in page)
    if match is None:
        assert not on_page
    else:
        assert on_page
        assert number_value(index.text[match.start : match.end]) == number_value(answer) == value


_dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))


def _date_printed(day: date, style: int) -> str:
    return [
        day.strftime("%d/%m/%Y"),
        day.isoformat(),
        f"{day.year}年{day.month:02d}月{day.day:02d}日",
        day.strftime("%d %b %Y"),
    ][style]


@settings(max_examples=300, deadline=None)
@given(
    page=st.lists(st.tuples(_dates, st.integers(0, 3)), min_size=1, max_size=4),
    value=_dates,
    style=st.integers(0, 3),
    shift=st.sampled_from([0, 0, 1, -1, 365, 31]),
)
def test_a_date_grounds_only_on_its_own_date(page: list[tuple[date, int]], value: date, style: int, shift: int) -> None:
    value = value + timedelta(days=shift) if shift else value
    lines = [f"DATE {_date_printed(day, shown)}" for day, shown in page]
    index = TextIndex(layout_of(*lines))
    answer = _date_printed(value, style)
    match = index.find(answer, "date", ["date"])
    if match is not None:
        assert value.isoformat() in date_readings(index.text[match.start : match.end])
    if value.day > 12 or style in (1, 2, 3):  # an unambiguous answer that the page prints is found
        on_page = any(day == value for day, _ in page)
        assert (match is not None) == on_page
