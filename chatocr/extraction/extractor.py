"""Checking one answer: validate every value against its field, ground it in the OCR text the model
saw, and name the problems to re-ask about; keep the best answer per field across steps.

The loop that asks, checks and asks again within a budget is `ExtractionPipeline.run`
(chatocr/extraction/pipeline.py); re-planning with less is `ConversationPlanner.shrink`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.items import ground_parts, leaf_confidence
from chatocr.extraction.result import CallRecord, Evidence, FieldResult
from chatocr.extraction.validation import check_value
from chatocr.llm.base import ChatModel
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["ExtractionBudget", "evaluate", "json_schema_for", "merge_best", "tokens_used"]

_RANK = {"grounded": 4, "low_confidence": 3, "ungrounded": 2, "invalid": 1, "missing": 0}


@dataclass(frozen=True)
class ExtractionBudget:
    max_steps: int = 3  # LLM calls for one document: the first answer plus re-asks
    max_tokens: int = 40000  # prompt + completion tokens over all calls for one document
    replan_factor: float = 0.7  # on "context too long", re-plan with this share of the budget
    max_replans: int = 3


def json_schema_for(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """The answer's JSON schema: every key present, strings (or lists) or null. Backends that can
    constrain decoding (llama.cpp) enforce it; the others get plain JSON mode."""
    properties: dict[str, Any] = {}
    for field in fields:
        if field.type is FieldType.list:
            item: dict[str, Any] = {"type": "string"}
            if field.items:
                item = {"type": "object", "properties": _sub_properties(field)}
            properties[field.name] = {"type": ["array", "null"], "items": item}
        elif field.type is FieldType.object:
            properties[field.name] = {"type": ["object", "null"], "properties": _sub_properties(field)}
        elif field.type is FieldType.enum:
            # No "type" beside "enum": llama-cpp-python's grammar builder, given a list of types,
            # makes a union of them and drops the enum, so any string would be accepted.
            properties[field.name] = {"enum": [*field.choices, None]}
        else:
            properties[field.name] = {"type": ["string", "null"]}
    return {"type": "object", "properties": properties, "required": [f.name for f in fields]}


def _sub_properties(field: FieldSpec) -> dict[str, Any]:
    return {
        sub.name: {"enum": [*sub.choices, None]} if sub.choices else {"type": ["string", "null"]} for sub in field.items
    }


def evidence_at(document: OCRDocument, index: TextIndex, start: int, end: int) -> list[Evidence]:
    """The OCR lines of characters [start, end) of the layout text, as evidence."""
    out = []
    for line_id in index.layout.line_ids(start, end):
        try:
            line = document.line(line_id)
        except KeyError:
            continue
        page = int(line_id.split("-")[0].lstrip("p")) if line_id.startswith("p") else 0
        out.append(Evidence(line_id, line.text, [list(p) for p in line.box], round(line.confidence, 4), page))
    return out


def _ground(
    field: FieldSpec, value: Any, document: OCRDocument, index: TextIndex
) -> tuple[str | None, float | None, list[Evidence]]:
    """(match kind, score, evidence) of a value; (None, None, []) when it is not in the text."""
    pieces: list[tuple[str, str]] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                sub_types = {sub.name: sub.type for sub in field.items}
                pieces += [(str(v), sub_types.get(k, "text")) for k, v in item.items() if v not in (None, "")]
            elif item not in (None, ""):
                pieces.append((str(item), "text"))
    else:
        pieces.append((str(value), field.type.value))
    if not pieces:
        return None, None, []
    evidence: list[Evidence] = []
    kinds: list[str] = []
    scores: list[float] = []
    hints = _hints(field)
    for text, kind in pieces:
        match = index.find(text, kind, hints)
        if match is None:
            return None, None, []
        kinds.append(match.kind)
        scores.append(match.score)
        for ev in evidence_at(document, index, match.start, match.end):
            if ev.line_id not in {e.line_id for e in evidence}:
                evidence.append(ev)
    worst = min(range(len(kinds)), key=lambda i: (scores[i], kinds[i] != "exact"))
    return kinds[worst], min(scores), evidence


def _hints(field: FieldSpec) -> list[str]:
    """Words that label a field on a document: its name's parts and its aliases ("total",
    "total_amount" -> "total", "amount"; "价税合计")."""
    words = [part for part in field.name.replace("-", "_").split("_") if len(part) >= 3 or not part.isascii()]
    return [*words, *field.aliases]


def evaluate(
    fields: tuple[FieldSpec, ...], data: dict[str, Any] | None, document: OCRDocument, index: TextIndex
) -> tuple[dict[str, FieldResult], list[str]]:
    """Field results for one parsed answer, and the problems to re-ask about."""
    results: dict[str, FieldResult] = {}
    problems: list[str] = []
    data = data or {}
    lookup = {key.strip().casefold(): key for key in data}
    for field in fields:
        key = lookup.get(field.name.casefold())
        if key is None:
            problems.append(f"the key {field.name!r} is missing (give every key; null when absent)")
            results[field.name] = FieldResult(
                field.name, None, status="missing", required=field.required, problem="not answered"
            )
            continue
        checked = check_value(field, data[key])
        result = FieldResult(field.name, checked.value, checked.normalized, required=field.required)
        if checked.missing:
            result.status = "missing"
            if field.required:
                problems.append(f"{field.name!r} is required: find it in the OCR text")
        elif checked.problem:
            result.status = "invalid"
            result.problem = checked.problem
            problems.append(f"{field.name}: {checked.problem}")
        elif field.items:  # a list of objects or an object: leaf by leaf, each item on its own row
            parts = ground_parts(
                field, checked.value, checked.normalized, index, lambda a, b: evidence_at(document, index, a, b)
            )
            result.parts = parts.leaves
            if parts.grounded:
                result.status = "grounded"
                result.match, result.match_score, result.evidence = parts.kind, parts.score, parts.evidence
                result.confidence = parts.confidence
            else:
                result.status = "ungrounded"
                result.problem = "; ".join(parts.problems) or "not found in the OCR text"
                problems.extend(parts.problems or [f"{field.name}: not found in the OCR text"])
        else:
            kind, score, evidence = _ground(field, checked.value, document, index)
            if kind is None:
                result.status = "ungrounded"
                result.problem = "not found in the OCR text"
                problems.append(f"{field.name}: {checked.value!r} does not occur in the OCR text")
            else:
                result.status = "grounded"
                result.match, result.match_score, result.evidence = kind, score, evidence
                result.confidence = leaf_confidence(evidence, score, kind)
        results[field.name] = result
    wanted = {f.name.casefold() for f in fields}
    extra = [key for key in data if key.strip().casefold() not in wanted]
    if extra:
        problems.append(f"unexpected keys {extra}: answer only the keys asked for")
    return results, problems


def merge_best(best: dict[str, FieldResult], new: dict[str, FieldResult]) -> dict[str, FieldResult]:
    """Per field, the better of two answers (grounded > ungrounded > invalid > missing); the newer
    wins ties, since it answered the re-ask."""
    merged = dict(best)
    for name, result in new.items():
        old = merged.get(name)
        if old is None or _RANK[result.status] >= _RANK[old.status]:
            merged[name] = result
    return merged


def tokens_used(calls: list[CallRecord], model: ChatModel) -> int:
    total = 0
    for call in calls:
        if call.prompt_tokens is not None:
            total += call.prompt_tokens + (call.completion_tokens or 0)
        else:  # the service did not report usage: count what we sent
            total += sum(model.counter.count(m["content"]) for m in call.messages)
    return total
