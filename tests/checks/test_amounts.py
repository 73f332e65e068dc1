"""Amounts in Chinese capitals, sums and line items.

The capitals are the People's Bank of China's worked examples (支付结算办法, 正确写法) and the
amounts printed on this repository's invoice examples; the round trip runs over many amounts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatocr.checks import CheckContext, amount_to_words, words_to_amount
from chatocr.checks.amounts import (
    AmountInWordsArgs,
    ItemsSumArgs,
    SumArgs,
    check_amount_in_words,
    check_items_sum,
    check_sum,
)

CONTEXT = CheckContext(today=date(2026, 12, 7))

PBOC_EXAMPLES = [
    ("人民币壹仟肆佰零玖元伍角", "1409.50"),
    ("人民币陆仟零柒元壹角肆分", "6007.14"),
    ("人民币壹仟陆佰捌拾元零叁角贰分", "1680.32"),
    ("人民币壹拾万柒仟元零伍角叁分", "107000.53"),
    ("人民币壹万陆仟肆佰零玖元零贰分", "16409.02"),
    ("人民币叁佰贰拾伍元零肆分", "325.04"),
]
INVOICE_EXAMPLES = [
    ("⊗玖仟圆整", "9000"),
    ("叁佰陆拾玖圆玖角玖分", "369.99"),
    ("ⓧ伍万叁仟壹佰捌拾圆整", "53180"),
    ("壹拾元", "10"),
    ("伍拾圆整", "50"),
    ("壹佰元", "100"),
]


@pytest.mark.parametrize(("words", "figure"), PBOC_EXAMPLES + INVOICE_EXAMPLES)
def test_capitals_read_as_their_figure(words: str, figure: str) -> None:
    assert words_to_amount(words) == Decimal(figure)


@pytest.mark.parametrize("text", ["玖仟仟", "一二三", "圆整", "", "TOTAL", "玖仟圆整X", "零佰"])
def test_what_is_not_an_amount_in_capitals_reads_none(text: str) -> None:
    assert words_to_amount(text) is None


@pytest.mark.parametrize(
    ("figure", "words"),
    [("1005", "壹仟零伍圆整"), ("107000.53", "壹拾万柒仟圆伍角叁分"), ("325.04", "叁佰贰拾伍圆零肆分"),
     ("100050000", "壹亿零伍万圆整"), ("0.53", "伍角叁分"), ("10", "壹拾圆整")],
)  # fmt: skip
def test_figures_are_written_as_invoices_print_them(figure: str, words: str) -> None:
    assert amount_to_words(Decimal(figure)) == words


@given(st.integers(min_value=1, max_value=99_999_999_999).map(lambda cents: Decimal(cents) / 100))
def test_any_amount_round_trips_through_capitals(amount: Decimal) -> None:
    assert words_to_amount(amount_to_words(amount)) == amount


def test_amount_in_words_check() -> None:
    fields = ["total_amount_in_words", "total_amount"]
    args = AmountInWordsArgs()
    assert check_amount_in_words(fields, ["玖仟圆整", "9000.00"], args, CONTEXT).passed is True
    wrong = check_amount_in_words(fields, ["玖仟圆整", "9001.00"], args, CONTEXT)
    assert wrong.passed is False
    assert (
        wrong.message
        == "total_amount_in_words 玖仟圆整 reads 9000.00, but total_amount is 9001.00 (in capitals: 玖仟零壹圆整)"
    )
    assert check_amount_in_words(fields, ["garbled", "9000.00"], args, CONTEXT).passed is None
    assert check_amount_in_words(fields, [None, "9000.00"], args, CONTEXT).passed is None


def test_sum_of_parts_within_the_tolerance() -> None:
    fields = ["amount", "tax_amount", "total_amount"]
    assert check_sum(fields, ["8490.57", "509.43", "9000.00"], SumArgs(), CONTEXT).passed is True
    off = check_sum(fields, ["327.43", "42.56", "369.00"], SumArgs(), CONTEXT)
    assert off.passed is False
    assert off.message == "amount 327.43 + tax_amount 42.56 = 369.99, but total_amount is 369.00 (off by 0.99)"
    # rounding: three items at 1/3 each print 0.33, the total 1.00
    assert check_sum(["a", "b", "c", "t"], ["0.33", "0.33", "0.33", "1.00"], SumArgs(), CONTEXT).passed is True
    assert check_sum(["a", "b", "t"], ["0.50", "0.30", "1.00"], SumArgs(tolerance=Decimal("0.5")), CONTEXT).passed
    skipped = check_sum(fields, ["327.43", None, "369.99"], SumArgs(), CONTEXT)
    assert skipped.passed is None and "tax_amount" in skipped.message


def test_items_add_up_to_a_target() -> None:
    items = [{"name": "复印纸", "amount": "221.24"}, {"name": "中性笔", "amount": "106.19"}]
    fields = ["items", "amount"]
    assert check_items_sum(fields, [items, "327.43"], ItemsSumArgs(), CONTEXT).passed is True
    wrong = check_items_sum(fields, [items, "372.43"], ItemsSumArgs(), CONTEXT)
    assert wrong.passed is False
    assert wrong.message == "the 2 items' amounts add up to 327.43, but amount is 372.43"
    # either target may match: the subtotal, or the total
    assert check_items_sum(["items", "subtotal", "total"], [items, "327.43", "350.00"], ItemsSumArgs(), CONTEXT).passed
    missing = [{"name": "复印纸", "amount": "221.24"}, {"name": "中性笔", "amount": None}]
    assert check_items_sum(fields, [missing, "327.43"], ItemsSumArgs(), CONTEXT).passed is None
    assert check_items_sum(fields, [[], "327.43"], ItemsSumArgs(), CONTEXT).passed is None
    other_key = [{"price": "1.00"}, {"price": "2.00"}]
    assert check_items_sum(fields, [other_key, "3.00"], ItemsSumArgs(item_key="price"), CONTEXT).passed is True
