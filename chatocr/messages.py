"""Chat messages and the limits a chat backend declares: the contract between the conversation
manager (which plans messages) and the LLM backends (which send them)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["ImagePart", "Limits", "Message", "Role", "RoleRules"]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image attached to a user message (for vision models)."""

    data: bytes
    mime: str = "image/png"

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()
    # What the planner put in this message ("system", "examples", "document-part", "task", ...);
    # informational, never sent to a service.
    kind: str = ""
    # How many leading characters of `content` do not depend on the document (the task's opening
    # before the OCR text): a local model keeps its state through them too. Never sent.
    stable_head: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (images as data URLs) for transcripts."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.images:
            out["images"] = [image.data_url() for image in self.images]
        if self.kind:
            out["kind"] = self.kind
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        images = []
        for url in data.get("images", ()):
            header, _, payload = url.partition(",")
            mime = header.removeprefix("data:").removesuffix(";base64") or "image/png"
            images.append(ImagePart(base64.b64decode(payload), mime))
        return cls(data["role"], data["content"], tuple(images), data.get("kind", ""))


@dataclass(frozen=True, slots=True)
class RoleRules:
    """How a service wants the roles laid out.

    system: "message" sends the system prompt as the first message; "field" sends it in a separate
        request field (ERNIE V1: a system role inside messages is rejected); "none" means the model
        has no system role, so the planner merges it into the first user message.
    alternate: user and assistant must strictly alternate, starting with user (ERNIE V1).
    odd_count: the number of (non-system) messages must be odd, i.e. end with a user message (ERNIE V1).
    """

    system: Literal["message", "field", "none"] = "message"
    alternate: bool = False
    odd_count: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits of one backend/model, in characters and/or tokens; None means no such limit.

    The planner keeps every message under the per-message limits and the sum of all messages
    (system included, plus `message_overhead_tokens` each for the chat template's role markers)
    under the total input budget: the smaller of `max_input_tokens` and
    `context_window - reserved_output_tokens`.
    """

    max_message_chars: int | None = None
    max_message_tokens: int | None = None
    max_input_chars: int | None = None
    max_input_tokens: int | None = None
    context_window: int | None = None
    reserved_output_tokens: int = 512
    message_overhead_tokens: int = 4
    roles: RoleRules = field(default_factory=RoleRules)

    def input_token_budget(self) -> int | None:
        candidates = []
        if self.max_input_tokens is not None:
            candidates.append(self.max_input_tokens)
        if self.context_window is not None:
            candidates.append(self.context_window - self.reserved_output_tokens)
        return min(candidates) if candidates else None

    def scaled(self, factor: float) -> Limits:
        """The same limits with every budget multiplied by `factor` (used to re-plan with less
        after a 'context too long' answer)."""

        def scale(value: int | None) -> int | None:
            return None if value is None else max(1, int(value * factor))

        budget = self.input_token_budget()
        return Limits(
            max_message_chars=scale(self.max_message_chars),
            max_message_tokens=scale(self.max_message_tokens),
            max_input_chars=scale(self.max_input_chars),
            max_input_tokens=scale(budget),
            context_window=None,
            reserved_output_tokens=self.reserved_output_tokens,
            message_overhead_tokens=self.message_overhead_tokens,
            roles=self.roles,
        )

    def capped(self, chars: int, tokens: int) -> Limits:
        """These limits, with the total input budget at most `chars` characters and `tokens` tokens."""
        budget = self.input_token_budget()
        return replace(
            self,
            max_input_chars=chars if self.max_input_chars is None else min(chars, self.max_input_chars),
            max_input_tokens=tokens if budget is None else min(tokens, budget),
            context_window=None,
        )
