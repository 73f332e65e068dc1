"""The result of one extraction: values with per-field status and provenance, the route taken,
the examples and plan used, every LLM call (the transcript) with its usage, timings, warnings.
JSON-serialisable and loadable (`to_dict`/`from_dict`, `to_json`/`from_json`).

`from_dict` is where a record read back (a results file people edit, another program's output)
is checked, the one place for every reader (`chatocr view`, `export`, `read_results`): each member
against the dataclasses' own types (`"fields": [1, 2]` or `"ocr": "text"` is refused), every
evidence box four finite points within +-MAX_RECORD_COORDINATE, every page within MAX_RECORD_PAGES,
so that nothing a record says makes a reader fail or work without bound. A bad record is a
`DataFileError` naming the members; the reader leaves it out with its line and goes on."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from chatocr.calibration import FieldSignals
from chatocr.checks import CheckResult
from chatocr.conversation.report import PlanReport
from chatocr.errors import DataFileError, error_record
from chatocr.llm.base import ChatModel, ChatReply
from chatocr.messages import Message
from chatocr.secrets import redact_data

__all__ = [
    "MAX_RECORD_COORDINATE",
    "MAX_RECORD_PAGES",
    "Acceptance",
    "CallRecord",
    "Decision",
    "Evidence",
    "Extraction",
    "FieldResult",
    "FieldStatus",
    "Recheck",
    "Route",
    "usage_of",
]

# What a record read back may say: box coordinates as the OCR's text input allows them
# (chatocr.ocr.text.MAX_COORDINATE), pages as many as a document can have and more (the image
# limit's default is 50). A record naming page 999,999 would have a report draw a million pages.
MAX_RECORD_COORDINATE = 1_000_000.0
MAX_RECORD_PAGES = 1_000

# low_confidence: found in the document, but below the caller's min_confidence (not trusted).
FieldStatus = Literal["grounded", "low_confidence", "ungrounded", "missing", "invalid"]
# The review queue's verdict on a field (docs/trust.md): a person may take it unseen, or should look.
Decision = Literal["accepted", "review"]


@dataclass
class Evidence:
    """One OCR line a value was found on."""

    line_id: str
    text: str
    box: list[list[float]]  # 4 points (x, y), clockwise from top-left, in page pixels
    confidence: float
    page: int


@dataclass
class FieldResult:
    name: str
    value: Any  # the model's answer, or the page's own text for it when snapped; None when missing
    normalized: Any = None  # ISO date, plain decimal, enum choice, ... (None when missing/invalid)
    status: FieldStatus = "missing"
    match: str | None = None  # exact | normalized | numeric | date | fuzzy
    match_score: float | None = None
    # The calibrated probability that the value is right when `calibrated` (the scenario's
    # calibration applied to `signals`); otherwise the grounding confidence below.
    confidence: float | None = None
    evidence: list[Evidence] = field(default_factory=list)
    problem: str | None = None
    required: bool = False
    # Snapping (chatocr.extraction.snapping): `value` is then the page's own text for the span the
    # model meant, `answer` what the model wrote, `snap` how the page's text was taken (span | line | trim | complete).
    answer: Any = None
    snap: str | None = None
    # A list-of-objects or object field's leaves, by JSON path ("items[2].amount"), each grounded
    # on its own (see extraction/items.py).
    parts: dict[str, FieldResult] = field(default_factory=dict)
    # Trust (extraction/trust.py, docs/trust.md). grounding_confidence: the lowest OCR confidence of
    # its lines x how well the value matched the page ("this text is on the page"), what
    # `confidence` was before calibration. signals: what says the value is right; signals_used:
    # those the calibrated confidence was computed from ([] when not calibrated). decision: accepted
    # or review under the result's `acceptance` rule (None: no rule applied, e.g. a failed document).
    grounding_confidence: float | None = None
    calibrated: bool = False
    signals: FieldSignals | None = None
    signals_used: list[str] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def trusted(self) -> bool:
        return self.status == "grounded"

    @property
    def review(self) -> bool:
        """A person should look at this value (the accept rule did not accept it)."""
        return self.decision == "review"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldResult:
        data = dict(data)
        data["evidence"] = [Evidence(**e) for e in data.get("evidence", [])]
        data["parts"] = {path: cls.from_dict(part) for path, part in data.get("parts", {}).items()}
        if isinstance(data.get("signals"), dict):
            data["signals"] = FieldSignals.from_dict(data["signals"])
        return cls(**data)


@dataclass
class Acceptance:
    """The accept/review rule a result's fields were decided by."""

    threshold: float | None  # accepted at confidence >= threshold; None: no field can be accepted
    source: str  # "given", "precision 0.99 (held out)", ...
    calibration: str | None = None  # the calibration file applied; None: the confidence is uncalibrated
    note: str = ""  # why nothing can be accepted, or what the threshold was applied to


@dataclass
class Recheck:
    """A document check that failed on the answers at a step and was asked about again (the loop's
    re-ask): which check, after which step, its message, and the values it named then."""

    check: str
    step: int
    message: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Route:
    """How the document reached extraction.

    mode: "given" (the caller named the scenario), "prescore" (local similarity was confident),
    "classifier" (the LLM classifier chose it), "fallback" (no confident match, classification off,
    or the classifier said none: the user's keys with examples from all scenarios).
    """

    mode: str
    scenario: str | None
    confidence: float | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    reason: str = ""


@dataclass
class CallRecord:
    """One LLM call in the transcript: what was sent, what came back, what it cost."""

    purpose: str  # classify | extract | repair | chat
    provider: str
    model: str
    messages: list[dict[str, Any]]
    reply: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0  # the whole call: every attempt and the waits between them
    attempts: int = 1
    finish_reason: str | None = None
    error: str | None = None
    attempt_latencies: list[float] = field(default_factory=list)  # each attempt's own seconds
    # The backend's own figures for this call (the local model's `raw["chatocr"]`: where the prefix
    # came from, prompt and generation seconds and tokens, its sequence and batch), or None. Kept
    # per call: with several documents in flight, a model's last call may be another document's.
    perf: dict[str, Any] | None = None

    @classmethod
    def start(cls, purpose: str, model: ChatModel, messages: Sequence[Message]) -> CallRecord:
        return cls(purpose, model.provider, model.model, [m.to_dict() for m in messages], None)

    def finish(self, reply: ChatReply) -> CallRecord:
        self.reply = reply.text
        self.prompt_tokens = reply.usage.prompt_tokens
        self.completion_tokens = reply.usage.completion_tokens
        self.latency_s = round(reply.latency_s, 4)
        self.attempts = reply.attempts
        self.attempt_latencies = [round(seconds, 4) for seconds in reply.attempt_latencies]
        self.finish_reason = reply.finish_reason
        own = reply.raw.get("chatocr") if isinstance(reply.raw, dict) else None
        self.perf = dict(own) if isinstance(own, dict) else None
        return self


def usage_of(calls: Sequence[CallRecord]) -> dict[str, int]:
    """Calls and tokens as the services reported them."""
    prompt = sum(c.prompt_tokens or 0 for c in calls)
    completion = sum(c.completion_tokens or 0 for c in calls)
    return {
        "calls": len(calls),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@dataclass
class Extraction:
    source: str
    values: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, FieldResult] = field(default_factory=dict)
    scenario: str | None = None
    route: Route | None = None
    examples: list[str] = field(default_factory=list)
    plan: PlanReport | None = None
    calls: list[CallRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    steps: int = 0
    replans: list[str] = field(default_factory=list)
    ocr: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None  # {"type", "message", "hint"} when the document failed
    page: int | None = None  # 1-based page of the input this result is for (per-page extraction), else None
    # Typed extraction (schema=Model or a JSON Schema; see docs/typed.md): the validated instance
    # (None until the values validate), the validation problems left after the budget, and the
    # schema's name with a JSON Schema of it. Loaded from JSON, `data` is the plain dict.
    data: Any = None
    errors: list[dict[str, str]] = field(default_factory=list)
    schema: dict[str, Any] | None = None
    # What the memory of reviewed documents did (extraction/remembered.py, Recall.summary): its
    # scenario, the matches found, those offered with their scores, those the plan used (also in
    # `examples`, as "memory:<scenario>/<id>"), and why it was not used. None: memory off.
    memory: dict[str, Any] | None = None
    # Trust (docs/trust.md): the scenario's document checks on the values, and the rule that
    # accepted each field or sent it to review (None: no decision was made).
    checks: list[CheckResult] = field(default_factory=list)
    acceptance: Acceptance | None = None
    rechecks: list[Recheck] = field(default_factory=list)  # failed checks the loop asked about again

    @classmethod
    def failed(cls, source: str, error: BaseException, *, hint: str | None = None) -> Extraction:
        """A document that failed before anything was extracted (unreadable, refused, lost on a
        worker): the one way every caller (API, CLI, service, Ray) records such a failure. hint:
        for an error not of chatocr's, where to look (default: a bug to report)."""
        return cls(source=source, error=error_record(error) if hint is None else error_record(error, hint=hint))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def usage(self) -> dict[str, int]:
        return usage_of(self.calls)

    def trusted_values(self, *, include_low_confidence: bool = False) -> dict[str, Any]:
        """Only the values found in the document (and, if asked, those found below min_confidence)."""
        wanted = ("grounded", "low_confidence") if include_low_confidence else ("grounded",)
        return {name: f.value for name, f in self.fields.items() if f.status in wanted}

    @property
    def provenance(self) -> dict[str, FieldResult]:
        """Every leaf value by JSON path: `total`, `items[2].amount`, `seller.name`."""
        out: dict[str, FieldResult] = {}
        for name, f in self.fields.items():
            if f.parts:
                out.update(f.parts)
            else:
                out[name] = f
        return out

    @property
    def needs_review(self) -> bool:
        """Some field should be looked at by a person before its value is used."""
        return any(f.decision == "review" for f in self.fields.values())

    @property
    def to_review(self) -> list[str]:
        """The fields to look at, in the order to look at them: lowest confidence first."""
        review = [name for name, f in self.fields.items() if f.decision == "review"]
        return sorted(review, key=lambda name: _confidence_order(self.fields[name]))

    @property
    def accepted(self) -> list[str]:
        return [name for name, f in self.fields.items() if f.decision == "accepted"]

    def review_summary(self) -> str | None:
        """ "3 of 4 fields accepted, 1 to review"; None when no decision was made."""
        decided = [f for f in self.fields.values() if f.decision is not None]
        if not decided:
            return None
        accepted = sum(f.decision == "accepted" for f in decided)
        fields = "field" if len(decided) == 1 else "fields"
        return f"{accepted} of {len(decided)} {fields} accepted, {len(decided) - accepted} to review"

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.fields.values():
            counts[f.status] = counts.get(f.status, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; known secrets (API keys a service echoed back) are masked in every string."""
        data = asdict(replace(self, data=None))  # a model instance is dumped by pydantic, not deep-copied
        instance = self.data
        data["data"] = instance.model_dump(mode="json") if hasattr(instance, "model_dump") else instance
        data["ok"] = self.ok
        data["usage"] = self.usage
        return redact_data(data)  # type: ignore[return-value]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: Any) -> Extraction:
        """A result from its JSON form, checked (module docstring): DataFileError when a member has
        the wrong type or a box or page is out of bounds. Members it does not know are ignored."""
        if not isinstance(data, dict):
            raise DataFileError(f"not a chatocr result: a JSON {type(data).__name__}, not an object")
        try:
            result = _record_adapter().validate_python({k: v for k, v in data.items() if k not in ("ok", "usage")})
        except ValidationError as error:
            problems = [f"{'.'.join(map(str, e['loc'])) or '(the record)'}: {e['msg']}" for e in error.errors()]
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise DataFileError(f"not a chatocr result: {'; '.join(problems[:3])}{more}") from None
        problem = _out_of_bounds(result)
        if problem:
            raise DataFileError(f"not a chatocr result: {problem}")
        return result

    @classmethod
    def from_json(cls, text: str) -> Extraction:
        return cls.from_dict(json.loads(text))


def _confidence_order(result: FieldResult) -> tuple[bool, float]:
    """No confidence first, then the lowest."""
    return (result.confidence is not None, result.confidence or 0.0)


_ADAPTER: TypeAdapter[Extraction] | None = None


def _record_adapter() -> TypeAdapter[Extraction]:
    """The validator of a result's JSON form, built from the dataclasses above on first use."""
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = TypeAdapter(Extraction)
    return _ADAPTER


def _all_evidence(fields: dict[str, FieldResult], path: str = "fields") -> Iterator[tuple[str, Evidence]]:
    for name, item in fields.items():
        for number, evidence in enumerate(item.evidence):
            yield f"{path}.{name}.evidence.{number}", evidence
        yield from _all_evidence(item.parts, f"{path}.{name}.parts")


def _out_of_bounds(result: Extraction) -> str | None:
    """What in a validated result no document can hold (a box that is not four finite points, a
    page past MAX_RECORD_PAGES), or None."""
    if result.page is not None and not 1 <= result.page <= MAX_RECORD_PAGES:
        return f"page: {result.page} is not a page number (1 to {MAX_RECORD_PAGES})"
    for where, evidence in _all_evidence(result.fields):
        if not 0 <= evidence.page < MAX_RECORD_PAGES:
            return f"{where}.page: {evidence.page} is not a page index (0 to {MAX_RECORD_PAGES - 1})"
        box = evidence.box
        if len(box) != 4 or any(len(point) != 2 for point in box):
            return f"{where}.box: not four (x, y) points"
        if not all(math.isfinite(c) and abs(c) <= MAX_RECORD_COORDINATE for point in box for c in point):
            return f"{where}.box: coordinates must be finite and within +-{MAX_RECORD_COORDINATE:,.0f}"
    return None
