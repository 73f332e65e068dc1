"""The plan report: what the conversation manager decided and why, for results and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DroppedExample", "IncludedExample", "MessageSize", "PlanReport"]


@dataclass(frozen=True)
class IncludedExample:
    id: str
    turn: int  # example turn, 1 = nearest the document; 0 = inline in the final message
    score: float | None = None


@dataclass(frozen=True)
class DroppedExample:
    id: str
    rank: int  # 0 = the most relevant candidate
    reason: str
    score: float | None = None


@dataclass(frozen=True)
class MessageSize:
    role: str
    kind: str
    chars: int
    tokens: int  # including the per-message template overhead


@dataclass
class PlanReport:
    packing: str
    restate_every: int | None
    max_examples: int | None
    counter: str
    system_role: str
    order: str = "relevance"
    included: list[IncludedExample] = field(default_factory=list)
    dropped: list[DroppedExample] = field(default_factory=list)
    messages: list[MessageSize] = field(default_factory=list)
    total_chars: int = 0
    total_tokens: int = 0
    budget_chars: int | None = None
    budget_tokens: int | None = None
    example_turns: int = 0
    document_parts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanReport:
        data = dict(data)
        data["included"] = [IncludedExample(**x) for x in data.get("included", [])]
        data["dropped"] = [DroppedExample(**x) for x in data.get("dropped", [])]
        data["messages"] = [MessageSize(**x) for x in data.get("messages", [])]
        return cls(**data)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        budget = []
        if self.budget_tokens is not None:
            budget.append(f"{self.total_tokens}/{self.budget_tokens} tokens")
        else:
            budget.append(f"{self.total_tokens} tokens")
        if self.budget_chars is not None:
            budget.append(f"{self.total_chars}/{self.budget_chars} chars")
        else:
            budget.append(f"{self.total_chars} chars")
        return (
            f"packing={self.packing} messages={len(self.messages)} examples={len(self.included)} "
            f"(dropped {len(self.dropped)}) turns={self.example_turns} parts={self.document_parts} "
            f"size={', '.join(budget)} counter={self.counter}"
        )
