"""A total that is the page's final amount, not the cash handed over, the change, a rounding line,
a discount or the subtotal: the commonest wrong total on receipts is a number that is on the page
(so grounding finds it) but on the wrong row.

The check reads the rows of the page (`PageRows`) and the value's evidence (the OCR lines it was
found on). Each row with an amount is labelled by its words: a tender row (CASH, CHANGE, TENDERED,
ROUNDING, 找零, 实收, 现金 ...), a discount, a subtotal, a total (TOTAL, GRAND TOTAL, AMOUNT DUE,
合计, 应付 ...), or other. It fails when the value sits on a tender, discount or subtotal row and
no total row holds the same amount, or when a later total row holds another single amount (the
value is an earlier total: before rounding, before a service charge). Rows holding several
amounts (a tax summary table) are never taken for a later total.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from chatocr.checks.amounts import as_decimal
from chatocr.checks.base import CheckArgs, CheckContext, Outcome, failed, passed, skipped

__all__ = ["FinalAmountArgs", "amounts_in", "check_final_amount", "row_kind"]

TENDER_WORDS = (
    "cash", "change", "change due", "tendered", "tender", "cash tendered", "rounding", "rounding adj",
    "round off", "refund", "找零", "找赎", "实收", "现金", "收现", "抹零", "零头",
)  # fmt: skip
DISCOUNT_WORDS = ("discount", "disc", "savings", "you saved", "voucher", "优惠", "折扣", "折让", "减免")
SUBTOTAL_WORDS = ("subtotal", "sub total", "sub-total", "sub ttl", "小计", "原价")
TOTAL_WORDS = (
    "total", "grand total", "nett total", "net total", "total due", "amount due", "balance due", "total payable",
    "amount payable", "total amount", "total sales", "合计", "总计", "应付", "应收", "实付", "应付金额", "实付金额",
    "总额", "总金额", "价税合计", "消费金额",
)  # fmt: skip
# Tender rows that come before the final total rather than after it: a rounding line sits between
# TOTAL INCL. GST 8.11 and TOTAL ROUNDED 8.10, above the CASH and CHANGE that follow the total.
ADJUSTMENT_WORDS = ("rounding", "rounding adj", "round off", "抹零", "零头")
# Words that make a "total" row something else: TOTAL QTY 3, TOTAL GST 0.51, TOTAL SAVINGS 2.00 ...
# unless the tax is included in it: TOTAL INCL. GST 15.90, 含税合计.
INCLUDING = ("incl", "incl.", "including", "inclusive", "inc", "含税")
NOT_A_TOTAL = (
    "qty",
    "quantity",
    "items",
    "item",
    "pcs",
    "gst",
    "sst",
    "vat",
    "tax",
    "points",
    "weight",
    "件数",
    "数量",
    "税",
)

# An amount as receipts print it: two decimals (or one), thousands separators, a currency mark
# before; or a whole number right after a currency mark (¥35).
_AMOUNT = re.compile(
    r"(?<![\d.,])(?:[¥$€£]\s*)?-?\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?(?![\d])"
    r"|(?<![\d.,])(?:[¥$€£]\s*)?-?\d+\.\d{1,2}(?![\d.])"
    r"|[¥$€£]\s*-?\d+(?![\d.,])"
)


class FinalAmountArgs(CheckArgs):
    tender_words: tuple[str, ...] | None = Field(
        None,
        description="Labels of rows whose amount is never the total (cash handed over, change, rounding); "
        "None: the built-in English and Chinese list. A taxi receipt's 实收金额 is its fare: leave 实收 out there.",
    )


def amounts_in(text: str) -> list[Decimal]:
    """The amounts printed in a row's text, in order."""
    found: list[Decimal] = []
    for match in _AMOUNT.finditer(unicodedata.normalize("NFKC", text)):
        digits = re.sub(r"[¥$€£\s,]", "", match.group())
        try:
            found.append(Decimal(digits))
        except InvalidOperation:
            continue
    return found


def _label(text: str) -> str:
    """A row's words without its amounts and stray marks: `TOTAL (RM)    53.10` -> `TOTAL (RM)`."""
    label = _AMOUNT.sub(" ", unicodedata.normalize("NFKC", text))
    return " ".join(label.replace(":", " ").split()).strip(" -*=")


def _has(label: str, words: Sequence[str]) -> str | None:
    """The first of `words` the label holds as a word (ASCII) or a substring (CJK)."""
    folded = label.casefold()
    for word in sorted(words, key=len, reverse=True):
        pattern = rf"(?<![a-z]){re.escape(word)}(?![a-z])" if word.isascii() else re.escape(word)
        if re.search(pattern, folded):
            return word
    return None


def row_kind(label: str, tender_words: Sequence[str] = TENDER_WORDS) -> str:
    """tender | discount | subtotal | total | other, by the row's label."""
    if _has(label, SUBTOTAL_WORDS):
        return "subtotal"
    if _has(label, tender_words):
        return "tender"
    if _has(label, DISCOUNT_WORDS):
        return "discount"
    if _has(label, TOTAL_WORDS) and (not _has(label, NOT_A_TOTAL) or _has(label, INCLUDING)):
        return "total"
    return "other"


def check_final_amount(
    fields: Sequence[str], values: Sequence[Any], args: FinalAmountArgs, context: CheckContext
) -> Outcome:
    """The total sits on a total row (or an unlabelled one) and no later total row disagrees."""
    name, value = fields[0], as_decimal(values[0])
    if value is None:
        return skipped(f"{name} is empty or not a number")
    page = context.page
    lines = context.evidence.get(name, ())
    spot = next((where for line in lines if page is not None and (where := page.locate(line)) is not None), None)
    if page is None or spot is None:
        return skipped(f"{name} {value} has no line on the page to look at")
    tender = args.tender_words if args.tender_words is not None else TENDER_WORDS
    rows = [(index, _label(page.row_text(index)), amounts_in(page.row_text(index))) for index in range(len(page.rows))]
    kinds = {index: row_kind(label, tender) for index, label, amounts in rows if amounts}
    own_label = rows[spot[0]][1]
    own_kind = kinds.get(spot[0], row_kind(own_label, tender))
    totals = [(index, label, amounts) for index, label, amounts in rows if kinds.get(index) == "total"]
    if own_kind in ("tender", "discount", "subtotal"):
        if any(value in amounts for _, _, amounts in totals):
            return passed(f"{name} {value} is also on a total row")
        final = _final_total(totals, rows, kinds)
        instead = f"the final amount is {final}" if final else "no total row was found"
        return failed(f"{name} {value} is the {own_label or own_kind} line; {instead}")
    later = [
        (label, amounts[0])
        for index, label, amounts in totals
        if index > spot[0] and len(amounts) == 1 and amounts[0] != value
    ]
    if later:
        later_label, amount = later[-1]
        own = own_label or "unlabelled"
        return failed(
            f"{name} {value} is on the {own} row, but a later row, {later_label} {amount}, holds the final amount"
        )
    return passed(f"{name} {value} is on the {own_label or 'unlabelled'} row and no later total row disagrees")


def _final_total(
    totals: list[tuple[int, str, list[Decimal]]],
    rows: list[tuple[int, str, list[Decimal]]],
    kinds: dict[int, str],
) -> str | None:
    """The row a person would call the total: the last total row with one amount before the first
    tender row that is money handed over (a rounding line comes before the rounded total), else
    the last such row anywhere; as `LABEL amount`."""
    labels = {index: label for index, label, _ in rows}
    first_tender = min(
        (index for index, kind in kinds.items() if kind == "tender" and not _has(labels[index], ADJUSTMENT_WORDS)),
        default=len(rows),
    )
    single = [(index, label, amounts[0]) for index, label, amounts in totals if len(amounts) == 1]
    before = [entry for entry in single if entry[0] < first_tender] or single
    if not before:
        return None
    _, label, amount = before[-1]
    return f"{label} {amount}"
