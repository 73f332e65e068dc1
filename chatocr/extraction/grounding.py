"""Ground an extracted value in the OCR text: find where it is, and so which boxes it came from.

PP-ChatOCR asks the model for verbatim values and never checks; LMDX discards any value not in
the source. We check every value, in order of strictness, and keep how it matched:

    exact       the value occurs as is in the text the model saw
    normalized  it occurs after NFKC, case folding and removing whitespace (full-width forms,
                values wrapped over two rows)
    numeric     an amount/number equal to a number in the text ("25,000.00" vs "¥25000.00")
    date        a date equal to a date in the text ("2024-03-18" vs "2024年03月18日")
    fuzzy       a close match (similarity >= FUZZY_THRESHOLD) within one to three consecutive
                lines: OCR errors the model corrected, e.g. "0" read as "O"

Fuzzy matching is for text. An amount, number or date is on the page only when the page holds that
number or that date: its exact or normalized occurrence counts only where the page's text there
means the same value and is not cut out of a longer number (`3.00` inside `13.00`); otherwise it
is found by value (numeric, date) or not at all. `8.00` is never grounded on `CHANGE 7.00`, nor
`25/12/2019` on `25/12/2018`: the near miss is another value, and a wrong value marked grounded
would be trusted.

A value with no match is ungrounded: flagged in the result, never silently trusted.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from chatocr.extraction.validation import date_readings, normalize_amount
from chatocr.ocr.layout import LayoutText
from chatocr.textnorm import fold_positions

__all__ = ["FUZZY_THRESHOLD", "NUMBER_KINDS", "TYPED_KINDS", "Match", "TextIndex", "number_value"]

FUZZY_THRESHOLD = 0.8
# Field kinds grounded by value: never by similarity, never inside a longer number.
NUMBER_KINDS = frozenset({"amount", "number"})
TYPED_KINDS = NUMBER_KINDS | {"date"}
# Marks inside a printed number (`1,234.56`, `1'234`): a digit beyond one of them continues the number.
_NUMBER_MARKS = ",，.．'’"
# A number in the text with its separators (`1,234.56`, `1.234,56`, `12,34`): normalize_amount reads them.
# Unlike validation.NUMBER, never across a space: in the layout text a space may part two cells ("2 100.00").
_NUMBER = re.compile(r"[-+]?\d(?:[\d,，.．'’]*\d)?")
# Each date shape separately: as one alternation, an early wrong match would hide a later one.
_DATES = [
    re.compile(p)
    for p in (
        r"\d{4} *[年./-] *\d{1,2} *[月./-] *\d{1,2}日?",
        # A two-digit year with a time glued on by the OCR (`9/11/2611:43`) is that year.
        r"(?<!\d)\d{1,2}[./-]\d{1,2}[./-](?:\d{2}(?=\d{1,2}:\d{2})|\d{2,4})",
        r"(?<!\d)\d{1,2}(?:st|nd|rd|th)?[ ./-]*[A-Za-z]{3,9}\.?,?[ ./-]*(?:\d{4}|\d{2}(?![\d:]))",
        r"\b[A-Za-z]{3,9}\.?[ ./-]*\d{1,2}(?:st|nd|rd|th)?,?[ ./-]*\d{4}",
    )
]


def number_value(text: str) -> Decimal | None:
    """The value of the one number in `text` after the normalisations of `normalize_amount`
    (currency signs, thousands separators, decimal commas): `RM 9.00`, `9`, `9.0` and `1.234,56 €`
    are 9, 9, 9 and 1234.56. None when it holds no single number."""
    normalized = normalize_amount(text)
    try:
        return Decimal(normalized) if normalized is not None else None
    except InvalidOperation:  # pragma: no cover - normalize_amount returns Decimal strings
        return None


@dataclass(frozen=True)
class Match:
    kind: str  # exact | normalized | numeric | date | fuzzy
    start: int  # character range in the layout text
    end: int
    score: float  # 1.0 except for fuzzy matches


class TextIndex:
    """The text a model saw, prepared once for grounding many values."""

    def __init__(self, layout: LayoutText) -> None:
        self.layout = layout
        self.text = layout.text
        self._folded, self._positions = fold_positions(self.text)
        self._numbers = [(m.start(), m.end(), number_value(m.group())) for m in _NUMBER.finditer(self.text)]
        # Each date with every ISO date it can mean (`9/11/26`: day first or month first).
        self._dates = [
            (m.start(), m.end(), date_readings(m.group())) for pattern in _DATES for m in pattern.finditer(self.text)
        ]
        self._segment_cache: list[tuple[int, str, list[int], Counter[str]]] | None = None

    @property
    def _segments(self) -> list[tuple[int, str, list[int], Counter[str]]]:
        """One to three consecutive lines (in reading order), folded, for fuzzy matching of wrapped
        values. Built on first use: most values match exactly and never need it."""
        if self._segment_cache is None:
            bounds: list[tuple[int, int]] = []
            spans = self.layout.spans
            for i in range(len(spans)):
                for width in (1, 2, 3):
                    if i + width <= len(spans):
                        bounds.append((spans[i].start, spans[i + width - 1].end))
            if not spans and self.text:
                bounds.append((0, len(self.text)))
            segments = []
            for start, end in bounds:
                folded, positions = fold_positions(self.text[start:end])
                segments.append((start, folded, positions, Counter(folded)))
            self._segment_cache = segments
        return self._segment_cache

    def _row(self, start: int, end: int) -> str:
        """The rendered row (line of the layout text) holding characters [start, end)."""
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        return self.text[line_start : len(self.text) if line_end < 0 else line_end]

    def _whole(self, start: int, end: int, value: str) -> bool:
        """The match does not cut a word or number in two ("9.00" inside "9.000" does)."""
        before = self.text[start - 1] if start > 0 else " "
        after = self.text[end] if end < len(self.text) else " "
        cut_before = value[:1].isalnum() and before.isalnum()
        cut_after = value[-1:].isalnum() and (after.isalnum() or (after == "." and value[-1:].isdigit()))
        return not (cut_before or cut_after)

    def _pick(self, spans: list[tuple[int, int]], value: str, hints: Sequence[str]) -> tuple[int, int] | None:
        """Of several places a value occurs, the one that is a whole token and, better, sits on a
        row naming the field (TOTAL for a total); the first such in reading order."""
        if not spans:
            return None

        patterns = [
            re.compile(rf"(?<![a-z]){re.escape(h)}(?![a-z])") if h.isascii() else re.compile(re.escape(h))
            for h in hints
        ]

        def rank(span: tuple[int, int]) -> tuple[bool, bool]:
            row = self._row(*span).casefold()  # "total" labels "TOTAL 9.00", not "SUBTOTAL 9.00"
            return self._whole(*span, value), any(p.search(row) for p in patterns)

        return max(spans, key=rank)  # max keeps the first of equals

    def find(self, value: str, kind: str = "text", hints: Sequence[str] = ()) -> Match | None:
        """Where `value` sits in the text, trying the strictest match first. `hints` (the field's
        name and aliases, case-folded) choose between several occurrences. An amount, number or
        date is found only as that value (see the module docstring)."""
        value = value.strip()
        if not value:
            return None
        hints = [h.casefold() for h in hints if h]
        if kind in TYPED_KINDS:
            return self._find_typed(value, kind, hints)
        occurrences = self._occurrences(value)
        exact = self._pick(occurrences, value, hints)
        if exact is not None and self._whole(*exact, value):
            return Match("exact", *exact, 1.0)
        folded, _ = fold_positions(value)
        if folded and exact is None:
            at = self._folded.find(folded)
            if at >= 0:
                return Match("normalized", self._positions[at], self._positions[at + len(folded) - 1] + 1, 1.0)
        if exact is not None:  # only inside a longer token: better than nothing, worse than the above
            return Match("exact", *exact, 0.9)
        if len(folded) >= 4:
            return self._fuzzy(folded)
        return None

    def _occurrences(self, value: str) -> list[tuple[int, int]]:
        """Where `value` occurs as is (the first 50 places)."""
        found: list[tuple[int, int]] = []
        at = self.text.find(value)
        while at >= 0 and len(found) < 50:
            found.append((at, at + len(value)))
            at = self.text.find(value, at + 1)
        return found

    def _folded_occurrences(self, value: str) -> list[tuple[int, int]]:
        """Where `value` occurs after folding (NFKC, case, whitespace), as ranges of the text."""
        folded, _ = fold_positions(value)
        found: list[tuple[int, int]] = []
        at = self._folded.find(folded) if folded else -1
        while at >= 0 and len(found) < 50:
            found.append((self._positions[at], self._positions[at + len(folded) - 1] + 1))
            at = self._folded.find(folded, at + 1)
        return found

    def _find_typed(self, value: str, kind: str, hints: Sequence[str]) -> Match | None:
        """An amount, number or date: where the page holds that same value, or None."""
        if kind in NUMBER_KINDS:
            # Equal in value: `1,234.50` and `RM1234.50` are 1234.50; an answer of 9 for `9.00` is that number.
            target = number_value(value)
            if target is None:
                return None

            def same(start: int, end: int) -> bool:
                return number_value(self.text[start:end]) == target

            by_value = [(s, e) for s, e, n in self._numbers if n == target]
            how = "numeric"
        else:
            readings = date_readings(value)
            if not readings:
                return None
            wanted = readings[0]  # the answer's own reading, against any reading of the page's date

            def same(start: int, end: int) -> bool:
                return wanted in date_readings(self.text[start:end])

            by_value = [(s, e) for s, e, isos in self._dates if wanted in isos]
            how = "date"
        exact = [span for span in self._occurrences(value) if self._separate(*span) and same(*span)]
        picked = self._pick(exact, value, hints)
        if picked is not None and self._whole(*picked, value):
            return Match("exact", *picked, 1.0)
        if not exact:
            folded = [span for span in self._folded_occurrences(value) if self._separate(*span) and same(*span)]
            if folded:
                return Match("normalized", *folded[0], 1.0)
        picked = self._pick(by_value, value, hints)
        if picked is not None:
            return Match(how, *picked, 1.0)
        return None

    def _separate(self, start: int, end: int) -> bool:
        """Characters [start, end) are not cut out of a longer number: no digit goes on from either
        end, directly or across one separator (`3.00` in `13.00`, `1,234` in `1,234,567`)."""
        text = self.text

        def continues(edge: str, near: str, far: str) -> bool:
            if not (edge.isdigit() or edge in _NUMBER_MARKS):
                return False
            return near.isdigit() or (near in _NUMBER_MARKS and far.isdigit())

        before = text[start - 1] if start > 0 else ""
        before_far = text[start - 2] if start > 1 else ""
        after = text[end] if end < len(text) else ""
        after_far = text[end + 1] if end + 1 < len(text) else ""
        if start < end and continues(text[start], before, before_far):
            return False
        return not (start < end and continues(text[end - 1], after, after_far))

    def occurrences(self, kind: str) -> list[tuple[int, int]]:
        """Character ranges of every date ("date") or number ("amount", "number") in the text, in
        reading order: the candidates of a field-aware re-ask (chatocr.extraction.reask)."""
        if kind == "date":
            return sorted({(s, e) for s, e, isos in self._dates if isos})
        if kind in ("amount", "number"):
            return [(s, e) for s, e, n in self._numbers if n is not None]
        return []

    def _fuzzy(self, folded_value: str) -> Match | None:
        best: Match | None = None
        wanted = Counter(folded_value)
        # A segment sharing fewer characters than the threshold allows cannot match: skip it
        # before the (much dearer) sequence alignment.
        needed = FUZZY_THRESHOLD * len(folded_value) / (2 - FUZZY_THRESHOLD)
        for seg_start, segment, positions, counts in self._segments:
            if not segment or sum((wanted & counts).values()) < needed:
                continue
            matcher = difflib.SequenceMatcher(None, segment, folded_value, autojunk=False)
            blocks = [b for b in matcher.get_matching_blocks() if b.size]
            if not blocks:
                continue
            lo, hi = blocks[0].a, blocks[-1].a + blocks[-1].size
            matched = sum(b.size for b in blocks)
            score = 2.0 * matched / (len(folded_value) + (hi - lo))
            if score >= FUZZY_THRESHOLD and (best is None or score > best.score):
                best = Match("fuzzy", seg_start + positions[lo], seg_start + positions[hi - 1] + 1, round(score, 3))
                if score == 1.0:
                    break
        return best
