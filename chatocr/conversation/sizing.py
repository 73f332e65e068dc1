"""Measuring messages against a backend's limits, in characters and tokens (the planner's ruler)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatocr.conversation.plan import PlanExample
from chatocr.messages import Limits
from chatocr.tokens import TokenCounter

__all__ = ["Sizer", "Turn", "turn_cost"]


@dataclass
class Turn:
    """An example turn under construction; examples in conversation order (most relevant last)."""

    examples: list[PlanExample] = field(default_factory=list)
    user: str = ""
    assistant: str = ""


class Sizer:
    """Measures messages against the limits, in characters and tokens."""

    def __init__(self, limits: Limits, counter: TokenCounter) -> None:
        self.limits = limits
        self.counter = counter
        self.token_budget = limits.input_token_budget()

    def tokens(self, text: str) -> int:
        return self.counter.count(text)

    def fits_message(self, text: str) -> bool:
        lim = self.limits
        if lim.max_message_chars is not None and len(text) > lim.max_message_chars:
            return False
        return lim.max_message_tokens is None or self.tokens(text) <= lim.max_message_tokens

    def cost(self, text: str) -> tuple[int, int]:
        """(characters, tokens including the per-message template overhead)."""
        return len(text), self.tokens(text) + self.limits.message_overhead_tokens

    def within_total(self, chars: int, tokens: int) -> bool:
        if self.limits.max_input_chars is not None and chars > self.limits.max_input_chars:
            return False
        return self.token_budget is None or tokens <= self.token_budget


def turn_cost(sizer: Sizer, turn: Turn) -> tuple[int, int]:
    user_chars, user_tokens = sizer.cost(turn.user)
    asst_chars, asst_tokens = sizer.cost(turn.assistant)
    return user_chars + asst_chars, user_tokens + asst_tokens
