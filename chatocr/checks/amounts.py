"""Amounts that must agree: an amount in Chinese capital numerals (壹贰叁…圆角分整) and its figure,
parts that add up to a total (amount + tax = total), line items that add up to a subtotal or total.

Values arrive as the extraction normalised them (plain decimals such as "9000.00"); a value that
is not a number is a skip, not a failure: the check cannot run. Arithmetic is decimal, never
binary floating point, and a declared tolerance (default 0.01) absorbs rounding.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from chatocr.checks.base import CheckArgs, CheckContext, Outcome, failed, passed, skipped

__all__ = [
    "AmountInWordsArgs",
    "ItemsSumArgs",
    "SumArgs",
    "amount_to_words",
    "as_decimal",
    "check_amount_in_words",
    "check_items_sum",
    "check_sum",
    "words_to_amount",
]

_DIGITS = {
    "零": 0, "〇": 0, "壹": 1, "一": 1, "贰": 2, "貳": 2, "二": 2, "两": 2, "兩": 2, "叁": 3, "參": 3, "三": 3,
    "肆": 4, "四": 4, "伍": 5, "五": 5, "陆": 6, "陸": 6, "六": 6, "柒": 7, "七": 7, "捌": 8, "八": 8,
    "玖": 9, "九": 9,
}  # fmt: skip
_UNITS = {"拾": 10, "十": 10, "佰": 100, "百": 100, "仟": 1000, "千": 1000}
_SECTIONS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_YUAN = "圆元圓"
_CAPITALS = "零壹贰叁肆伍陆柒捌玖"
# What may stand around the words on an invoice: the currency's name, the ⊗ mark before them (as
# printed or as the OCR reads it), brackets and the label's colon. Cut before reading.
_EDGES = re.compile(r"^(?:人民币|[\s⊗⊕⊙×xX@◎○●ⓧ:：()（）]|大写)+|[\s)）]+$")


def as_decimal(value: Any) -> Decimal | None:
    """A normalised amount ("9000.00", 9000, Decimal) as a Decimal; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _integer(words: str) -> int | None:
    """The integer written in Chinese numerals (壹拾万柒仟 = 107000); None when it is not one.
    Within a section (below 万) units must fall (仟 > 佰 > 拾) and two digits never meet: a
    string like 玖仟仟 or 一二三 is not an amount."""
    total = 0  # what the finished 亿 / 万 sections hold
    section = 0  # the current section below 万
    digit: int | None = None
    last_unit = 10**5
    last_big = 10**9
    for char in words:
        if char in _DIGITS:
            if digit not in (None, 0) and _DIGITS[char] != 0:
                return None
            digit = _DIGITS[char]
        elif char in _UNITS:
            unit = _UNITS[char]
            if unit >= last_unit or digit == 0:
                return None
            section += (1 if digit is None else digit) * unit  # 拾 alone is 10
            digit, last_unit = None, unit
        elif char in _SECTIONS:
            big = _SECTIONS[char]
            if big >= last_big:
                return None
            value = section + (digit or 0)
            if value == 0 and big == 10**4:
                return None
            total = (total + value) * big if big == 10**8 else total + value * big
            section, digit, last_unit, last_big = 0, None, 10**5, big
        else:
            return None
    return total + section + (digit or 0)


def words_to_amount(text: str) -> Decimal | None:
    """An amount in Chinese numerals as a Decimal: 叁佰陆拾玖圆玖角玖分 -> 369.99,
    壹拾万柒仟元零伍角叁分 -> 107000.53, 玖仟圆整 -> 9000; None when the text is not one."""
    words = _EDGES.sub("", unicodedata.normalize("NFKC", text).replace(" ", ""))
    if not words:
        return None
    negative = words.startswith("负")
    words = words.removeprefix("负").rstrip("整正")
    split = next((i for i, char in enumerate(words) if char in _YUAN), None)
    if split is None:
        whole, fraction = ("", words) if words[-1] in "角分" else (words, "")
    else:
        whole, fraction = words[:split], words[split + 1 :]
    integer = _integer(whole) if whole else 0
    cents = _cents(fraction)
    if integer is None or cents is None or (not whole and not fraction):
        return None
    amount = Decimal(integer) + Decimal(cents) / 100
    return -amount if negative else amount


def _cents(fraction: str) -> int | None:
    """零伍角叁分 -> 53, 零贰分 -> 2, 伍角 -> 50, "" -> 0."""
    match = re.fullmatch(r"零?(?:(.)角)?零?(?:(.)分)?", fraction)
    if match is None:
        return None
    jiao, fen = match.groups()
    if (jiao and jiao not in _DIGITS) or (fen and fen not in _DIGITS):
        return None
    return (_DIGITS[jiao] if jiao else 0) * 10 + (_DIGITS[fen] if fen else 0)


def _integer_words(number: int) -> str:
    """A whole number of yuan in capitals, "" for 0. A 零 stands for a run of missing units inside
    a section or before a section's first digit, never at a section's end: 1005 -> 壹仟零伍,
    107000 -> 壹拾万柒仟, 1000500 -> 壹佰万零伍佰, 100050000 -> 壹亿零伍万."""
    digits = str(number)
    out = ""
    zero = False
    for position, char in enumerate(digits):
        place = len(digits) - 1 - position  # the power of ten this digit stands for
        digit = int(char)
        if digit == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + _CAPITALS[digit] + ("", "拾", "佰", "仟")[place % 4]
            zero = False
        if place in (4, 8) and int(digits[max(0, position - 3) : position + 1]):
            out += "万" if place == 4 else "亿"
            zero = False
    return out


def amount_to_words(amount: Decimal) -> str:
    """A figure in the capitals invoices print (the People's Bank of China's rules): 9000 ->
    玖仟圆整, 369.99 -> 叁佰陆拾玖圆玖角玖分, 107000.53 -> 壹拾万柒仟圆伍角叁分, 325.04 ->
    叁佰贰拾伍圆零肆分; 整 after 圆 only."""
    cents_total = int((abs(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    integer, cents = divmod(cents_total, 100)
    whole = _integer_words(integer)
    words = whole + "圆" if whole else ""
    jiao, fen = divmod(cents, 10)
    if not cents:
        words = (words or "零圆") + "整"
    else:
        if jiao:
            words += _CAPITALS[jiao] + "角"
        elif whole:
            words += "零"
        if fen:
            words += _CAPITALS[fen] + "分"
    return ("负" if amount < 0 else "") + words


class AmountInWordsArgs(CheckArgs):
    """Fields: the amount in words (text), then its figure (amount)."""


def check_amount_in_words(
    fields: Sequence[str], values: Sequence[Any], args: AmountInWordsArgs, context: CheckContext
) -> Outcome:
    """The amount in Chinese capitals (价税合计（大写）) equals its figure, to the cent."""
    (words_field, figure_field), (words, figure) = fields[:2], values[:2]
    if words is None or figure is None:
        return skipped(f"{words_field if words is None else figure_field} is empty")
    read = words_to_amount(str(words))
    number = as_decimal(figure)
    if read is None:
        return skipped(f"{words_field} {words} cannot be read as an amount in capitals")
    if number is None:
        return skipped(f"{figure_field} {figure} is not a number")
    if read != number:
        return failed(
            f"{words_field} {words} reads {read:.2f}, but {figure_field} is {number:.2f} "
            f"(in capitals: {amount_to_words(number)})"
        )
    return passed(f"{words_field} {words} reads {read:.2f}, as {figure_field} says")


class SumArgs(CheckArgs):
    """Fields: the parts, then the total they add up to (amount + tax = total)."""

    tolerance: Decimal = Field(Decimal("0.01"), ge=0, description="The largest difference still counted as equal.")


def check_sum(fields: Sequence[str], values: Sequence[Any], args: SumArgs, context: CheckContext) -> Outcome:
    """The parts add up to the total, within the tolerance."""
    numbers = [as_decimal(value) for value in values]
    unreadable = [name for name, number in zip(fields, numbers, strict=True) if number is None]
    if unreadable:
        return skipped(f"{', '.join(unreadable)} {'is' if len(unreadable) == 1 else 'are'} empty or not a number")
    parts = [number for number in numbers[:-1] if number is not None]
    total = numbers[-1]
    assert total is not None
    added = sum(parts, Decimal(0))
    shown = " + ".join(f"{name} {number}" for name, number in zip(fields[:-1], parts, strict=True))
    if abs(added - total) > args.tolerance:
        return failed(f"{shown} = {added}, but {fields[-1]} is {total} (off by {abs(added - total)})")
    return passed(f"{shown} = {fields[-1]} {total}")


class ItemsSumArgs(CheckArgs):
    """Fields: the list of items, then the field(s) their amounts may add up to (a subtotal, a total)."""

    item_key: str = Field("amount", min_length=1, description="The key of each item holding its amount.")
    tolerance: Decimal = Field(Decimal("0.01"), ge=0, description="The largest difference still counted as equal.")


def check_items_sum(fields: Sequence[str], values: Sequence[Any], args: ItemsSumArgs, context: CheckContext) -> Outcome:
    """The items' amounts add up to one of the target fields (the subtotal or the total)."""
    items_field, items = fields[0], values[0]
    if not isinstance(items, list) or not items:
        return skipped(f"{items_field} is empty")
    amounts: list[Decimal] = []
    for index, item in enumerate(items, 1):
        amount = as_decimal(item.get(args.item_key)) if isinstance(item, dict) else None
        if amount is None:
            return skipped(f"item {index} of {items_field} has no {args.item_key}")
        amounts.append(amount)
    added = sum(amounts, Decimal(0))
    targets = [(name, as_decimal(value)) for name, value in zip(fields[1:], values[1:], strict=True)]
    readable = [(name, number) for name, number in targets if number is not None]
    if not readable:
        return skipped(f"{', '.join(fields[1:])}: no number to compare the items with")
    count = f"the {len(amounts)} item{'s' if len(amounts) != 1 else ''}' {args.item_key}s add up to {added}"
    for name, number in readable:
        if abs(added - number) <= args.tolerance:
            return passed(f"{count}, as {name} says")
    against = ", ".join(f"{name} is {number}" for name, number in readable)
    return failed(f"{count}, but {against}")
