"""The extraction loop: ask, read, check, ask again with the concrete problems, within a budget.

    plan -> chat -> parse -> validate -> ground -> (problems? re-ask : done)

Each step's answer is parsed robustly, every value validated against its field and grounded in
the OCR text the model saw. Problems (unreadable JSON, keys missing or extra, invalid values,
values not in the document) go back to the model as a follow-up turn, until none remain or the
budget (steps, tokens) is spent. Per field the best answer across steps is kept. A backend's
"context too long" re-plans the conversation with a smaller budget and tries again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chatocr.conversation.planner import ConversationPlanner, Plan, PlanExample, PlanPolicy, TaskSpec
from chatocr.errors import ContextTooLongError, DocumentTooLargeError, PlanningError
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.items import ground_parts, leaf_confidence
from chatocr.extraction.parsing import parse_reply
from chatocr.extraction.result import CallRecord, Evidence, FieldResult
from chatocr.extraction.validation import check_value
from chatocr.llm.base import ChatModel, ChatReply, ChatSettings
from chatocr.messages import Message
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["ExtractionBudget", "ExtractionOutcome", "json_schema_for", "run_extraction"]

_RANK = {"grounded": 4, "low_confidence": 3, "ungrounded": 2, "invalid": 1, "missing": 0}

# Looks at the best field results so far (and may mark them, e.g. low_confidence); returns more
# problems for the re-ask (a typed model's validation errors). See chatocr/typed/review.py.
Review = Callable[[dict[str, "FieldResult"]], list[str]]


@dataclass(frozen=True)
class ExtractionBudget:
    max_steps: int = 3  # LLM calls for one document: the first answer plus re-asks
    max_tokens: int = 40000  # prompt + completion tokens over all calls for one document
    replan_factor: float = 0.7  # on "context too long", re-plan with this share of the budget
    max_replans: int = 3


@dataclass
class ExtractionOutcome:
    fields: dict[str, FieldResult]
    calls: list[CallRecord]
    plan: Plan
    steps: int
    replans: list[str]
    warnings: list[str]


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
        sub.name: {"enum": [*sub.choices, None]} if sub.choices else {"type": ["string", "null"]}
        for sub in field.items
    }


def _evidence(document: OCRDocument, index: TextIndex, start: int, end: int) -> list[Evidence]:
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
        for ev in _evidence(document, index, match.start, match.end):
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
                field, checked.value, checked.normalized, index, lambda a, b: _evidence(document, index, a, b)
            )
            result.parts = parts.leaves
            if parts.grounded:
                result.status = "grounded"
                result.match, result.match_score, result.evidence = parts.kind, parts.score, parts.evidence
                result.confidence = leaf_confidence(parts.evidence, parts.score)
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
                result.confidence = leaf_confidence(evidence, score)
        results[field.name] = result
    wanted = {f.name.casefold() for f in fields}
    extra = [key for key in data if key.strip().casefold() not in wanted]
    if extra:
        problems.append(f"unexpected keys {extra}: answer only the keys asked for")
    return results, problems


def _merge(best: dict[str, FieldResult], new: dict[str, FieldResult]) -> dict[str, FieldResult]:
    """Per field, the better of two answers (grounded > ungrounded > invalid > missing); the newer
    wins ties, since it answered the re-ask."""
    merged = dict(best)
    for name, result in new.items():
        old = merged.get(name)
        if old is None or _RANK[result.status] >= _RANK[old.status]:
            merged[name] = result
    return merged


def _record(purpose: str, model: ChatModel, messages: list[Message], reply: ChatReply | None) -> CallRecord:
    record = CallRecord.start(purpose, model, messages)
    return record.finish(reply) if reply is not None else record


def _tokens_used(calls: list[CallRecord], model: ChatModel) -> int:
    total = 0
    for call in calls:
        if call.prompt_tokens is not None:
            total += call.prompt_tokens + (call.completion_tokens or 0)
        else:  # the service did not report usage: count what we sent
            total += sum(model.counter.count(m["content"]) for m in call.messages)
    return total


async def run_extraction(
    *,
    document: OCRDocument,
    text: str,
    index: TextIndex,
    task: TaskSpec,
    examples: list[PlanExample],
    planner: ConversationPlanner,
    model: ChatModel,
    settings: ChatSettings,
    budget: ExtractionBudget,
    policy: PlanPolicy | None = None,
    review: Review | None = None,
) -> ExtractionOutcome:
    """Extract `task.fields` from `text` (the layout text of `document`) in a bounded loop."""
    policy = policy or planner.policy
    plan = planner.plan(task, examples, text, policy=policy)
    messages = list(plan.messages)
    calls: list[CallRecord] = []
    replans: list[str] = []
    warnings: list[str] = []
    best: dict[str, FieldResult] = {}
    steps = 0
    current_planner = planner
    while steps < budget.max_steps:
        if calls and _tokens_used(calls, model) >= budget.max_tokens:
            warnings.append(f"stopped after {steps} step(s): the token budget ({budget.max_tokens}) is spent")
            break
        steps += 1
        purpose = "extract" if steps == 1 else "repair"
        try:
            reply = await model.chat(messages, settings)
        except ContextTooLongError as exc:
            calls.append(_record(purpose, model, messages, None))
            calls[-1].error = f"ContextTooLongError: {exc.message}"
            if len(replans) >= budget.max_replans:
                raise
            factor = budget.replan_factor ** (len(replans) + 1)
            # Smaller than the declared limits and than what was just refused: a backend whose
            # real window is below its declared one would otherwise get the same plan again.
            sent_chars = sum(len(m.content) for m in messages)
            sent_tokens = sum(planner.counter.count(m.content) for m in messages)
            limits = planner.limits.scaled(factor).capped(
                int(sent_chars * budget.replan_factor), int(sent_tokens * budget.replan_factor)
            )
            had_examples = bool(plan.report.included)
            current_planner = ConversationPlanner(planner.prompts, planner.counter, limits, policy)
            try:
                plan = current_planner.plan(task, examples, text, policy=policy)
            except DocumentTooLargeError:
                if not had_examples:
                    raise
                # 70% of what was refused leaves no room even for the bare task: drop every
                # example (the only thing left to drop) within the declared, scaled budget.
                policy = replace(policy, max_examples=0)
                current_planner = ConversationPlanner(
                    planner.prompts, planner.counter, planner.limits.scaled(factor), policy
                )
                plan = current_planner.plan(task, examples, text, policy=policy)
            messages = list(plan.messages)
            replans.append(
                f"context too long at step {steps}: re-planned with {factor:.0%} of the budget, at most "
                f"{budget.replan_factor:.0%} of what was refused ({len(plan.report.included)} examples, "
                f"{plan.report.document_parts} document part(s))"
            )
            steps -= 1  # a refused call produced no answer: it does not use a step
            continue
        calls.append(_record(purpose, model, messages, reply))
        parsed = parse_reply(reply.text)
        if parsed.data is None:
            problems = [f"{parsed.error}; answer with one JSON object only"]
            results: dict[str, FieldResult] = {}
        else:
            results, problems = evaluate(task.fields, parsed.data, document, index)
            best = _merge(best, results)
            if review is not None:
                problems.extend(review(best))
        if reply.truncated:
            problems.append("the answer was cut off: answer with the JSON object only, no other text")
        if not problems:
            break
        if steps >= budget.max_steps:
            warnings.append(f"unresolved after {steps} step(s): " + "; ".join(problems))
            break
        repair = current_planner.prompts.render(
            "repair", problems=problems, keys_json=json.dumps(task.keys, ensure_ascii=False)
        )
        messages = _with_repair(current_planner, task, examples, text, policy, messages, reply.text, repair)
    for field in task.fields:
        best.setdefault(
            field.name,
            FieldResult(field.name, None, status="missing", required=field.required, problem="no readable answer"),
        )
    ordered = {f.name: best[f.name] for f in task.fields}
    return ExtractionOutcome(ordered, calls, plan, steps, replans, warnings)


def _with_repair(
    planner: ConversationPlanner,
    task: TaskSpec,
    examples: list[PlanExample],
    text: str,
    policy: PlanPolicy,
    messages: list[Message],
    answer: str,
    repair: str,
) -> list[Message]:
    """The conversation plus the model's answer and our re-ask, kept within the budget by
    re-planning with fewer examples when needed."""
    extra = [Message("assistant", answer, kind="answer"), Message("user", repair, kind="repair")]
    candidate = [*messages, *extra]
    if planner.fits(candidate):
        return candidate
    for keep in range(len(examples) - 1, -1, -1):
        smaller = replace(policy, max_examples=keep)
        try:
            plan = planner.plan(task, examples, text, policy=smaller)
        except PlanningError:
            break
        candidate = [*plan.messages, *extra]
        if planner.fits(candidate):
            return candidate
    # Nothing fits with the history: ask again from the plain task, the problems appended.
    last = messages[-1]
    return [*messages[:-1], Message("user", f"{last.content}\n\n{repair}", kind="task+repair")]
