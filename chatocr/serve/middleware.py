"""Two plain ASGI middlewares: the body-size limit and the access log.

Plain ASGI (not Starlette's BaseHTTPMiddleware) so that the endpoint still sees the client's
disconnect and the body streams through unbuffered.

The access log writes method, path (never the query string), status, duration, the caller's token
digest and a request id: no document text, no keys, no token.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from chatocr.serve.errors import error_body

__all__ = ["AccessLog", "BodyLimit", "BodyTooLarge"]

Scope = dict[str, Any]
Message = dict[str, Any]
access_log = logging.getLogger("chatocr.serve.access")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"over {limit} bytes")
        self.limit = limit


def too_large_body(limit: int) -> dict[str, Any]:
    return error_body(
        "RequestTooLarge",
        f"The request body is over the limit of {limit} bytes (max_body_bytes).",
        "Send a smaller file (downscale the image, split the PDF), or ask the operator to raise --max-body-mb.",
    )


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """413 for a declared Content-Length over the limit before reading anything; a body that
    streams past the limit raises BodyTooLarge inside the app (answered 413 by its handler)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _send_json(send, 413, too_large_body(self.limit))
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


class AccessLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            caller = scope["state"].get("caller", "-")
            access_log.info(
                "%s %s %s %s %.1fms caller=%s id=%s",
                scope.get("client", ("-",))[0] if scope.get("client") else "-",
                scope["method"],
                scope["path"],  # the path only: a query string could carry anything
                status or "-",
                (time.perf_counter() - started) * 1000,
                caller,
                request_id,
            )
