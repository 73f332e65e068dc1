"""Keeping API keys out of reprs, error messages and logs.

A `Secret` wraps a key: its repr and str are masked, and only `reveal()` returns the value, at the
one place where it is handed to an SDK. Every revealed value is also remembered (process-wide) so
that `redact()` can scrub it from text we did not write: SDK exception messages (requests puts the
whole URL, `?access_token=...` included, into a connection error) and SDK debug logs (erniebot logs
URL and headers at DEBUG). `install_log_redaction()` puts a filter on the SDK loggers for that.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["CREDENTIAL_OPTIONS", "Secret", "as_secret", "install_log_redaction", "redact", "redact_data", "reveal"]

# The backend options that are credentials (openai's api_key, erniebot's access_token/ak/sk,
# qianfan's access_token/ak/sk/bearer_token). They may be passed in code, never read from a
# config file (chatocr/config.py refuses them there; the keys file or environment holds them).
CREDENTIAL_OPTIONS = frozenset({"api_key", "access_token", "ak", "sk", "bearer_token"})

_MASK = "***"
_known: set[str] = set()
_lock = threading.Lock()

# Loggers whose records may carry a key: our own and the SDKs' (and their HTTP stacks). A filter
# only sees records created on its own logger, not a child's, hence the full names.
_SDK_LOGGERS = (
    "chatocr.llm",
    "erniebot",
    "qianfan",
    "openai",
    "openai._base_client",
    "httpx",
    "httpcore.http11",
    "httpcore.connection",
    "urllib3.connectionpool",
)


class Secret:
    """An API key or token. Masked everywhere except `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        # Very short values ("x", "1") would make redaction mangle ordinary text; real keys are long.
        if len(value) >= 6:
            with _lock:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str) -> str:
    """`text` with every known secret replaced by a mask."""
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    for value in secrets:
        if value in text:
            text = text.replace(value, _MASK)
    return text


def redact_data(value: object) -> object:
    """A JSON-like value with every known secret masked in its strings (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTER = _RedactingFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to our and the SDKs' loggers (idempotent).

    erniebot and qianfan log through a single module-level logger each; the HTTP stacks through
    the few named above.
    """
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def as_secret(value: str | Secret | None) -> Secret | None:
    """A key given as text or Secret, wrapped (and remembered for redaction); None when empty."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Secret) else Secret(value)


def reveal(value: str | Secret | None) -> str | None:
    """The plain value of a key given as text or Secret (at the one place an SDK needs it)."""
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else value
