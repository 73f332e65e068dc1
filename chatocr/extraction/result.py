"""The result of one extraction: values with per-field status and provenance, the route taken,
the examples and plan used, every LLM call (the transcript) with its usage, timings, warnings.
JSON-serialisable and loadable (`to_dict`/`from_dict`, `to_json`/`from_json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from chatocr.conversation.report import PlanReport
from chatocr.errors import error_record
from chatocr.llm.base import ChatModel, ChatReply
from chatocr.messages import Message
from chatocr.secrets import redact_data

__all__ = ["CallRecord", "Evidence", "Extraction", "FieldResult", "FieldStatus", "Route", "usage_of"]

# low_confidence: found in the document, but below the caller's min_confidence (not trusted).
FieldStatus = Literal["grounded", "low_confidence", "ungrounded", "missing", "invalid"]


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
    confidence: float | None = None  # lowest OCR confidence of its lines x match score
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

    @property
    def trusted(self) -> bool:
        return self.status == "grounded"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldResult:
        data = dict(data)
        data["evidence"] = [Evidence(**e) for e in data.get("evidence", [])]
        data["parts"] = {path: cls.from_dict(part) for path, part in data.get("parts", {}).items()}
        return cls(**data)


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
    def from_dict(cls, data: dict[str, Any]) -> Extraction:
        data = {k: v for k, v in data.items() if k not in ("ok", "usage")}
        data["fields"] = {name: FieldResult.from_dict(f) for name, f in data.get("fields", {}).items()}
        if data.get("route") is not None:
            route = dict(data["route"])
            route["candidates"] = [tuple(c) for c in route.get("candidates", [])]
            data["route"] = Route(**route)
        if data.get("plan") is not None:
            data["plan"] = PlanReport.from_dict(data["plan"])
        data["calls"] = [CallRecord(**c) for c in data.get("calls", [])]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Extraction:
        return cls.from_dict(json.loads(text))
