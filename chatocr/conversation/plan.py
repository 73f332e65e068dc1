"""The values a plan is made of: the policy that lays the conversation out, the candidate
examples, the task, and the plan itself (its messages and report)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatocr.conversation.report import PlanReport
from chatocr.errors import PlanningError
from chatocr.messages import Message
from chatocr.scenarios.model import FieldSpec

__all__ = ["Packing", "Plan", "PlanExample", "PlanPolicy", "TaskSpec"]

Packing = Literal["single", "pairs", "packed"]


@dataclass(frozen=True)
class PlanPolicy:
    """How to lay out the conversation; recorded in every plan report.

    packing: "single" puts everything in one user message; "pairs" gives each example its own
        user/assistant pair; "packed" fills each example turn up to the per-message limit.
    restate_every: also put a short task reminder in every Nth example turn, counted back from the
        document (None: only the final turn re-states the task, which it always does).
    max_examples: at most this many examples (None: as many as the budget allows).
    order: "relevance" puts the most relevant examples nearest the document; "stable" chooses the
        same examples (most relevant first, within budget) but lays them out in a fixed order (by
        id), so documents that get the same examples share the same prompt prefix: a local model
        (llama.cpp) then re-uses its cache for everything before the document.
    """

    packing: Packing = "packed"
    restate_every: int | None = None
    max_examples: int | None = None
    order: Literal["relevance", "stable"] = "relevance"

    def __post_init__(self) -> None:
        if self.packing not in ("single", "pairs", "packed"):
            raise PlanningError(f"Unknown packing policy {self.packing!r}.", hint="Use single, pairs or packed.")
        if self.restate_every is not None and self.restate_every < 1:
            raise PlanningError("restate_every must be at least 1 (or None).")
        if self.max_examples is not None and self.max_examples < 0:
            raise PlanningError("max_examples must not be negative.")
        if self.order not in ("relevance", "stable"):
            raise PlanningError(f"Unknown example order {self.order!r}.", hint="Use relevance or stable.")


@dataclass(frozen=True)
class PlanExample:
    """One candidate example, in ranked order (most relevant first) when handed to the planner.

    The planner caches rendered text per example id, valid while the example's `text` and `answer`
    are the very same objects (checked by identity): reuse them across documents to benefit.
    """

    id: str
    text: str
    answer: Mapping[str, Any]
    score: float | None = None


@dataclass(frozen=True)
class TaskSpec:
    """What to extract: the fields (the requested keys), the document type and its rules."""

    title: str
    fields: tuple[FieldSpec, ...]
    instructions: str = ""

    @property
    def keys(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass
class Plan:
    messages: list[Message]
    report: PlanReport
    # The document as sent, one entry per part (the last one is in the final message).
    document_parts: list[str] = field(default_factory=list)

    @property
    def system(self) -> str | None:
        first = self.messages[0] if self.messages else None
        return first.content if first is not None and first.role == "system" else None
