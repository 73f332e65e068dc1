"""Check each answered value against its field's type, keeping the verbatim text.

Dates and amounts get a normalised form (ISO date, plain decimal) next to the text the model
copied from the document, because downstream code wants `2024-03-18` and `25000.00` while
grounding and people want `2024年03月18日` and `¥25,000.00`. Values that mean "nothing" (null,
"未知" as PP-ChatOCR answers, "N/A", "") count as missing.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["NULL_WORDS", "NUMBER", "CheckedValue", "check_value", "date_readings", "normalize_amount", "normalize_date"]

NULL_WORDS = {"", "null", "none", "n/a", "na", "nil", "unknown", "未知", "无", "空", "暂无", "不详", "-", "--", "/"}

_CURRENCY = re.compile(r"(?i)rmb|cny|usd|sgd|myr|gbp|eur|rm|s\$|us\$|[¥￥$€£元圆]")
# A number as printed: digits with `,` `.` `'` between them (thousands or decimals, decided by
# _number_value), or a space before a group of three digits (`25 000.00`), never between numbers.
NUMBER = re.compile(r"[-+]?\d(?:[\d,，.．'’]*\d|\s(?=\d{3}(?!\d)))*|[-+]?[.．]\d+")
_YEARS = range(1900, 2101)  # the years a document's date can have
_MONTH_NAMES = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def _month(word: str) -> int:
    """1-12 for a month's name or its abbreviation ("Jan", "SEPT", "March"); 0 for any other word."""
    word = word.casefold()
    for number, name in enumerate(_MONTH_NAMES, 1):
        if len(word) >= 3 and name.startswith(word):
            return number
    return 0


@dataclass(frozen=True)
class CheckedValue:
    value: Any  # what the model answered (None when missing)
    normalized: Any  # typed form: ISO date, decimal string, enum choice, list of checked items...
    problem: str | None = None  # why the value is invalid, for the result and the re-ask

    @property
    def missing(self) -> bool:
        return self.value is None


def is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value).strip().casefold() in NULL_WORDS
    if isinstance(value, (list, dict)):
        return len(value) == 0
    return False


def normalize_amount(value: Any) -> str | None:
    """'¥25,000.00' -> '25000.00'; None when the text holds no single number (or NaN/infinity)."""
    if isinstance(value, (bool, dict, list, tuple)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (int, float)):
        try:
            return str(Decimal(str(value)))
        except ValueError:  # an int over Python's digit limit for str()
            return None
    text = unicodedata.normalize("NFKC", str(value))
    text = _CURRENCY.sub("", text).strip()
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    numbers = NUMBER.findall(text)
    if len(numbers) != 1:
        return None
    number = _number_value(numbers[0])
    if number is None or not number.is_finite():
        return None
    return str(-number if negative else number)


def _number_value(token: str) -> Decimal | None:
    """A printed number's value, its separators read as thousands or decimals: with both `,` and
    `.` the last is the decimal mark (`1,234.56`, `1.234,56`); a lone `,` before one or two digits
    is a decimal comma (`12,34 €`, `0,5`), before three a thousands mark (`25,000`); a lone `.` is
    a decimal point (`9.000`); a mark repeated is thousands (`1,234,567`, `1.234.567`). Thousands
    groups must look like them (three digits; two between commas, as India groups lakhs): `1.2.3`
    and `21.06.2019` are no number."""
    token = token.replace("，", ",").replace("．", ".").replace("’", "'")
    sign = token[0] if token[0] in "+-" else ""
    body = re.sub(r"\s", "", token.lstrip("+-"))
    marks = [c for c in body if c in ",."]
    decimal = None
    if marks:
        last = marks[-1]
        digits_after = len(body) - body.rfind(last) - 1
        if len(set(marks)) == 2 or (marks.count(last) == 1 and (last == "." or digits_after != 3)):
            decimal = last
    whole, fraction = body.rsplit(decimal, 1) if decimal else (body, "")
    groups = re.split(r"[,.']", whole)
    lakhs = set(re.findall(r"[,.']", whole)) == {","}
    if len(groups) > 1 and (
        len(groups[-1]) != 3 or any(len(g) not in ((2, 3) if lakhs else (3,)) for g in groups[1:-1])
    ):
        return None
    try:
        return Decimal(sign + "".join(groups) + (f".{fraction}" if decimal else ""))
    except InvalidOperation:
        return None


def normalize_date(value: Any) -> str | None:
    """The first date found in the text, as ISO YYYY-MM-DD; None when there is none.

    Day/month order: Chinese and ISO forms are year-first; for d/m/y vs m/d/y the day-first
    reading wins unless it is impossible (receipts in our scenarios are mostly day-first).
    A year outside 1900-2100 is no document's date: it is the OCR gluing a time to a two-digit
    year (`9/11/26 11:43` read `9/11/2611:43`), which is read as that year and that time."""
    readings = date_readings(value)
    return readings[0] if readings else None


def date_readings(value: Any) -> list[str]:
    """Every ISO date the first date in the text can mean, the one normalize_date picks first:
    `9/11/26` is 9 November or, as an American prints it, 11 September; `25/12/2018` only one."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    patterns = [
        (r"(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})", ("y", "m", "d")),
        (r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?!:\d)", ("a", "b", "y")),
        (r"(\d{1,2})[./-](\d{1,2})[./-](\d{2})(?=\d{1,2}:\d{2}|(?!\d))", ("a", "b", "yy")),
        # A month by name: `14 Mar 2018`, `13-Jan-2026`, `13th JAN 26`, `Jan 13, 2026`, `March 3rd 2026`.
        (r"(\d{1,2})(?:st|nd|rd|th)?[\s./-]*([A-Za-z]{3,9})\.?,?[\s./-]*(\d{4}|\d{2}(?![\d:]))", ("d", "mon", "Y")),
        (r"([A-Za-z]{3,9})\.?[\s./-]*(\d{1,2})(?:st|nd|rd|th)?,?[\s./-]*(\d{4})", ("mon", "d", "y")),
        (r"(\d{4})(\d{2})(\d{2})", ("y", "m", "d")),
    ]
    for pattern, order in patterns:
        match = re.search(pattern, text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        if "Y" in parts:  # four digits or two
            parts["y" if len(parts["Y"]) == 4 else "yy"] = parts["Y"]
        year = int(parts["y"]) if "y" in parts else 2000 + int(parts["yy"])
        if year not in _YEARS:
            continue
        if "mon" in parts:
            day_months = [(int(parts["d"]), _month(parts["mon"]))]
        elif "a" in parts:
            a, b = int(parts["a"]), int(parts["b"])
            day_months = [(a, b), (b, a)]  # day first, then month first
        else:
            day_months = [(int(parts["d"]), int(parts["m"]))]
        readings: list[str] = []
        for day, month in day_months:
            try:
                iso = date(year, month, day).isoformat()
            except ValueError:
                continue
            if iso not in readings:
                readings.append(iso)
        if readings:
            return readings
    return []


def _match_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    key = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    for choice in choices:
        if unicodedata.normalize("NFKC", choice).casefold() == key:
            return choice
    return None


def _shown(value: Any, limit: int = 60) -> str:
    """A value for an error message (and so the re-ask): its repr, cut short."""
    text = repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: Any, kind: str, choices: tuple[str, ...] = ()) -> CheckedValue:
    if isinstance(value, (dict, list, tuple)):
        # {"value": "9.00", "currency": "RM"} or ["9.00"] for a scalar field: re-ask, never guess.
        shape = "an object" if isinstance(value, dict) else "a list"
        return CheckedValue(value, None, f"expected a single {kind} value, got {shape} {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        return CheckedValue(value, None, f"{value!r} is not a number")
    if kind in ("amount", "number"):
        number = normalize_amount(value)
        if number is None:
            return CheckedValue(value, None, f"{_shown(value)} is not a number")
        return CheckedValue(value, number)
    if kind == "date":
        iso = normalize_date(value)
        if iso is None:
            return CheckedValue(value, None, f"{_shown(value)} is not a recognisable date")
        return CheckedValue(value, iso)
    if kind == "enum":
        choice = _match_choice(value, choices)
        if choice is None:
            return CheckedValue(value, None, f"{_shown(value)} is not one of {list(choices)}")
        return CheckedValue(value, choice)
    text = str(value).strip()
    if text and not any(c.isalnum() for c in text):
        # A rule line (`-----`), stars or a stray mark the model copied: no text field's value.
        return CheckedValue(value, None, f"{_shown(value)} holds no letter or digit")
    return CheckedValue(value, text)


def check_value(field: FieldSpec, value: Any) -> CheckedValue:
    """Validate one answered value against its field."""
    if is_null(value):
        return CheckedValue(None, None)
    if field.type is FieldType.list:
        items = value if isinstance(value, list) else None
        if items is None:
            return CheckedValue(value, None, f"expected a list, got {type(value).__name__}")
        normalized: list[Any] = []
        for index, item in enumerate(items):
            if field.items:
                if not isinstance(item, dict):
                    return CheckedValue(value, None, f"item {index} should be an object")
                row, problem = _object(field, item)
                if problem:
                    return CheckedValue(value, None, f"item {index}: {problem}")
                normalized.append(row)
            else:
                checked = _scalar(item, "text")
                if checked.problem:
                    return CheckedValue(value, None, f"item {index}: {checked.problem}")
                normalized.append(checked.normalized)
        return CheckedValue(value, normalized)
    if field.type is FieldType.object:
        if not isinstance(value, dict):
            return CheckedValue(value, None, f"expected an object with keys {[s.name for s in field.items]}")
        row, problem = _object(field, value)
        return CheckedValue(value, None, problem) if problem else CheckedValue(value, row)
    checked = _scalar(value, field.type.value, field.choices)
    if not checked.problem and field.ruled_out(value):
        # e.g. "TAX INVOICE" answered as the company: the scenario says that is never the value.
        return CheckedValue(value, None, f"{_shown(value)} is never the {field.name}: find the {field.name} itself")
    return checked


def _object(field: FieldSpec, item: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The normalised sub-values of one object (a list item or an object field), or the first problem."""
    row: dict[str, Any] = {}
    for sub in field.items:
        raw = item.get(sub.name)
        checked = CheckedValue(None, None) if is_null(raw) else _scalar(raw, sub.type, sub.choices)
        if checked.problem:
            return row, f"{sub.name}: {checked.problem}"
        row[sub.name] = checked.normalized
    return row, None
