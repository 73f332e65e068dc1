"""What ERNIE's native (V1) chat API demands, shared by the erniebot and qianfan backends.

- Message rules, enforced by the service with error 336006 (older: 336003): the system prompt goes
  in its own `system` field, never as a message; the messages alternate user/assistant starting
  with user, so their number is odd and the last one is the user's question.
- Limits are given in characters (and 8K models also take at most 5,120 input tokens). Counting
  characters as tokens over-estimates ERNIE tokens for Chinese and English alike, so a CharCounter
  budget is a safe bound for both.
- Errors come back as HTTP 200 with `error_code`/`error_msg`; `error_for_code` maps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatocr.errors import (
    AuthenticationError,
    ContextTooLongError,
    InvalidRequestError,
    LLMError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.messages import Limits, Message, RoleRules

if TYPE_CHECKING:
    from chatocr.llm.base import ChatSettings

__all__ = ["ERNIE_ROLES", "ErniePayload", "ernie_limits", "ernie_sampling", "error_for_code", "to_ernie_payload"]

ERNIE_ROLES = RoleRules(system="field", alternate=True, odd_count=True)


@dataclass(frozen=True)
class ErniePayload:
    system: str | None
    messages: list[dict[str, str]]


def to_ernie_payload(messages: Sequence[Message]) -> ErniePayload:
    """Lay `messages` out as ERNIE wants them, or raise InvalidRequestError saying why we cannot.

    System messages (wherever they are) are joined into the system field; consecutive messages of
    the same role are merged (what the user meant is one turn). A conversation that starts or ends
    with the assistant cannot be repaired without inventing text, so that is the planner's bug.
    """
    system_parts: list[str] = []
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.images:
            raise InvalidRequestError(
                "ERNIE's chat API takes text only, but a message carries an image.",
                hint="Run OCR first, or use a vision model through an OpenAI-compatible backend "
                "(e.g. dashscope:qwen-vl-max).",
            )
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    if not turns:
        raise InvalidRequestError("ERNIE needs at least one user message; only a system prompt was given.")
    if turns[0]["role"] != "user":
        raise InvalidRequestError(
            "ERNIE needs the conversation to start with a user message; it starts with the assistant.",
            hint="Put a user turn before the first assistant turn.",
        )
    if turns[-1]["role"] != "user":
        raise InvalidRequestError(
            "ERNIE needs the conversation to end with a user message (an odd number of messages).",
            hint="End the conversation with the user's question.",
        )
    return ErniePayload("\n\n".join(system_parts) or None, turns)


def ernie_sampling(settings: ChatSettings, *, max_output_key: str | None = "max_output_tokens") -> dict[str, Any]:
    """The sampling arguments in the ranges ERNIE accepts: temperature in (0, 1], at most four stop
    strings, and (native API, `max_output_key`) max_output_tokens in [2, 2048]. Pass
    max_output_key=None where the endpoint takes OpenAI's unclamped max_tokens instead."""
    options: dict[str, Any] = {"temperature": min(1.0, max(0.01, settings.temperature))}
    if settings.top_p is not None:
        options["top_p"] = settings.top_p
    if max_output_key and settings.max_output_tokens is not None:
        options[max_output_key] = max(2, min(2048, settings.max_output_tokens))
    if settings.stop:
        options["stop"] = list(settings.stop)[:4]
    return options


# name -> (max_input_chars, max_input_tokens, context window). From qianfan's model table.
_LIMITS: dict[str, tuple[int, int | None, int | None]] = {
    "ernie-4.0": (20000, 5120, 8192),
    "ernie-4.0-8k": (20000, 5120, 8192),
    "ernie-4.0-turbo-8k": (20000, 5120, 8192),
    "ernie-3.5": (20000, 5120, 8192),
    "ernie-3.5-8k": (20000, 5120, 8192),
    "ernie-speed": (11200, 7168, 8192),
    "ernie-speed-8k": (11200, 7168, 8192),
    "ernie-lite": (11200, 7168, 8192),
    "ernie-lite-8k": (11200, 7168, 8192),
    "ernie-tiny-8k": (11200, 7168, 8192),
    "ernie-char-8k": (11200, 7168, 8192),
    "ernie-speed-128k": (507904, 126976, 131072),
    "ernie-3.5-128k": (516096, 126976, 131072),
}
# What the oldest ERNIE Bot allowed for one question and in all: safe for any unknown model.
_UNKNOWN = (4800, None, None)
# The documented per-question limit ("the max length of current question is 4800").
MAX_MESSAGE_CHARS = 4800


def ernie_limits(model: str, max_output_tokens: int = 1024) -> Limits:
    """Limits for an ERNIE model by name (erniebot's "ernie-3.5" or qianfan's "ERNIE-3.5-8K").
    Dated variants ("ernie-3.5-8k-0205") use their family's limits."""
    name = model.lower()
    key = max((k for k in _LIMITS if name == k or name.startswith(k + "-")), key=len, default=None)
    chars, tokens, window = _LIMITS[key] if key else _UNKNOWN
    return Limits(
        max_message_chars=min(MAX_MESSAGE_CHARS, chars),
        max_input_chars=chars,
        max_input_tokens=tokens,
        context_window=window,
        reserved_output_tokens=max_output_tokens if window else 0,
        message_overhead_tokens=0,  # counted in characters: no hidden role markers
        roles=ERNIE_ROLES,
    )


def error_for_code(code: int, message: str, *, provider: str) -> LLMError:
    """The project exception for an ERNIE/Qianfan V1 error code."""
    text = f"{provider} error {code}: {message}"
    if code in (18, 4):  # QPS limit / cluster-wide limit: back off and retry
        return RateLimitError(text, provider=provider)
    if code == 17:  # daily request quota: retrying today will not help
        error = RateLimitError(
            text, provider=provider, hint="The daily request quota is used up: raise the quota or wait a day."
        )
        error.retryable = False
        return error
    if code in (110, 111, 6, 13, 14, 100):  # invalid/expired token, no permission, bad credentials
        hint = (
            "The access token has expired: fetch a new one (or pass AK/SK so it can be renewed)."
            if code == 111
            else None
        )
        return AuthenticationError(text, provider=provider, hint=hint)
    if code in (336007, 336103):  # single message / total input too long
        return ContextTooLongError(text, provider=provider)
    if code in (336100, 336000, 336501, 336502, 2, 1):  # "try again", internal or unavailable
        return ServiceUnavailableError(text, provider=provider)
    if code in (336002, 336003, 336006, 336102, 336001, 336101, 336104, 336105, 3):
        hint = (
            "The messages broke ERNIE's rules (odd count, alternating user/assistant, system as a field)."
            if code in (336006, 336003)
            else None
        )
        return InvalidRequestError(text, provider=provider, hint=hint)
    return InvalidRequestError(text, provider=provider, hint="An unexpected error code; see Baidu's error-code table.")
