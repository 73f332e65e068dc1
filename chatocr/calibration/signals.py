"""Signals of whether an extracted value is right (not merely on the page), per field.

`FieldSignals` records what is known of one field's value: the OCR confidence of its lines, how
it matched the page, whether a label the field describes sits beside it (or another field's label,
or a word that rules it out: CASH beside a total), the model's own probability for it, the
document checks naming it, and whether a second look agreed. Each may be unavailable (None): a
backend without token probabilities, a field no second look was spent on; `available` says which
were. `chatocr.calibration.model` turns them into one calibrated probability.

Label evidence (`label_evidence`) reads the page as rows of lines (chatocr.checks.PageRows). A
label is looked for where documents print it: right before the value on its own line ("TOTAL:
9.00"; of two pairs on one line, the one before the value), else at the end of the nearest cell
to its left on the same row ("TOTAL   RM   9.00"), and, when the value's row carries no words
before it, on the line above it ("发票代码" over "044002100111"). The words come from
the field (its name and aliases) and a small lexicon per common meaning, English and Chinese.
Description words are not used: of the 44 terms the shipped descriptions quote, 40 are example
values ("南京南站", "Z095432"), single characters ("站", "开") or what the field is not ("注册号");
the 4 that are labels ("发票代码", "合计" twice, "民族") are aliases or lexicon words already; and
unquoted words say as often what a field is not ("not the subtotal, not the change").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chatocr.checks import PageLine, PageRows
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["SIGNAL_NAMES", "FieldSignals", "LabelEvidence", "label_evidence", "label_words"]

# Where the label was found, and how much it says: on the value's own line most, above it least.
PLACE_WEIGHT = {"line": 1.0, "left": 0.9, "above": 0.7}

# meaning: (words in a field's name or aliases that give it this meaning, its labels, labels that
# rule a value out for it). Labels in lower case; ASCII ones match as words, Chinese as substrings.
LEXICON: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "tax_id": (
        ("tax id", "tax number", "credit code", "税号", "纳税人识别号", "信用代码"),
        ("tax id", "gst id", "gst reg no", "tin", "纳税人识别号", "税号", "统一社会信用代码", "信用代码"),
        ("tel", "phone", "电话", "账号"),
    ),
    "in_words": (("in words", "大写"), ("大写", "in words"), ("小写",)),
    "total": (
        ("total", "grand_total", "amount_due", "合计", "总额", "总金额", "价税合计", "应付", "车费"),
        ("total", "grand total", "nett total", "net total", "amount due", "balance due", "total due", "total payable",
         "amount payable", "total amount", "合计", "总计", "总额", "总金额", "应付", "应收", "实付", "价税合计",
         "小写"),
        ("cash", "change", "tendered", "rounding", "subtotal", "sub total", "sub-total", "discount", "找零", "现金",
         "实收", "小计", "优惠", "折扣"),
    ),
    "tax": (
        ("tax", "gst", "sst", "vat", "税额"),
        ("tax", "gst", "sst", "vat", "service tax", "sales tax", "税额", "税金"),
        ("total", "subtotal", "合计"),
    ),
    "date": (
        ("date", "日期"),
        ("date", "dated", "date of issue", "日期", "开票日期", "交易日期"),
        ("due date", "expiry", "有效期"),
    ),
    "time": (("time", "时间"), ("time", "时间"), ()),
    "number": (
        ("number", "num", "no", "号码", "单号", "票号"),
        ("no", "no.", "number", "invoice no", "receipt no", "bill no", "inv no", "doc no", "document no", "号码",
         "单号", "流水号", "编号", "票号"),
        ("tel", "phone", "fax", "电话"),
    ),
    "code": (("code", "代码"), ("code", "代码"), ("tel", "phone", "电话")),
    "address": (("address", "地址", "住址", "住所"), ("address", "addr", "地址", "住址", "住所", "营业场所"),
                ("tel", "phone", "fax", "电话", "传真")),
    "company": (
        ("company", "store", "shop", "merchant", "vendor", "seller", "issuer", "店名", "商户", "销售方"),
        ("company", "merchant", "store", "名称", "店名", "商户名称", "销售方", "收款单位", "开票单位"),
        ("cashier", "served by", "operator", "customer", "member", "收银员", "收银", "操作员", "客户", "会员"),
    ),
    "name": (("name", "姓名"), ("name", "姓名", "乘车人"), ("cashier", "收银员")),
    "phone": (("phone", "tel", "电话", "手机"), ("tel", "phone", "telephone", "电话", "手机"), ("fax", "传真")),
    "payment": (("payment", "tender", "支付", "付款"),
                ("payment", "paid by", "payment method", "支付方式", "付款方式"), ()),
    "price": (("price", "票价", "单价"), ("price", "票价", "单价"), ()),
    "birth": (("birth", "出生"), ("birth", "date of birth", "出生"), ()),
}  # fmt: skip
# A more specific meaning hides broader ones a field's words also trigger: seller_tax_id is a tax
# id (not a tax amount, not the seller's name); total_amount_in_words is words (not the figure).
HIDES = {"tax_id": ("tax", "company", "number", "code"), "in_words": ("total", "price"), "address": ("company",)}
# Currency marks and codes that sit between a label and its amount ("TOTAL  RM  9.00"): not words.
_CURRENCY_CELL = re.compile(r"^\s*(?:rm|myr|rmb|cny|usd|sgd|s\$|us\$|\$|¥|￥|€|£|元|[(:：)（）\s])*\s*$", re.I)


_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
# Chinese labels are often printed letter-spaced ("名    称", "合    计"): the spaces are no word break.
_CJK_SPACES = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def _phrase(text: str) -> str:
    folded = " ".join(unicodedata.normalize("NFKC", text).replace("_", " ").casefold().split())
    return _CJK_SPACES.sub("", folded)


def meanings(field: FieldSpec) -> list[str]:
    """The lexicon meanings a field has, from its name, aliases and type."""
    names = [_phrase(name) for name in field.names]
    words = {word for name in names for word in name.split()}
    found = []
    for meaning, (triggers, _, _) in LEXICON.items():
        for trigger in triggers:
            trigger = _phrase(trigger)
            ascii_hit = trigger in words or any(
                re.search(rf"(?<![a-z]){re.escape(trigger)}(?![a-z])", n) for n in names
            )
            if (trigger.isascii() and ascii_hit) or (not trigger.isascii() and any(trigger in name for name in names)):
                found.append(meaning)
                break
    if field.type is FieldType.date and "date" not in found:
        found.append("date")
    hidden = {meaning for specific in found for meaning in HIDES.get(specific, ())}
    return [meaning for meaning in found if meaning not in hidden]


def label_words(field: FieldSpec) -> tuple[set[str], set[str]]:
    """(labels that name this field, labels that rule a value out for it)."""
    own = {_phrase(name) for name in field.names}
    conflicts: set[str] = set()
    for meaning in meanings(field):
        _, labels, against = LEXICON[meaning]
        own.update(_phrase(label) for label in labels)
        conflicts.update(_phrase(label) for label in against)
    own.discard("")
    return own, conflicts - own


@dataclass(frozen=True)
class LabelEvidence:
    """The label found for a value (score by where it sat: 1.0 its own line, 0.9 to its left,
    0.7 above it; 0 when none) and a label ruling it out (another field's, or CASH for a total)."""

    score: float = 0.0
    label: str | None = None
    place: str | None = None
    conflict_score: float = 0.0
    conflict: str | None = None


# "Total Incl. of GST": what an amount includes is not what it is; such a clause labels nothing.
_INCLUDING = re.compile(r"(?<![a-z])(?:incl\.?|including|inclusive|inc\.)\s*(?:of\s+)?[a-z]+\.?|含税")


def _nearest(text: str, phrases: Sequence[str]) -> str | None:
    """Of the phrases `text` holds, the one ending nearest its end (nearest the value it labels:
    in `价税合计（大写）` that is 大写). Longer phrases hide the shorter ones inside them ("sub
    total" hides "total"); ASCII phrases match as words, Chinese ones as substrings."""
    folded = _INCLUDING.sub(" ", _phrase(text))
    taken: list[tuple[int, int, str]] = []
    for phrase in sorted(phrases, key=len, reverse=True):
        pattern = rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])" if phrase.isascii() else re.escape(phrase)
        for match in re.finditer(pattern, folded):
            if not any(match.start() < end and start < match.end() for start, end, _ in taken):
                taken.append((match.start(), match.end(), phrase))
    return max(taken, key=lambda hit: (hit[1], hit[1] - hit[0]))[2] if taken else None


def _has_words(text: str) -> bool:
    return any(char.isalpha() for char in text) and not _CURRENCY_CELL.match(text)


# What ends a label going left: a wide gap (another cell) or a number (another pair's value).
_LABEL_BREAK = re.compile(r"\s{2,}|[-+]?[¥￥$]?\d[\d.,:/\-]*")


def _trailing_words(text: str) -> str:
    """The words a text ends with, up to its last number or wide gap, marks and currency signs at
    its very end left out: `Qty 2  TOTAL:` -> `TOTAL`; `发票代码：3300214130   发票号码：` ->
    `发票号码`; `购买方  名    称：` -> `购买方名称`; `合计 ¥23584.90 ¥` -> `` (the words before
    the number label that number)."""
    text = re.sub(r"[\W_]+$", "", _CJK_SPACES.sub("", text))
    last = _LABEL_BREAK.split(text)[-1]
    return last if _has_words(last) else ""


def _label_before(line: PageLine, value: str, kind: FieldType) -> str:
    """The words printed right before the value on its own line (its label, when the OCR read the
    label and the value as one line)."""
    text = unicodedata.normalize("NFKC", line.text)
    target = unicodedata.normalize("NFKC", value).strip()
    at = text.casefold().find(target.casefold()) if target else -1
    if at >= 0:
        return _trailing_words(text[:at])
    if kind in (FieldType.amount, FieldType.number, FieldType.date):
        # read differently from the page (1,234.50 vs 1234.5): the line's words before its last number
        numbers = list(re.finditer(r"\d[\d.,:/\-年月日]*", text))
        return _trailing_words(text[: numbers[-1].start()]) if numbers else ""
    return ""


def label_evidence(
    field: FieldSpec,
    others: Sequence[FieldSpec],
    page: PageRows,
    line_ids: Sequence[str],
    value: str,
) -> LabelEvidence | None:
    """The label beside a value on the page; None when the value has no line on it (ungrounded)."""
    spot = next((where for line in line_ids if (where := page.locate(line)) is not None), None)
    if spot is None:
        return None
    row, column = spot
    line = page.rows[row][column]
    places: list[tuple[str, str]] = []
    before = _label_before(line, value, field.type)
    if before:
        places.append(("line", before))
    left = next((words for cell in reversed(page.rows[row][:column]) if (words := _trailing_words(cell.text))), None)
    if left is not None and not before:
        places.append(("left", left))
    if not places and row > 0:
        above = [
            cell.text
            for cell in page.rows[row - 1]
            if cell.start < line.end and line.start < cell.end and not any(c.isdigit() for c in cell.text)
        ]
        if above:
            places.append(("above", " ".join(above)))
    own, conflicts = label_words(field)
    for other in others:
        if other.name != field.name:
            conflicts.update(_phrase(name) for name in other.names)
    conflicts -= own
    return _score(places, own, conflicts)


def _score(places: list[tuple[str, str]], own: set[str], conflicts: set[str]) -> LabelEvidence:
    best: tuple[float, str | None, str | None] = (0.0, None, None)
    against: tuple[float, str | None] = (0.0, None)
    for place, text in places:
        hit = _nearest(text, [*own, *conflicts])
        weight = PLACE_WEIGHT[place]
        if hit in own and weight > best[0]:
            best = (weight, hit, place)
        elif hit in conflicts and weight > against[0]:
            against = (weight, hit)
    return LabelEvidence(best[0], best[1], best[2], against[0], against[1])


SIGNAL_NAMES = ("ocr_confidence", "match", "label", "value_probability", "checks", "second_look")


@dataclass(frozen=True)
class FieldSignals:
    """What is known of one field's value, for its calibrated confidence. None: not available."""

    status: str  # grounded | low_confidence | ungrounded | missing | invalid
    ocr_confidence: float | None = None  # the lowest OCR confidence of its lines
    match: str | None = None  # exact | normalized | numeric | date | fuzzy
    match_score: float | None = None
    label_score: float | None = None  # None: the page was not looked at
    label: str | None = None
    conflict_score: float | None = None
    conflict: str | None = None
    value_probability: float | None = None  # None: the backend gave no token probabilities
    checks_passed: tuple[str, ...] = ()
    checks_failed: tuple[str, ...] = ()
    checked: bool = False  # a document check naming this field ran (passed, failed or skipped)
    second_look: bool | None = None  # None: no second look was spent on it

    @property
    def available(self) -> tuple[str, ...]:
        """The signals this record holds (SIGNAL_NAMES), for the result's "signals used"."""
        present = {
            "ocr_confidence": self.ocr_confidence is not None,
            "match": self.match is not None,
            "label": self.label_score is not None,
            "value_probability": self.value_probability is not None,
            "checks": self.checked,
            "second_look": self.second_look is not None,
        }
        return tuple(name for name in SIGNAL_NAMES if present[name])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks_passed"] = list(self.checks_passed)
        data["checks_failed"] = list(self.checks_failed)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSignals:
        values = dict(data)
        values["checks_passed"] = tuple(values.get("checks_passed", ()))
        values["checks_failed"] = tuple(values.get("checks_failed", ()))
        return cls(**values)
