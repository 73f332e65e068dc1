"""Field-aware re-asks: a field still missing, ungrounded or invalid after the first answer is
asked about alone, as a multiple-choice question over numbered candidates from the page.

Repeating the whole task with "these problems remain" asks a small model to redo everything and
often gets the same answer back. Choosing among eight numbered lines is a question it answers
well, and the answer is grounded by construction: every choice is the page's own text.

Candidates per field, at most MAX_CANDIDATES, in reading order:

    date                every date on the page, as printed
    amount / number     every number on a row that names the field (its name's words, its
                        aliases), else the numbers of the rows the model's answer resembles
    text                the lines most like the model's (ungrounded) answer, the lines right of or
                        below a label naming the field, and each such line joined with the next
                        or the one before (a name or address over two lines); never a line the
                        field's `never` patterns rule out, and when the answer was such a whole
                        line, that line joined to the one before it first

The question goes out as one call for all such fields (one step of the loop's budget), with a
JSON schema that only admits the numbers shown (0: none of them), so a grammar-constrained
backend cannot answer anything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from chatocr.conversation.templates import PromptSet
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import FieldResult
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = [
    "MAX_CANDIDATES",
    "Candidate",
    "Question",
    "answers_from",
    "candidates_for",
    "choice_schema",
    "questions_for",
    "render_question",
]

MAX_CANDIDATES = 8
_REASKED = ("missing", "ungrounded", "invalid")


@dataclass(frozen=True)
class Candidate:
    text: str  # the page's own text: what the field gets when chosen
    context: str  # the row it sits on, shown beside it


@dataclass(frozen=True)
class Question:
    field: FieldSpec
    candidates: tuple[Candidate, ...]


def _rows(index: TextIndex) -> list[tuple[int, int]]:
    """Character ranges of the layout text's rows."""
    out, start = [], 0
    for line in index.text.split("\n"):
        out.append((start, start + len(line)))
        start += len(line) + 1
    return out


def _row_of(rows: list[tuple[int, int]], at: int) -> int:
    for number, (start, end) in enumerate(rows):
        if start <= at <= end:
            return number
    return len(rows) - 1


def _labels(field: FieldSpec) -> list[re.Pattern[str]]:
    """Words that name the field on a page: its name's parts (3+ letters) and its aliases."""
    words = [w for w in field.name.replace("-", "_").split("_") if len(w) >= 3 or not w.isascii()]
    words += list(field.aliases)
    return [re.compile(rf"(?<![a-z]){re.escape(w.casefold())}(?![a-z])") for w in words if w]


def _labelled_rows(index: TextIndex, rows: list[tuple[int, int]], field: FieldSpec) -> list[int]:
    patterns = _labels(field)
    return [n for n, (s, e) in enumerate(rows) if any(p.search(index.text[s:e].casefold()) for p in patterns)]


def _typed_candidates(index: TextIndex, field: FieldSpec, answer: str | None) -> list[Candidate]:
    rows = _rows(index)
    spans = index.occurrences(field.type.value)
    if field.type is not FieldType.date:
        labelled = set(_labelled_rows(index, rows, field))
        near = [sp for sp in spans if _row_of(rows, sp[0]) in labelled]
        if not near and answer:
            near = sorted(spans, key=lambda sp: -fuzz.ratio(answer, index.text[sp[0] : sp[1]]))
        spans = near or spans
    picked = sorted(spans[:MAX_CANDIDATES]) if field.type is FieldType.date else sorted(spans[-MAX_CANDIDATES:])
    out: list[Candidate] = []
    for start, end in picked:
        s, e = rows[_row_of(rows, start)]
        out.append(Candidate(index.text[start:end], index.text[s:e].strip()))
    return out


def _text_candidates(index: TextIndex, field: FieldSpec, answer: str | None) -> list[Candidate]:
    lines = [index.text[span.start : span.end].strip() for span in index.layout.spans]
    lines = [line for line in lines if line]
    if not lines:
        return []
    completions: list[Candidate] = []
    if field.ruled_out(answer):
        # An answer the scenario rules out ("TAX INVOICE" for a company) says nothing about where
        # the value is: lines resembling it would be more titles. Labels, else reading order, decide.
        # If it is a whole line, the model may have pointed at the end of the value ("CO. (M) SDN
        # BHD", a name's second line): that line joined to the one before it is offered first.
        said = " ".join(str(answer).split()).casefold()
        for i in range(1, len(lines)):
            joined = f"{lines[i - 1]} {lines[i]}"
            fits = not field.ruled_out(lines[i - 1]) and not field.ruled_out(joined)
            if fits and " ".join(lines[i].split()).casefold() == said:
                completions.append(Candidate(joined, joined))
        answer = None
    score = [0.0] * len(lines)
    if answer:
        for i, line in enumerate(lines):
            score[i] = fuzz.partial_ratio(answer, line) / 100.0
    patterns = _labels(field)
    for i, line in enumerate(lines):
        if any(p.search(line.casefold()) for p in patterns):
            # The label's own line (its value may follow the colon) and the next two lines.
            for j, weight in ((i, 0.6), (i + 1, 0.9), (i + 2, 0.5)):
                if j < len(lines):
                    score[j] = max(score[j], weight)
    allowed = [i for i in range(len(lines)) if not field.ruled_out(lines[i])]
    ranked = sorted(allowed, key=lambda i: (-score[i], i))
    chosen = sorted(i for i in ranked[: MAX_CANDIDATES // 2] if score[i] > 0) or ranked[: MAX_CANDIDATES // 2]
    out: list[Candidate] = completions[: MAX_CANDIDATES // 2] + [Candidate(lines[i], lines[i]) for i in sorted(chosen)]
    # The value may continue on the next line, or (a name's second line answered alone) have
    # started on the line before.
    pairs = dict.fromkeys(pair for i in sorted(chosen) for pair in ((i, i + 1), (i - 1, i)))
    for a, b in pairs:
        if a >= 0 and b < len(lines) and len(out) < MAX_CANDIDATES:
            joined = f"{lines[a]} {lines[b]}"
            # Not a join that starts with a ruled-out line (the title above a name); a ruled-out
            # line may end one (a name's legal form on the line below it).
            if not field.ruled_out(lines[a]) and not field.ruled_out(joined):
                out.append(Candidate(joined, joined))
    return list(dict.fromkeys(out))[:MAX_CANDIDATES]


def candidates_for(field: FieldSpec, answer: str | None, index: TextIndex) -> list[Candidate]:
    """The page's texts that could be `field`'s value (see the module's docstring), for `answer`."""
    if field.type in (FieldType.date, FieldType.amount, FieldType.number):
        return _typed_candidates(index, field, answer)
    return _text_candidates(index, field, answer)


def questions_for(fields: Sequence[FieldSpec], results: Mapping[str, FieldResult], index: TextIndex) -> list[Question]:
    """One question per required field whose best answer so far is missing, ungrounded or invalid
    (not lists or enums: a list has no single line, an enum's grammar already constrains it)."""
    out: list[Question] = []
    for field in fields:
        result = results.get(field.name)
        if not field.required or field.type in (FieldType.list, FieldType.enum, FieldType.object):
            continue
        if result is not None and result.status not in _REASKED:
            continue
        answer = str(result.value) if result is not None and result.value is not None else None
        candidates = candidates_for(field, answer, index)
        if candidates:
            out.append(Question(field, tuple(dict.fromkeys(candidates))))
    return out


def choice_schema(questions: Sequence[Question]) -> dict[str, Any]:
    """The answer's JSON schema: per field one of the numbers shown, 0 for none of them."""
    properties = {q.field.name: {"enum": list(range(len(q.candidates) + 1))} for q in questions}
    return {"type": "object", "properties": properties, "required": list(properties)}


def answers_from(questions: Sequence[Question], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The chosen candidates' texts by field (None for 0, an unreadable or out-of-range choice)."""
    out: dict[str, Any] = {}
    data = data or {}
    for question in questions:
        choice = data.get(question.field.name)
        try:
            number = int(str(choice).strip())
        except (TypeError, ValueError):
            number = 0
        out[question.field.name] = (
            question.candidates[number - 1].text if 1 <= number <= len(question.candidates) else None
        )
    return out


def render_question(prompts: PromptSet, questions: Sequence[Question]) -> str:
    """The re-ask's user message, from the prompt set's `choose` template."""
    view = [
        {
            "name": q.field.name,
            "description": q.field.description,
            "candidates": [{"number": n, "text": c.text, "context": c.context} for n, c in enumerate(q.candidates, 1)],
        }
        for q in questions
    ]
    keys = json.dumps([q.field.name for q in questions], ensure_ascii=False)
    return prompts.render("choose", questions=view, keys_json=keys)
