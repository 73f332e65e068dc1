"""Ground a free-text answer in the document, as extractions are: what the answer states is looked
up in the OCR text, and what is not there is flagged.

"The customer paid RM10.00 and received a change of RM9.00" states two amounts. Each number, date,
time, code (TD01167104), quoted phrase and upper-case name in an answer is a *claim*, looked up
with the extraction's TextIndex (exact, normalized, numeric, date, fuzzy: extraction/grounding.py).
A claim not found is unsupported. A number is also checked against the label the answer ties it
to: when the words just before it ("a change of") name a label the document has (its CHANGE row),
the number must be on that row or the next; "change of RM9.00" where the CHANGE row says 1.00 is
unsupported even though 9.00 is elsewhere on the receipt (it is the total).

The lines the supported claims were found on are the answer's support (the REPL's /why). Chinese
prose is not segmented into claims: its shared phrases of four or more characters only add support
lines; its numbers, dates and codes are claims like any other.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from chatocr.extraction.extractor import evidence_at
from chatocr.extraction.grounding import Match, TextIndex
from chatocr.extraction.result import Evidence
from chatocr.extraction.validation import normalize_amount
from chatocr.ocr.types import OCRDocument

__all__ = ["AnswerCheck", "Claim", "check_answer"]

# Claim shapes, strongest first; a later shape never claims characters an earlier one took.
_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("quote", re.compile(r"\"([^\"\n]{2,80})\"|“([^”\n]{2,80})”|「([^」\n]{2,80})」|『([^』\n]{2,80})』")),
    ("date", re.compile(r"\d{4} *[年./-] *\d{1,2} *[月./-] *\d{1,2}日?|(?<!\d)\d{1,2}[./-]\d{1,2}[./-]\d{2,4}(?!\d)")),
    ("time", re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp][Mm]\b)?")),
    (
        "number",
        re.compile(r"(?<![A-Za-z0-9_.])(?:(?:RMB|RM|USD|US\$|S\$|\$|¥|￥|€|£) ?)?[-+]?\d[\d,]*(?:\.\d+)?(?: ?[元%])?"),
    ),
    ("code", re.compile(r"(?<![\w-])(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{3,}(?![\w-])")),
    ("name", re.compile(r"(?<![\w])[A-Z][A-Z&.()'-]+(?: [A-Z][A-Z&.()'-]*)+(?![\w])")),
]
_DIGITS = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]{4,}")
_WORD = re.compile(r"[A-Za-z]{3,}")
_CLAUSE_BREAK = re.compile(r"[.;:,!?。；，！？\n]| and | but ")
# Words before a number that never label it on a document.
_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "was",
        "were",
        "are",
        "has",
        "had",
        "have",
        "with",
        "for",
        "from",
        "that",
        "this",
        "these",
        "those",
        "its",
        "his",
        "her",
        "their",
        "our",
        "your",
        "which",
        "what",
        "who",
        "whom",
        "when",
        "where",
        "how",
        "there",
        "here",
        "then",
        "than",
        "also",
        "only",
        "just",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "been",
        "being",
        "is",
        "of",
        "a",
        "an",
        "to",
        "in",
        "on",
        "at",
        "by",
    ]
)


@dataclass(frozen=True)
class Claim:
    """One thing an answer states, and whether the document bears it out."""

    text: str  # as the answer states it: "RM9.00"
    start: int  # its place in the answer
    end: int
    kind: str  # quote | date | time | code | number | name
    found: bool  # the value occurs in the document
    evidence: tuple[Evidence, ...] = ()  # the OCR lines it was found on
    note: str = ""  # why it is unsupported although found (a label's row says otherwise)

    @property
    def supported(self) -> bool:
        return self.found and not self.note

    @property
    def problem(self) -> str:
        """What a reader is told about an unsupported claim."""
        if self.supported:
            return ""
        return self.note or "not found in the document"


@dataclass(frozen=True)
class AnswerCheck:
    answer: str
    claims: tuple[Claim, ...] = ()
    support: tuple[Evidence, ...] = field(default=())  # every line the answer rests on, in reading order

    @property
    def unsupported(self) -> list[Claim]:
        return [claim for claim in self.claims if not claim.supported]

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": [{**asdict(c), "supported": c.supported} for c in self.claims],
            "support": [asdict(e) for e in self.support],
        }


def check_answer(answer: str, document: OCRDocument, index: TextIndex | None = None) -> AnswerCheck:
    """The claims of `answer` looked up in `document` (index: the document's TextIndex, if built)."""
    index = index or TextIndex(document.layout())
    claims: list[Claim] = []
    taken = [False] * len(answer)
    for kind, pattern in _SHAPES:
        for m in pattern.finditer(answer):
            group = next((g for g in range(1, (pattern.groups or 0) + 1) if m.group(g)), 0)
            start, end = m.span(group)
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            claims.append(_check(answer, start, end, kind, document, index))
    claims.sort(key=lambda c: c.start)
    support: dict[str, tuple[int, Evidence]] = {}
    for claim in claims:
        if claim.supported:
            for ev in claim.evidence:
                support.setdefault(ev.line_id, (_position(index, ev.line_id), ev))
    for start, end in _shared_phrases(answer, index.text):
        for ev in evidence_at(document, index, start, end):
            support.setdefault(ev.line_id, (_position(index, ev.line_id), ev))
    ordered = tuple(ev for _, ev in sorted(support.values(), key=lambda item: item[0]))
    return AnswerCheck(answer, tuple(claims), ordered)


def _check(answer: str, start: int, end: int, kind: str, document: OCRDocument, index: TextIndex) -> Claim:
    text = answer[start:end]
    labels = _labels_before(answer, start, index.text) if kind == "number" else []
    match: Match | None
    if kind == "number":
        digits = _DIGITS.search(text)
        match = index.find(digits.group() if digits else text, "amount", hints=labels)
        if match is None or not _close_enough(kind, match):
            match = _same_value(text, index)
    else:
        match = index.find(text, "date" if kind == "date" else "text")
    if match is None or not _close_enough(kind, match):
        return Claim(text, start, end, kind, False)
    evidence = tuple(evidence_at(document, index, match.start, match.end))
    note = _label_conflict(text, labels, index) if labels else ""
    return Claim(text, start, end, kind, True, evidence, note)


def _same_value(text: str, index: TextIndex) -> Match | None:
    """The first number of the text equal in value ("RM9" states the receipt's 9.00)."""
    target = _amount(text)
    for m in _DIGITS.finditer(index.text):
        before = index.text[m.start() - 1] if m.start() else " "
        if target is not None and not before.isalnum() and _amount(m.group()) == target:
            return Match("numeric", m.start(), m.end(), 1.0)
    return None


def _close_enough(kind: str, match: Match) -> bool:
    """Names and quotes may differ from the OCR by a misread letter; a number, date, time or code
    that is only similar (9.00 for 9.000, 25,000.00 for 2,500.00) is another value."""
    if kind in ("name", "quote"):
        return True
    return match.kind in ("normalized", "numeric", "date") or (match.kind == "exact" and match.score == 1.0)


def _labels_before(answer: str, start: int, document_text: str) -> list[str]:
    """Up to four words before a number in its clause ("a change of" -> change) that the document
    also has as a word: the labels the answer ties the number to."""
    clause = _CLAUSE_BREAK.split(answer[:start])[-1]
    words = [w.casefold() for w in _WORD.findall(clause)][-4:]
    folded = document_text.casefold()
    return [w for w in words if w not in _STOPWORDS and re.search(rf"(?<![a-z]){w}(?![a-z])", folded)]


def _label_conflict(text: str, labels: list[str], index: TextIndex) -> str:
    """ "" when the number sits on (or just under) a row naming one of its labels, or when those
    rows hold no numbers at all; else what the document's labelled row says instead."""
    target = _amount(text)
    rows = index.text.split("\n")
    for label in labels:
        pattern = re.compile(rf"(?<![a-z]){label}(?![a-z])")
        said: list[str] = []
        for n, row in enumerate(rows):
            if not pattern.search(row.casefold()):
                continue
            own = _DIGITS.findall(pattern.split(row.casefold(), maxsplit=1)[-1])  # after the label
            nearby = own or (_DIGITS.findall(rows[n + 1]) if n + 1 < len(rows) else [])
            values = [_amount(v) for v in nearby]
            if target in values:
                return ""
            said += [v for v in nearby if v not in said]
        if said:
            return f"the document's {label.upper()} row says {', '.join(said)}"
    return ""


def _amount(text: str) -> Decimal | None:
    """A number's value, so that 9.00, 9.000 and RM9 compare equal."""
    normalized = normalize_amount(text)
    try:
        return Decimal(normalized) if normalized is not None else None
    except InvalidOperation:
        return None


def _shared_phrases(answer: str, text: str) -> list[tuple[int, int]]:
    """Spans of the document text that repeat four or more CJK characters of the answer."""
    spans: list[tuple[int, int]] = []
    for run in _CJK_RUN.finditer(answer):
        phrase = run.group()
        i = 0
        while i + 4 <= len(phrase):
            for j in range(len(phrase), i + 3, -1):
                at = text.find(phrase[i:j])
                if at >= 0:
                    spans.append((at, at + j - i))
                    i = j
                    break
            else:
                i += 1
    return spans


def _position(index: TextIndex, line_id: str) -> int:
    return next((span.start for span in index.layout.spans if span.line_id == line_id), len(index.text))
