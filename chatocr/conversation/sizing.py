"""Measuring messages against a backend's limits, in characters and tokens (the planner's ruler),
and cutting a document to what fits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatocr.conversation.plan import PlanExample
from chatocr.messages import Limits
from chatocr.tokens import TokenCounter

__all__ = ["Sizer", "Turn", "document_lines", "head_before", "largest_fitting_suffix", "turn_cost"]


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


def document_lines(document: str) -> list[str]:
    """The document as lines that keep their newline, so that joining pieces restores it."""
    return document.splitlines(keepends=True) or [document]


def largest_fitting_suffix(text: str, fits: Any) -> tuple[str, str]:
    """Split `text` into (head, tail) with the longest tail that fits, by binary search."""
    low, high = 1, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(text[-mid:]):
            low = mid
        else:
            high = mid - 1
    return text[:-low], text[-low:]


def head_before(final_text: str, part_text: str) -> int:
    """The task message's characters before the document's text, cut back to a line's end (a
    tokenizer joins nothing across a line break there): the same for every document asked the
    same keys. 0 when the text is not found in it."""
    at = final_text.find(part_text) if part_text else -1
    return final_text.rfind("\n", 0, at) + 1 if at > 0 else 0
