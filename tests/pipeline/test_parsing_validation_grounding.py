"""Reading model answers, checking values, and grounding them in the OCR text."""

from __future__ import annotations

import pytest

from chatocr.extraction import TextIndex, check_value, normalize_amount, normalize_date, parse_reply
from chatocr.extraction.validation import date_readings
from chatocr.ocr.layout import LayoutText, Span
from chatocr.scenarios import FieldSpec


@pytest.mark.parametrize(
    ("reply", "repair"),
    [
        ('{"a": "1"}', None),
        ('```json\n{"a": "1"}\n```', "removed code fences"),
        ('Sure! Here is the JSON: {"a": "1"} Hope it helps.', "ignored text around the JSON object"),
        ('{"a": "1",}', "removed trailing commas"),
        ("{'a': '1', 'b': None}", "read Python literals"),
        ('<think>The total is... {"a": "wrong"}</think>\n{"a": "1"}', "dropped the model's <think> section"),
        ('{"a": "1"', "closed a truncated object"),
        ('｛"a"："1"｝', "replaced full-width punctuation"),
        ('Answer to example 1: {"a": "0"}\nAnswer to example 2: {"a": "1"}', "took the last of 2 JSON objects"),
    ],
)
def test_parse_reply_recovers_json(reply: str, repair: str | None) -> None:
    parsed = parse_reply(reply)
    assert parsed.data is not None and parsed.data["a"] == "1"
    if repair:
        assert any(repair in r for r in parsed.repairs), parsed.repairs
    else:
        assert parsed.repairs == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("The total is 9.00 dollars.", "no JSON object"),
        ("<think>still thinking", "only reasoning"),
        ("{not json at all: [}", "malformed"),
    ],
)
def test_parse_reply_explains_failures(reply: str, error: str) -> None:
    parsed = parse_reply(reply)
    assert parsed.data is None and error in (parsed.error or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("¥25,000.00", "25000.00"),
        ("RM 8.10", "8.10"),
        ("9.00", "9.00"),
        ("S$12", "12"),
        ("（小写）¥1415.10", "1415.10"),
        ("(3.50)", "-3.50"),
        (12.5, "12.5"),
        ("abc", None),
        ("1.00 2.00", None),
        # Decimal commas (most of Europe) and the other ways thousands are grouped.
        ("12,34 €", "12.34"),
        ("€ 3,99", "3.99"),
        ("0,5", "0.5"),
        ("EUR 1.234,56", "1234.56"),
        ("1.234.567,89", "1234567.89"),
        ("1 234,56", "1234.56"),
        ("25 000.00", "25000.00"),
        ("CHF 1'234.50", "1234.50"),
        ("1,23,456.00", "123456.00"),
        ("25,000", "25000"),
        ("1,234,567", "1234567"),
        ("9.000", "9.000"),
        ("1.2.3", None),
        ("21.06.2019", None),
        ("10.00.53PM", None),
    ],
)
def test_normalize_amount(text: object, expected: str | None) -> None:
    assert normalize_amount(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024年03月18日", "2024-03-18"),
        ("2019年05月12日 08:35开", "2019-05-12"),
        ("25/12/2018", "2018-12-25"),
        ("14 MAR 2018", "2018-03-14"),
        ("Mar 14, 2018", "2018-03-14"),
        ("17-06-18", "2018-06-17"),
        ("2024-3-8", "2024-03-08"),
        ("12/31/2020", "2020-12-31"),
        ("17-06-131", None),
        ("tomorrow", None),
        # A time the OCR glued to a two-digit year is that year and that time, never year 2611.
        ("9/11/2611:43", "2026-11-09"),
        ("1/2/2012:30", "2020-02-01"),
        ("09/11/2026 11:43", "2026-11-09"),
        ("09/11/202611:43", "2026-11-09"),
        ("2025-11-0316:41:36", "2025-11-03"),
        # No document is dated outside 1900-2100: the glued text alone is no date.
        ("9/11/2611", None),
        ("12345678", None),
        ("1899-12-31", None),
        ("2100-12-31", "2100-12-31"),
        # Months by name, with hyphens, dots, ordinals, two-digit years, full names.
        ("13-Jan-2026", "2026-01-13"),
        ("13-JAN-26", "2026-01-13"),
        ("13.Jan.2026", "2026-01-13"),
        ("13th JAN 2026", "2026-01-13"),
        ("March 3rd 2026", "2026-03-03"),
        ("SEPT 9 2026", "2026-09-09"),
        ("Date: 20-Jul-2025 12:30", "2025-07-20"),
        ("14 Mar 18:40", None),  # a day and a time, no year
        ("2 Box 12", None),
        ("Mark 12 2026", None),
    ],
)
def test_normalize_date(text: str, expected: str | None) -> None:
    assert normalize_date(text) == expected


def test_check_value_by_type() -> None:
    assert check_value(FieldSpec(name="t", type="amount"), "¥9.00").normalized == "9.00"
    assert check_value(FieldSpec(name="t", type="amount"), "nine").problem == "'nine' is not a number"
    assert check_value(FieldSpec(name="d", type="date"), "2024年1月2日").normalized == "2024-01-02"
    enum = FieldSpec(name="g", type="enum", choices=("男", "女"))
    assert check_value(enum, "女").normalized == "女"
    assert "not one of" in (check_value(enum, "female").problem or "")
    for nothing in (None, "", "未知", "N/A", "null", []):
        assert check_value(FieldSpec(name="x"), nothing).missing
    items = FieldSpec(name="items", type="list", items=({"name": "price", "type": "amount"},))  # type: ignore[arg-type]
    assert check_value(items, [{"price": "1.50"}]).normalized == [{"price": "1.50"}]
    assert "item 0" in (check_value(items, ["x"]).problem or "")
    assert check_value(FieldSpec(name="x", type="list"), "a, b").problem == "expected a list, got str"


@pytest.mark.parametrize("copied", ["-----", "*** ***", "=~/#", "……"])
def test_a_text_value_without_a_letter_or_digit_is_invalid(copied: str) -> None:
    """A receipt's rule line or a stray mark copied as the company is re-asked, never returned."""
    assert check_value(FieldSpec(name="company"), copied).problem == f"{copied!r} holds no letter or digit"


@pytest.mark.parametrize("value", ["A&W", "***1234", "合计", "7-Eleven", "№ 5"])
def test_text_values_with_symbols_and_a_letter_or_digit_stay(value: str) -> None:
    assert check_value(FieldSpec(name="company"), value).normalized == value


def layout_of(*lines: str) -> LayoutText:
    text, spans, at = "", [], 0
    for i, line in enumerate(lines):
        spans.append(Span(at, at + len(line), f"p0-l{i}"))
        text += line + "\n"
        at += len(line) + 1
    return LayoutText(text.rstrip("\n"), tuple(spans))


def test_grounding_strategies() -> None:
    index = TextIndex(
        layout_of("ＡＣＭＥ  TRADING", "TOTAL  RM 1,234.50", "DATE 2024年03月18日", "NO. 55 JALAN", "SAGU 18")
    )
    exact = index.find("TRADING")
    assert exact is not None and exact.kind == "exact"
    normalized = index.find("acme trading")
    assert normalized is not None and normalized.kind == "normalized"
    assert index.layout.line_ids(normalized.start, normalized.end) == ["p0-l0"]
    numeric = index.find("1234.50", "amount")
    assert numeric is not None and numeric.kind == "numeric"
    assert index.layout.line_ids(numeric.start, numeric.end) == ["p0-l1"]
    dated = index.find("2024-03-18", "date")
    assert dated is not None and dated.kind == "date"
    wrapped = index.find("NO. 55 JALAN SAGU 18")
    assert wrapped is not None and wrapped.kind == "normalized"
    assert index.layout.line_ids(wrapped.start, wrapped.end) == ["p0-l3", "p0-l4"]
    fuzzy = index.find("N0. 55 JALAN SAGU 1B")
    assert fuzzy is not None and fuzzy.kind == "fuzzy" and fuzzy.score >= 0.8
    assert index.find("ZEBRA STRIPES") is None
    assert index.find("999.99", "amount") is None


def test_grounding_prefers_whole_tokens_on_the_row_that_names_the_field() -> None:
    index = TextIndex(layout_of("ITEM A  1  9.000  9.00", "SUBTOTAL  9.00", "TOTAL  9.00", "CASH  10.00"))
    match = index.find("9.00", "amount", ["total"])
    assert match is not None and match.kind == "exact"
    assert index.layout.line_ids(match.start, match.end) == ["p0-l2"]  # the TOTAL row, not SUBTOTAL
    inside = TextIndex(layout_of("QTY 19.000", "AMOUNT 9.00"))
    found = inside.find("9.00", "amount", [])
    assert found is not None and inside.layout.line_ids(found.start, found.end) == ["p0-l1"]
    only_inside = TextIndex(layout_of("CODE X9.005"))
    last_resort = only_inside.find("9.00", "text", [])
    assert last_resort is not None and last_resort.score == 0.9


def test_a_date_glued_to_a_time_is_found_as_its_own_date() -> None:
    index = TextIndex(layout_of("9/11/2611:43", "TOTAL $37.66"))
    dates = [index.text[s:e] for s, e in index.occurrences("date")]
    assert dates == ["9/11/26"]
    match = index.find("2026-11-09", "date")
    assert match is not None and index.text[match.start : match.end] == "9/11/26"
    glued = check_value(FieldSpec(name="d", type="date"), "9/11/2611")
    assert glued.problem == "'9/11/2611' is not a recognisable date"


def test_date_readings_are_day_first_then_month_first() -> None:
    assert date_readings("9/11/26") == ["2026-11-09", "2026-09-11"]
    assert date_readings("25/12/2018") == ["2018-12-25"]  # no 25th month
    assert date_readings("12/31/2020") == ["2020-12-31"]
    assert date_readings("3/3/2024") == ["2024-03-03"]
    assert date_readings("2024-03-08") == ["2024-03-08"]  # year first: never ambiguous here
    assert date_readings("Mar 14, 2018") == ["2018-03-14"]
    assert date_readings("no date") == []


def test_a_decimal_comma_amount_is_grounded_as_one_number() -> None:
    index = TextIndex(layout_of("Summe        1.234,56 €", "Bar        1.300,00 €"))
    match = index.find("1234.56", "amount")
    assert match is not None and index.text[match.start : match.end] == "1.234,56"
    assert [index.text[s:e] for s, e in index.occurrences("amount")] == ["1.234,56", "1.300,00"]
