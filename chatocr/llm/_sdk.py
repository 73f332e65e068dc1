"""Helpers every SDK adapter (openai, erniebot, qianfan) shares, written once.

They turn what an SDK hands back on failure into what our errors carry: a one-line message with no
key in it, and the service's Retry-After in seconds.
"""

from __future__ import annotations

from typing import Any

from chatocr.secrets import redact

__all__ = ["CONTEXT_MARKERS", "mentions_context_limit", "retry_after_seconds", "safe_cause", "short_error"]

# How OpenAI-format services (and ERNIE models behind them) say "the input is too long".
CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "exceed_context_size",
    "too many tokens",
    "input is too long",
    # ERNIE models behind Qianfan V2 / AI Studio v3 keep their V1 wording
    "max length of current question",
    "max input characters",
)


def mentions_context_limit(*texts: str) -> bool:
    """Whether an error's message or code says the input exceeded the model's limit."""
    return any(marker in text.lower() for text in texts for marker in CONTEXT_MARKERS)


def short_error(exc: BaseException) -> str:
    """The first line of an SDK exception's message with every known key removed (SDKs append
    URLs, headers and bodies after it)."""
    text = redact(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def safe_cause(exc: BaseException) -> BaseException | None:
    """`exc` to chain under our error, unless its text would leak a key (then nothing)."""
    return exc if redact(str(exc)) == str(exc) else None


def retry_after_seconds(headers: Any) -> float | None:
    """A service's Retry-After (or OpenAI's retry-after-ms) in seconds, from any header mapping
    (httpx Headers, requests' case-insensitive dict, a plain dict); None when absent or an
    HTTP-date (our own backoff then decides)."""
    if not headers:
        return None
    try:
        lowered = {str(key).lower(): value for key, value in dict(headers).items()}
        millis = lowered.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000
        seconds = lowered.get("retry-after")
        return float(seconds) if seconds is not None else None
    except (TypeError, ValueError):
        return None
