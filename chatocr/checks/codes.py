"""Identity and invoice codes: the unified social credit code's check character (GB 32100-2015),
the resident ID number's check digit and birth date (GB 11643-1999), and the formats of VAT
invoice codes and numbers.

Each reads the value as printed (spaces and full-width forms folded, letters upper-cased) and
says what is wrong in a person's words: "the check character should be 3, not 4".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import Field

from chatocr.checks.base import CheckArgs, CheckContext, Outcome, failed, passed, skipped

__all__ = [
    "IdNumberArgs",
    "InvoiceCodeArgs",
    "InvoiceNumberArgs",
    "UsccArgs",
    "check_id_number",
    "check_invoice_code",
    "check_invoice_number",
    "check_uscc",
    "id_check_digit",
    "uscc_check_character",
]

# GB 32100-2015: 31 characters, the Latin letters I, O, S, V and Z left out (they read as digits).
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11643-1999: weights 2^(17-i) mod 11 of the 17 body digits; check = (12 - sum mod 11) mod 11, 10 is X.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# Taxpayer numbers from before the unified code (2015): 15 characters (an area code and the
# organisation code), 17 or 20 (an ID number and a suffix); they carry no GB 32100 check character.
LEGACY_TAX_ID_LENGTHS = (15, 17, 20)
_MASK = re.compile(r"[*＊xX×]{3,}|\*")


def _clean(value: Any) -> str:
    """The value as printed, without spaces, in half-width upper case: `9131 0115 ma1h...` -> `91310115MA1H...`."""
    return "".join(unicodedata.normalize("NFKC", str(value)).split()).upper()


def uscc_check_character(body: str) -> str:
    """The 18th character of a unified social credit code whose first 17 are `body`.
    ValueError for a character outside the code's alphabet or a body that is not 17 long."""
    if len(body) != 17:
        raise ValueError(f"a code body has 17 characters, got {len(body)}")
    total = sum(USCC_CHARSET.index(char) * weight for char, weight in zip(body, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def id_check_digit(body: str) -> str:
    """The 18th character of a resident ID number whose first 17 digits are `body`."""
    if len(body) != 17 or not body.isdigit():
        raise ValueError(f"an ID number body is 17 digits, got {body!r}")
    return ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


class UsccArgs(CheckArgs):
    allow_legacy: bool = Field(
        False,
        description="Skip (not fail) a 15-, 17- or 20-character taxpayer number issued before the unified code: "
        "VAT invoices' 纳税人识别号 may be one.",
    )


def check_uscc(fields: Sequence[str], values: Sequence[Any], args: UsccArgs, context: CheckContext) -> Outcome:
    """The value is an 18-character unified social credit code whose check character is right."""
    name, value = fields[0], values[0]
    if value is None:
        return skipped(f"{name} is empty")
    code = _clean(value)
    if args.allow_legacy and len(code) in LEGACY_TAX_ID_LENGTHS and code.isalnum():
        return skipped(f"{name} {code} is a {len(code)}-character taxpayer number, which has no check character")
    if len(code) != 18:
        return failed(f"{name} {code} has {len(code)} characters; a unified social credit code has 18")
    wrong = [char for char in code if char not in USCC_CHARSET]
    if wrong:
        return failed(
            f"{name} {code}: {wrong[0]!r} is not used in unified social credit codes "
            "(only digits and the capital letters other than I, O, S, V and Z)"
        )
    if not code[2:8].isdigit():
        return failed(f"{name} {code}: characters 3-8 are the area code, six digits, not {code[2:8]!r}")
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return failed(f"{name} {code}: the check character should be {expected}, not {code[17]} (GB 32100-2015)")
    return passed(f"{name} {code} has the right check character")


class IdNumberArgs(CheckArgs):
    allow_15_digits: bool = Field(
        True, description="Accept a 15-digit number issued before 1999 (checked for its birth date only)."
    )
    max_age_years: int = Field(150, ge=1, description="Birth dates further back than this are wrong.")


def _birth_date(digits: str, century: str = "") -> date | None:
    try:
        return date(int(century + digits[:-4]), int(digits[-4:-2]), int(digits[-2:]))
    except ValueError:
        return None


def check_id_number(fields: Sequence[str], values: Sequence[Any], args: IdNumberArgs, context: CheckContext) -> Outcome:
    """A resident ID number: 17 digits and a check digit (0-9 or X) that GB 11643-1999 computes,
    a birth date that exists and lies in the past; with more fields, the birth date and the
    gender they hold agree with the number (its 17th digit is odd for men, even for women)."""
    name, value = fields[0], values[0]
    if value is None:
        return skipped(f"{name} is empty")
    number = _clean(value)
    if _MASK.search(number):
        return skipped(f"{name} {number} is masked: its check digit cannot be computed")
    if len(number) == 15 and number.isdigit() and args.allow_15_digits:
        born = _birth_date(number[6:12], "19")
    elif len(number) == 18 and number[:17].isdigit() and (number[17].isdigit() or number[17] == "X"):
        born = _birth_date(number[6:14])
        expected = id_check_digit(number[:17])
        if number[17] != expected:
            return failed(f"{name} {number}: the check digit should be {expected}, not {number[17]} (GB 11643-1999)")
    else:
        return failed(f"{name} {number} is not 17 digits and a check digit (0-9 or X)")
    if born is None:
        return failed(f"{name} {number}: the birth date it holds ({number[6:14]}) does not exist")
    today = context.current_date()
    if born > today or born.year < today.year - args.max_age_years:
        return failed(f"{name} {number}: the birth date it holds ({born.isoformat()}) is impossible")
    problems = _disagreements(fields, values, number, born)
    if problems:
        return failed(f"{name} {number}: " + "; ".join(problems))
    return passed(f"{name} {number} has the right check digit and a birth date of {born.isoformat()}")


def _disagreements(fields: Sequence[str], values: Sequence[Any], number: str, born: date) -> list[str]:
    """Where the declared birth date and gender fields contradict the number."""
    problems: list[str] = []
    if len(fields) > 1 and values[1] is not None:
        try:
            declared = date.fromisoformat(str(values[1]))
        except ValueError:
            declared = None
        if declared is not None and declared != born:
            problems.append(f"it holds the birth date {born.isoformat()}, but {fields[1]} is {declared.isoformat()}")
    if len(fields) > 2 and values[2] is not None and len(number) == 18:
        gender = str(values[2]).strip().casefold()
        male = int(number[16]) % 2 == 1
        if gender in ("男", "male", "m", "女", "female", "f") and (gender in ("男", "male", "m")) != male:
            problems.append(f"its 17th digit says {'男' if male else '女'}, but {fields[2]} is {values[2]}")
    return problems


class InvoiceCodeArgs(CheckArgs):
    lengths: tuple[int, ...] = Field(
        (10, 12), min_length=1, description="Allowed numbers of digits (special VAT invoices 10, the others 12)."
    )


class InvoiceNumberArgs(CheckArgs):
    lengths: tuple[int, ...] = Field(
        (8, 20), min_length=1, description="Allowed numbers of digits (paper invoices 8, fully digital e-invoices 20)."
    )


def _digits_format(kind: str, name: str, value: Any, lengths: tuple[int, ...]) -> Outcome:
    if value is None:
        return skipped(f"{name} is empty")
    text = _clean(value)
    allowed = " or ".join(str(n) for n in lengths)
    if not text.isdigit():
        other = next(char for char in text if not char.isdigit())
        return failed(f"{name} {text}: an invoice {kind} is {allowed} digits, and {other!r} is not a digit")
    if len(text) not in lengths:
        return failed(f"{name} {text} has {len(text)} digits; an invoice {kind} has {allowed}")
    return passed(f"{name} {text} is {len(text)} digits, as an invoice {kind} is")


def check_invoice_code(
    fields: Sequence[str], values: Sequence[Any], args: InvoiceCodeArgs, context: CheckContext
) -> Outcome:
    """A VAT invoice code: digits only, 10 (special invoices) or 12 (the others) of them."""
    return _digits_format("code", fields[0], values[0], args.lengths)


def check_invoice_number(
    fields: Sequence[str], values: Sequence[Any], args: InvoiceNumberArgs, context: CheckContext
) -> Outcome:
    """A VAT invoice number: digits only, 8 (paper and older e-invoices) or 20 (fully digital e-invoices)."""
    return _digits_format("number", fields[0], values[0], args.lengths)
