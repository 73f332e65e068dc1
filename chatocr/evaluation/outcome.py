"""One document's outcome under one strategy: what the evaluation keeps (and caches) of a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DocOutcome"]


@dataclass
class DocOutcome:
    dataset: str
    document: str
    strategy: str
    values: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)  # grounded | ungrounded | invalid | missing
    scenario: str | None = None
    route: str | None = None
    examples: list[str] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    seconds: float = 0.0
    steps: int = 0
    error: str | None = None
    cached: bool = False
    # The model's own answers where the returned value is the page's text instead (snapping).
    answers: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # eval --schema: the typed instance as JSON; None if it did not validate
    # Trust (evaluation/calibrating.py, trust_record): per field its signals of correctness (FieldSignals
    # as a dict), today's confidence (grounding), the run's calibrated confidence and decision; the
    # document checks on the final values; the failed checks the loop asked about again.
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    confidences: dict[str, float | None] = field(default_factory=dict)
    calibrated: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    rechecks: list[dict[str, Any]] = field(default_factory=list)
    # The second look's cost (config second_look): calls, prompt and completion tokens, seconds, fields asked.
    second_look: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocOutcome:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
