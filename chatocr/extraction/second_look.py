"""A second, cheap look at the fields the other signals leave uncertain (config `second_look`).

After the checked loop, a grounded field whose value the model itself wrote with a probability
below `second_look_below` (its least likely token: calibration/probability.py) is asked again in
one short call of its own: the field alone, as a choice among numbered texts of the page, each
shown with the row it is on (the candidates the field-aware re-ask offers, extraction/reask.py,
with the value's own text among them, in reading order). No document, no examples: a few hundred
tokens. The answer is a signal only (`FieldSignals.second_look`: the choice agreed with the value
or not); the value stays the loop's. One call per document, for at most `MAX_FIELDS` fields, and
only while the document's token budget allows it.

Whether it pays is what `chatocr eval --strategy second-look --calibrate` reports (docs/trust.md,
"A second look"): how often it runs, its tokens and seconds, and the coverage at 99 % precision
with and without its signal, by the same cross-validation. Off by default: measured, it did not pay.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence

from chatocr.calibration import ValueProbability
from chatocr.conversation.templates import PromptSet
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.parsing import parse_reply
from chatocr.extraction.reask import Candidate, Question, answers_from, candidates_for, choice_schema
from chatocr.extraction.result import CallRecord, FieldResult
from chatocr.extraction.validation import check_value
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.messages import Message
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["MAX_FIELDS", "SecondLook", "agrees", "look_questions", "uncertain_fields"]

MAX_FIELDS = 4
_SCALAR = (FieldType.text, FieldType.date, FieldType.amount, FieldType.number)


def uncertain_fields(
    fields: Sequence[FieldSpec],
    results: Mapping[str, FieldResult],
    probabilities: Mapping[str, ValueProbability],
    below: float,
) -> list[FieldSpec]:
    """The grounded scalar fields whose value probability is below `below`, least sure first."""
    chosen = [
        (probabilities[f.name].probability, n, f)
        for n, f in enumerate(fields)
        if f.type in _SCALAR
        and f.name in probabilities
        and probabilities[f.name].probability < below
        and (result := results.get(f.name)) is not None
        and result.status in ("grounded", "low_confidence")
    ]
    return [f for _, _, f in sorted(chosen, key=lambda item: (item[0], item[1]))[:MAX_FIELDS]]


def _fold(text: object) -> str:
    return re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", str(text)).casefold())


def agrees(field: FieldSpec, chosen: str | None, result: FieldResult) -> bool:
    """Whether the second look chose the value the loop kept (the same text, or the same date or
    amount written another way)."""
    if chosen is None:
        return False
    if _fold(chosen) in (_fold(result.value), _fold(result.answer if result.answer is not None else result.value)):
        return True
    if field.type is FieldType.text:
        return False
    checked = check_value(field, chosen)
    return checked.problem is None and checked.normalized is not None and checked.normalized == result.normalized


def look_questions(fields: Sequence[FieldSpec], results: Mapping[str, FieldResult], index: TextIndex) -> list[Question]:
    """Per field its candidates, the value's own text among them, in reading order."""
    out: list[Question] = []
    for field in fields:
        result = results[field.name]
        candidates = list(dict.fromkeys(candidates_for(field, str(result.value), index)))
        if not any(agrees(field, c.text, result) for c in candidates):
            candidates.append(Candidate(str(result.value), _row_of_value(index, result)))
        if all(agrees(field, c.text, result) for c in candidates):  # no rival to choose: no look
            continue
        text = index.text
        candidates.sort(key=lambda c: (text.find(c.text) if c.text in text else len(text), c.text))
        out.append(Question(field, tuple(candidates)))
    return out


def _row_of_value(index: TextIndex, result: FieldResult) -> str:
    """The layout row holding the value's first line (what the model saw around it)."""
    line = result.evidence[0].line_id if result.evidence else None
    span = next((sp for sp in index.layout.spans if sp.line_id == line), None)
    if span is None:
        return str(result.value)
    text = index.text
    start = text.rfind("\n", 0, span.start) + 1
    end = text.find("\n", span.end)
    return text[start : end if end >= 0 else len(text)].strip()


class SecondLook:
    """One document's second look: the questions, the call, the verdicts."""

    def __init__(self, model: ChatModel, prompts: PromptSet, settings: ChatSettings, title: str) -> None:
        self.model, self.prompts, self.settings, self.title = model, prompts, settings, title

    def messages(self, questions: Sequence[Question]) -> list[Message]:
        view = [
            {
                "name": q.field.name,
                "description": q.field.description,
                "candidates": [
                    {"number": n, "text": c.text, "context": c.context} for n, c in enumerate(q.candidates, 1)
                ],
            }
            for q in questions
        ]
        keys = json.dumps([q.field.name for q in questions], ensure_ascii=False)
        text = self.prompts.render("second_look", title=self.title, questions=view, keys_json=keys)
        return [Message("user", text, kind="second_look")]

    async def run(
        self, questions: Sequence[Question], results: Mapping[str, FieldResult], calls: list[CallRecord]
    ) -> dict[str, bool]:
        """Ask; per field whether the choice agreed with the value. A failed call is recorded in
        `calls` and gives no verdict (the look is a signal, never a reason to fail a document)."""
        messages = self.messages(questions)
        record = CallRecord.start("second_look", self.model, messages)
        calls.append(record)
        settings = ChatSettings(
            temperature=self.settings.temperature,
            max_output_tokens=16 + 8 * len(questions),
            json_mode=choice_schema(questions),
            timeout=self.settings.timeout,
        )
        try:
            reply = await self.model.chat(messages, settings)
        except Exception as exc:  # recorded; the document keeps its values
            record.error = f"{type(exc).__name__}: {exc}"
            return {}
        record.finish(reply)
        chosen = answers_from(questions, parse_reply(reply.text).data)
        return {q.field.name: agrees(q.field, chosen.get(q.field.name), results[q.field.name]) for q in questions}
