"""How the service answers when something goes wrong: a status code and one JSON shape.

    {"error": {"type": "ImageTooLargeError", "message": "...", "hint": "what to do"}}

chatocr's own errors keep their type name, message and hint; anything else is an internal error
whose details go to the server's log, never to the client (no stack traces over HTTP).
"""

from __future__ import annotations

import math
from typing import Any

from chatocr.errors import (
    AuthenticationError,
    ChatOCRError,
    ContextTooLongError,
    ExtractionError,
    InputError,
    LLMError,
    LLMTimeoutError,
    PlanningError,
    RateLimitError,
    UserError,
)
from chatocr.ocr.images import ImageTooLargeError, TooManyPagesError, UnsupportedInputError

__all__ = ["ServeError", "error_body", "from_chatocr_error", "from_error_dict"]


class ServeError(Exception):
    """An HTTP answer other than success, with chatocr's error shape."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        hint: str = "",
        *,
        headers: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.hint = hint
        self.headers = headers or {}
        self.result = result  # the partial extraction of a failed document, when there is one

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = error_body(self.type, self.message, self.hint)
        if self.result is not None:
            data["result"] = self.result
        return data


def error_body(type_: str, message: str, hint: str) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "hint": hint}}


# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[ChatOCRError], int], ...] = (
    (ImageTooLargeError, 413),
    (TooManyPagesError, 413),
    (UnsupportedInputError, 415),
    (InputError, 422),
    (PlanningError, 422),
    (ExtractionError, 422),
    (UserError, 400),  # an unknown scenario, bad keys
    (LLMTimeoutError, 504),
    (RateLimitError, 503),  # the model's service is rate-limiting this server
    (ContextTooLongError, 422),
    (AuthenticationError, 502),  # this server's credentials for the model, not the client's
    (LLMError, 502),
)


def from_chatocr_error(exc: ChatOCRError, result: dict[str, Any] | None = None) -> ServeError:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    headers = {}
    if isinstance(exc, RateLimitError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 1)))
    hint = exc.hint
    if isinstance(exc, AuthenticationError):
        hint = "The chatocr server's credentials for its model were refused: tell the server's operator."
    return ServeError(status, type(exc).__name__, exc.message, hint, headers=headers, result=result)


def from_error_dict(error: dict[str, str], result: dict[str, Any] | None = None) -> ServeError:
    """The answer for a failure known only by its recorded {"type", "message", "hint"}."""
    by_name = {cls.__name__: code for cls, code in _STATUS}
    by_name.update({"CorruptImageError": 422, "EmptyImageError": 422})
    status = by_name.get(error.get("type", ""), 500 if error.get("type") == "ChatOCRError" else 422)
    return ServeError(
        status, error.get("type", "ChatOCRError"), error.get("message", ""), error.get("hint", ""), result=result
    )
