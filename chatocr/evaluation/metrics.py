"""Accuracy metrics for key information extraction, with the normalisation stated.

Every comparison goes through `normalize` (or a field's own normaliser built on it):

    NFKC (full-width forms -> ASCII: "：" -> ":", "０" -> "0", "￥" -> "¥"), case-folded, and ALL
    whitespace removed ("53 55,57" == "5355,57"; a multi-line address joined with or without
    spaces compares equal). Nothing else: punctuation, words and digits must match.

Field normalisers (chosen per field by the dataset profile or the scenario field's type) handle
label quirks on top of that:

- `amount`: the number only. Currency signs and words ("RM", "￥", "元", "$") and thousands
  separators are dropped and the number compared as a decimal: "￥41.0元" == "41" == "41.00".
- `masked_id_name`: a masked ID number glued to a name ("1101011990****1234张三") is stripped
  from label and prediction alike, leaving the name ("张三"); the ID is not part of the name.
- `text` (the default): `normalize` only.

Metrics, per field and overall, over (document, field) pairs:

- exact: share of pairs whose normalised prediction equals the normalised label; an absent label
  key counts as "no value", and predicting nothing for it is correct.
- ANLS: average normalised Levenshtein similarity (1 - distance / longer length; 0 below the
  0.5 threshold), on the normalised strings; both empty = 1.
- precision / recall / F1 over non-empty values: TP = a non-empty prediction equal to a
  non-empty label; precision = TP / non-empty predictions; recall = TP / non-empty labels.
- OCR recall: share of non-empty label values found in the normalised OCR text (the ceiling
  of any extraction from that OCR).
- grounding rate: share of non-empty predictions the pipeline grounded in the OCR text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from chatocr.extraction.validation import NUMBER
from chatocr.extraction.validation import normalize_amount as read_amount
from chatocr.textnorm import fold

__all__ = [
    "ANLS_THRESHOLD",
    "MISSING_VALUES",
    "NORMALIZATION",
    "NORMALIZERS",
    "FieldCounts",
    "anls",
    "as_text",
    "get_normalizer",
    "levenshtein",
    "normalize",
    "normalize_amount",
    "normalize_masked_id_name",
    "ocr_contains",
    "search_forms",
]

ANLS_THRESHOLD = 0.5

NORMALIZATION = (
    "NFKC, case-folded, all whitespace removed; amounts compared as decimals without currency "
    "(RM, ￥, 元, $ ...) or thousands separators; masked ID numbers (digits with ****) stripped "
    "from names; a value of null, '', '未知', 'None', 'N/A' counts as no value"
)

# Answers that mean "no value" (PP-ChatOCR's own failure markers included).
MISSING_VALUES = frozenset(
    {"", "none", "null", "未知", "未找到关键信息", "未找到相关信息", "大模型调用失败", "n/a", "unknown"}
)

_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_MASKED_ID = re.compile(r"[0-9a-z]*\*{2,}[0-9a-z]*")


def as_text(value: Any) -> str:
    """A predicted or labelled value as one string ('' for no value). Lists are joined with
    spaces; dicts contribute their values."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return " ".join(as_text(v) for v in value.values() if v is not None)
    if isinstance(value, (list, tuple)):
        return " ".join(as_text(v) for v in value if v is not None)
    text = str(value).strip()
    return "" if text.casefold() in MISSING_VALUES else text


def normalize(value: Any) -> str:
    """NFKC, case-folded, all whitespace removed (chatocr.textnorm.fold, the one normaliser), of the
    value as text; a missing-value word ("n/a", "未知") counts as no value."""
    text = fold(as_text(value))
    return "" if text in MISSING_VALUES else text


def normalize_amount(value: Any) -> str:
    """The number in an amount, as a canonical decimal ("￥41.0元" -> "41"); the plain
    normalisation when there is no single readable number."""
    text = normalize(value)
    if not text:
        return ""
    numbers = _NUMBER.findall(text)
    if len(numbers) != 1:
        return text
    raw = numbers[0].replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", numbers[0]) else numbers[0]
    raw = raw.replace(",", ".") if raw.count(",") == 1 and "." not in raw else raw.replace(",", "")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return text
    canonical = format(number.normalize(), "f")
    return "0" if canonical in ("-0", "") else canonical


def _as_decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def normalize_masked_id_name(value: Any) -> str:
    """A name without the masked ID number glued to it ("1101011990****1234张三" -> "张三")."""
    return _MASKED_ID.sub("", normalize(value))


NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "text": normalize,
    "amount": normalize_amount,
    "masked_id_name": normalize_masked_id_name,
}


def get_normalizer(kind: str) -> Callable[[Any], str]:
    try:
        return NORMALIZERS[kind]
    except KeyError:
        raise ValueError(f"unknown normaliser {kind!r}; known: {', '.join(NORMALIZERS)}") from None


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1)."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, label: str, threshold: float = ANLS_THRESHOLD) -> float:
    """Normalised Levenshtein similarity of two (already normalised) strings, 0 below threshold."""
    if not prediction and not label:
        return 1.0
    if not prediction or not label:
        return 0.0
    similarity = 1.0 - levenshtein(prediction, label) / max(len(prediction), len(label))
    return similarity if similarity >= threshold else 0.0


def search_forms(label: Any, kind: str) -> list[str]:
    """The normalised strings whose presence in the normalised OCR text means the label value is
    readable there: for amounts the number as printed (without currency) and its canonical form."""
    if kind == "amount":
        text = normalize(label)
        forms = [n.replace(",", "") for n in _NUMBER.findall(text)]
        canonical = normalize_amount(label)
        if canonical:
            forms.append(canonical)
            if "." not in canonical:
                forms += [f"{canonical}.00", f"{canonical}.0"]
            elif len(canonical.split(".")[1]) == 1:
                forms.append(canonical + "0")
        return [f for f in dict.fromkeys(forms) if f] or ([text] if text else [])
    value = get_normalizer(kind)(label)
    return [value] if value else []


def ocr_contains(ocr_normalized: Iterable[str], label: Any, kind: str) -> bool:
    """Whether the label value occurs in any of the (normalised) OCR renderings."""
    texts = list(ocr_normalized)
    forms = search_forms(label, kind)
    if kind == "amount":
        if forms and any(form in text.replace(",", "") for form in forms for text in texts):
            return True
        # Or printed in another number format (`134,39 €`, `1.234,56`): any number of the OCR
        # text, read as the pipeline reads numbers, equal to the label's.
        wanted = _as_decimal(normalize_amount(label))
        return wanted is not None and any(
            _as_decimal(read_amount(token)) == wanted for text in texts for token in NUMBER.findall(text)
        )
    return bool(forms) and any(form in text for form in forms for text in texts)


@dataclass
class FieldCounts:
    """Running totals for one field (or all fields together)."""

    pairs: int = 0
    exact: int = 0
    anls_sum: float = 0.0
    predicted: int = 0  # non-empty predictions
    labelled: int = 0  # non-empty labels
    true_positive: int = 0
    grounded: int = 0  # non-empty predictions grounded in the OCR text
    grounding_known: int = 0  # non-empty predictions whose grounding status is known
    in_ocr: int = 0  # non-empty labels found in the OCR text
    mismatches: list[dict[str, str]] = field(default_factory=list)

    def add(
        self,
        prediction: str,
        label: str,
        *,
        grounded: bool | None = None,
        in_ocr: bool | None = None,
        where: str = "",
        raw_prediction: Any = None,
        raw_label: Any = None,
    ) -> bool:
        """Count one (document, field) pair of NORMALISED strings; returns whether it matched."""
        self.pairs += 1
        match = prediction == label
        self.exact += match
        self.anls_sum += anls(prediction, label)
        if prediction:
            self.predicted += 1
            if grounded is not None:
                self.grounding_known += 1
                self.grounded += grounded
        if label:
            self.labelled += 1
            self.in_ocr += bool(in_ocr)
        if prediction and label and match:
            self.true_positive += 1
        if not match and len(self.mismatches) < 200:
            self.mismatches.append(
                {"document": where, "predicted": as_text(raw_prediction), "label": as_text(raw_label)}
            )
        return match

    def merge(self, other: FieldCounts) -> None:
        self.pairs += other.pairs
        self.exact += other.exact
        self.anls_sum += other.anls_sum
        self.predicted += other.predicted
        self.labelled += other.labelled
        self.true_positive += other.true_positive
        self.grounded += other.grounded
        self.grounding_known += other.grounding_known
        self.in_ocr += other.in_ocr

    def summary(self) -> dict[str, float | int | None]:
        precision = self.true_positive / self.predicted if self.predicted else None
        recall = self.true_positive / self.labelled if self.labelled else None
        if precision is None or recall is None:
            f1: float | None = None
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "pairs": self.pairs,
            "exact": _ratio(self.exact, self.pairs),
            "anls": round(self.anls_sum / self.pairs, 4) if self.pairs else None,
            "precision": _round(precision),
            "recall": _round(recall),
            "f1": _round(f1),
            "predicted": self.predicted,
            "labelled": self.labelled,
            "ocr_recall": _ratio(self.in_ocr, self.labelled),
            "grounding_rate": _ratio(self.grounded, self.grounding_known),
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
