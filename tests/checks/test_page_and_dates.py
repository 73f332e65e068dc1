"""The total that is the page's final amount, and dates that exist and are not in the future."""

from __future__ import annotations

from datetime import date

import pytest

from chatocr.checks import CheckContext, PageLine, PageRows
from chatocr.checks.dates import DateArgs, check_date
from chatocr.checks.page import FinalAmountArgs, amounts_in, check_final_amount, row_kind


def _page(*rows: str) -> PageRows:
    """Rows of `label  amount` cells, each cell an OCR line named r<row>c<cell>."""
    built = []
    for r, row in enumerate(rows):
        cells = [cell for cell in row.split("  ") if cell]
        built.append(
            tuple(PageLine(f"r{r}c{c}", text.strip(), c * 20, c * 20 + len(text)) for c, text in enumerate(cells))
        )
    return PageRows(tuple(built))


RECEIPT = _page(
    "KEDAI MAJU SDN BHD",
    "NASI LEMAK  2  23.80",
    "Sub Total  50.10",
    "Service Tax 6%  3.01",
    "Rounding  -0.01",
    "TOTAL (RM)  53.10",
    "CASH  60.00",
    "CHANGE  6.90",
    "GST SUMMARY  Amount  Tax",
    "SR 6%  50.10  3.01",
)


def _check(value: str, line: str, page: PageRows = RECEIPT, **args: object) -> tuple[bool | None, str]:
    context = CheckContext(page=page, evidence={"total": (line,)})
    result = check_final_amount(["total"], [value], FinalAmountArgs.model_validate(args), context)
    return result.passed, result.message


def test_the_total_row_passes() -> None:
    assert _check("53.10", "r5c1") == (
        True,
        "total 53.10 is on the TOTAL (RM) row and no later total row disagrees",
    )


def test_the_cash_line_fails_and_names_the_final_amount() -> None:
    assert _check("60.00", "r6c1") == (False, "total 60.00 is the CASH line; the final amount is TOTAL (RM) 53.10")
    assert _check("6.90", "r7c1")[0] is False
    assert _check("-0.01", "r4c1")[0] is False


def test_the_final_amount_named_is_the_rounded_total_after_a_rounding_line() -> None:
    page = _page(
        "TOTAL INCL. GST  RM 8.11", "ROUNDING ADJUSTMENT  -RM 0.01", "TOTAL ROUNDED  RM 8.10", "CASH  RM 50.00"
    )
    assert _check("50.00", "r3c1", page) == (
        False,
        "total 50.00 is the CASH RM line; the final amount is TOTAL ROUNDED RM 8.10",
    )
    assert _check("8.10", "r2c1", page)[0] is True


def test_the_subtotal_fails_when_a_total_row_says_otherwise() -> None:
    passed, message = _check("50.10", "r2c1")
    assert passed is False and message.startswith("total 50.10 is the Sub Total line")


def test_a_tender_row_holding_the_total_amount_too_passes() -> None:
    page = _page("TOTAL  9.00", "VISA  9.00", "CASH  9.00")
    assert _check("9.00", "r2c1", page)[0] is True


def test_an_earlier_total_corrected_by_a_later_one_fails() -> None:
    page = _page("TOTAL  53.11", "ROUNDING  -0.01", "NETT TOTAL  53.10", "CASH  60.00")
    passed, message = _check("53.11", "r0c1", page)
    assert passed is False
    assert message == "total 53.11 is on the TOTAL row, but a later row, NETT TOTAL 53.10, holds the final amount"


def test_rows_that_are_not_totals_do_not_count_as_later_totals() -> None:
    page = _page("TOTAL  9.00", "TOTAL QTY  3.00", "TOTAL SAVINGS  2.00", "Total  8.49  0.51", "CASH  10.00")
    assert _check("9.00", "r0c1", page)[0] is True


def test_chinese_receipt_rows() -> None:
    page = _page("合计  128.00", "优惠  -8.00", "应付  120.00", "实收  150.00", "找零  30.00")
    assert _check("120.00", "r2c1", page)[0] is True
    assert _check("128.00", "r0c1", page) == (
        False,
        "total 128.00 is on the 合计 row, but a later row, 应付 120.00, holds the final amount",
    )
    assert _check("150.00", "r3c1", page) == (False, "total 150.00 is the 实收 line; the final amount is 应付 120.00")


def test_tender_words_are_an_argument() -> None:
    taxi = _page("单价  2.50", "里程  12.3", "实收金额  38.00")
    assert _check("38.00", "r2c1", taxi)[0] is False  # 实收 is cash handed over on shop receipts ...
    assert _check("38.00", "r2c1", taxi, tender_words=["找零"])[0] is True  # ... but a taxi's fare


def test_without_the_page_or_evidence_it_skips() -> None:
    assert check_final_amount(["total"], ["9.00"], FinalAmountArgs(), CheckContext()).passed is None
    no_line = CheckContext(page=RECEIPT, evidence={"total": ("elsewhere",)})
    assert check_final_amount(["total"], ["9.00"], FinalAmountArgs(), no_line).passed is None
    assert check_final_amount(["total"], [None], FinalAmountArgs(), CheckContext(page=RECEIPT)).passed is None


@pytest.mark.parametrize(
    ("label", "kind"),
    [("SUB TOTAL", "subtotal"), ("CASH", "tender"), ("CASHIER: NURUL", "other"), ("TOTAL GST", "other"),
     ("GRAND TOTAL", "total"), ("Total Incl. of GST", "total"), ("找零", "tender"), ("优惠", "discount"),
     ("小计", "subtotal")],
)  # fmt: skip
def test_row_kinds(label: str, kind: str) -> None:
    assert row_kind(label) == kind


def test_amounts_in_a_row() -> None:
    assert [str(a) for a in amounts_in("1 PC  *  9.000  0.00  9.00")] == ["0.00", "9.00"]
    assert [str(a) for a in amounts_in("TOTAL RM 1,234.50  ¥35")] == ["1234.50", "35"]
    assert amounts_in("DATE 25/12/2018 8:13:39 PM") == []


TODAY = CheckContext(today=date(2026, 12, 7))


def test_dates() -> None:
    assert check_date(["date"], ["2026-12-07"], DateArgs(), TODAY).passed is True
    assert check_date(["date"], ["2026-12-08"], DateArgs(), TODAY).passed is True  # a time zone ahead
    future = check_date(["date"], ["2027-01-07"], DateArgs(), TODAY)
    assert future.passed is False and future.message == "date 2027-01-07 is 31 days after today (2026-12-07)"
    assert check_date(["date"], ["2027-01-07"], DateArgs(max_future_days=31), TODAY).passed is True
    old = check_date(["birth_date"], ["1850-01-01"], DateArgs(max_past_years=150), TODAY)
    assert old.passed is False and "more than 150 years" in old.message
    assert check_date(["date"], ["2026-02-30"], DateArgs(), TODAY).passed is None
    assert check_date(["date"], [None], DateArgs(), TODAY).passed is None


def test_today_defaults_to_the_real_today() -> None:
    assert check_date(["date"], [date.today().isoformat()], DateArgs(), CheckContext()).passed is True
