"""Identity and invoice codes against real published numbers.

The unified social credit codes are companies' own, published on their licences and in the
national enterprise credit register (and the example of GB 32100-2015 itself); the resident ID
numbers are the worked examples printed in GB 11643-1999. Each invalid one is a valid one with one
character changed, so a check that passed everything or nothing would fail here.
"""

from __future__ import annotations

from datetime import date

import pytest

from chatocr.checks import CheckContext, id_check_digit, uscc_check_character
from chatocr.checks.codes import (
    IdNumberArgs,
    InvoiceCodeArgs,
    InvoiceNumberArgs,
    UsccArgs,
    check_id_number,
    check_invoice_code,
    check_invoice_number,
    check_uscc,
)

TODAY = CheckContext(today=date(2026, 12, 7))

PUBLISHED_USCC = [
    "91350100M000100Y43",  # the example in GB 32100-2015
    "914403001922038216",  # 华为技术有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
]
# GB 11643-1999's own examples: a woman born 1949-12-31 in Beijing, a man born 1880-01-01 in Guangdong.
PUBLISHED_ID = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_published_unified_social_credit_codes_pass(code: str) -> None:
    assert uscc_check_character(code[:17]) == code[17]
    result = check_uscc(["seller_tax_id"], [code], UsccArgs(), TODAY)
    assert result.passed is True, result.message


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_one_character_changed_fails_and_says_what_it_should_be(code: str) -> None:
    body = code[:16] + ("1" if code[16] != "1" else "2")  # a misread digit in the body
    wrong = body + code[17]
    expected = uscc_check_character(body)
    result = check_uscc(["seller_tax_id"], [wrong], UsccArgs(), TODAY)
    if expected == code[17]:  # one change in 31 keeps the check character: the check cannot see it
        assert result.passed is True
    else:
        assert result.passed is False
        assert f"should be {expected}, not {code[17]}" in result.message
        assert wrong in result.message


def test_code_as_printed_with_spaces_and_lower_case_is_read() -> None:
    assert check_uscc(["code"], ["9144 0300 7084 6113 6t"], UsccArgs(), TODAY).passed is True
    assert check_uscc(["code"], ["９１４４０３００７０８４６１１３６Ｔ"], UsccArgs(), TODAY).passed is True


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("91440300708461136", "has 17 characters"),
        ("91440300708461I36T", "'I' is not used"),
        ("914403O0708461136T", "'O' is not used"),
        ("91AB0300708461136T", "area code"),
    ],
)
def test_malformed_codes_fail_with_a_reason(code: str, words: str) -> None:
    result = check_uscc(["unified_social_credit_code"], [code], UsccArgs(), TODAY)
    assert result.passed is False and words in result.message


def test_legacy_taxpayer_numbers_are_skipped_only_when_allowed() -> None:
    legacy = "440301708461136"  # 15 characters: an area code and an organisation code, before 2015
    assert check_uscc(["seller_tax_id"], [legacy], UsccArgs(allow_legacy=True), TODAY).passed is None
    assert check_uscc(["seller_tax_id"], [legacy], UsccArgs(), TODAY).passed is False


def test_empty_value_is_skipped() -> None:
    assert check_uscc(["code"], [None], UsccArgs(), TODAY).passed is None


@pytest.mark.parametrize("number", PUBLISHED_ID)
def test_published_id_numbers_pass(number: str) -> None:
    assert id_check_digit(number[:17]) == number[17]
    result = check_id_number(["id_number"], [number], IdNumberArgs(), TODAY)
    assert result.passed is True, result.message


def test_wrong_check_digit_fails() -> None:
    result = check_id_number(["id_number"], ["110105194912310021"], IdNumberArgs(), TODAY)
    assert result.passed is False and "should be X, not 1" in result.message


def test_birth_date_that_does_not_exist_fails_even_with_the_right_check_digit() -> None:
    body = "11010519490231002"  # 31 February 1949
    result = check_id_number(["id_number"], [body + id_check_digit(body)], IdNumberArgs(), TODAY)
    assert result.passed is False and "does not exist" in result.message


def test_birth_date_in_the_future_fails() -> None:
    body = "11010520300101002"
    result = check_id_number(["id_number"], [body + id_check_digit(body)], IdNumberArgs(), TODAY)
    assert result.passed is False and "impossible" in result.message


def test_birth_date_and_gender_fields_are_compared_with_the_number() -> None:
    fields = ["id_number", "birth_date", "gender"]
    woman = PUBLISHED_ID[0]  # 17th digit 2: a woman, born 1949-12-31
    assert check_id_number(fields, [woman, "1949-12-31", "女"], IdNumberArgs(), TODAY).passed is True
    wrong_date = check_id_number(fields, [woman, "1949-12-30", "女"], IdNumberArgs(), TODAY)
    assert wrong_date.passed is False and "birth_date is 1949-12-30" in wrong_date.message
    wrong_gender = check_id_number(fields, [woman, "1949-12-31", "男"], IdNumberArgs(), TODAY)
    assert wrong_gender.passed is False and "gender is 男" in wrong_gender.message
    # a field left empty is not compared
    assert check_id_number(fields, [woman, None, None], IdNumberArgs(), TODAY).passed is True


def test_masked_and_old_numbers() -> None:
    masked = check_id_number(["id_number"], ["1101011990****1234"], IdNumberArgs(), TODAY)
    assert masked.passed is None and "masked" in masked.message
    old = "110105491231002"  # 15 digits, before 1999: birth date only
    assert check_id_number(["id_number"], [old], IdNumberArgs(), TODAY).passed is True
    assert check_id_number(["id_number"], [old], IdNumberArgs(allow_15_digits=False), TODAY).passed is False


@pytest.mark.parametrize(
    ("code", "passed"),
    [("3100231130", True), ("044002100111", True), ("04400210011", False), ("04400210011A", False), (None, None)],
)
def test_invoice_code_format(code: str | None, passed: bool | None) -> None:
    assert check_invoice_code(["invoice_code"], [code], InvoiceCodeArgs(), TODAY).passed is passed


@pytest.mark.parametrize(
    ("number", "passed"),
    [("08426731", True), ("23312000000048215736", True), ("No08426731", False), ("0842673", False)],
)
def test_invoice_number_format(number: str, passed: bool) -> None:
    result = check_invoice_number(["invoice_number"], [number], InvoiceNumberArgs(), TODAY)
    assert result.passed is passed, result.message


def test_invoice_number_lengths_are_an_argument() -> None:
    twenty = "23312000000048215736"
    assert check_invoice_number(["n"], [twenty], InvoiceNumberArgs(lengths=(8,)), TODAY).passed is False
