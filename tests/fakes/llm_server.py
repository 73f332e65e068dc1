"""A real HTTP server on 127.0.0.1 speaking the chat wire formats our SDK backends use.

Routes (see shared/reference/llm-apis.md for where each comes from):

    POST /rpc/2.0/ai_custom/v1/wenxinworkshop/chat/<model>?access_token=T   ERNIE V1 (qianfan api_type)
    POST /llm/lmapi/v1/chat/<model>          AI Studio v1, `Authorization: token T`, wrapped result
    GET|POST /oauth/2.0/token                 OAuth client-credentials -> {"access_token": ...}
    POST /v2/chat/completions                 Qianfan V2 (OpenAI format, `Authorization: Bearer K`)
    POST .../chat/completions                 OpenAI format at any other prefix (/v1, /llm/lmapi/v3, ...)
    GET  .../models                           OpenAI model list

Every request is recorded (`server.requests`) so tests assert on what the SDK actually sent. The
ERNIE routes enforce ERNIE's message rules (odd count, alternating from user, no system role:
error 336006) like the real service, so an adapter that forgets them fails. What the next request
gets is scripted with `server.enqueue(...)`: a reply, an ERNIE error code, an HTTP status (429 with
Retry-After, 500), a slow answer, a raw (truncated/invalid) body, or a dropped connection. With an
empty queue, `server.responder(request) -> str` answers (default: a small JSON object).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERNIE_V1_PREFIX = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
AISTUDIO_V1_PREFIX = "/llm/lmapi/v1/chat/"

ERNIE_MESSAGES = {
    2: "Service temporarily unavailable",
    17: "Open api daily request limit reached",
    18: "Open api qps request limit reached",
    110: "Access token invalid or no longer valid",
    111: "Access token expired",
    336002: "Invalid JSON",
    336003: "the role of message with even index in the messages must be user or function",
    336006: "the length of messages must be an odd number",
    336007: "the max length of current question is 4800",
    336100: "try again",
    336102: "invalid argument",
    336103: "the max input characters is 20000",
    336501: "Rate limit reached for RPM",
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw text when it is not JSON

    @property
    def route(self) -> str:
        if self.path.startswith(ERNIE_V1_PREFIX):
            return "ernie-v1"
        if self.path.startswith(AISTUDIO_V1_PREFIX):
            return "aistudio-v1"
        if self.path.startswith("/oauth/2.0/token"):
            return "oauth"
        if self.path == "/v2/chat/completions":
            return "qianfan-v2"
        if self.path.endswith("/chat/completions"):
            return "openai"
        if self.path.endswith("/models"):
            return "models"
        return "unknown"


# ---- what the next request gets -------------------------------------------------------------


@dataclass
class Reply:
    text: str
    finish_reason: str | None = None  # default per format: "normal" (ERNIE) / "stop" (OpenAI)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    truncated: bool = False
    chunk_delay: float = 0.0  # streamed answers (OpenAI routes, "stream": true): seconds per piece
    # OpenAI routes, when the request asks `"logprobs": true`: each token (its text, or its UTF-8
    # bytes when it holds part of a character) with its log-probability, joined they are `text`.
    # None: one token per streamed word, each at `default_logprob`.
    tokens: list[tuple[str | bytes, float]] | None = None
    default_logprob: float = -0.01

    def token_entries(self) -> list[dict[str, Any]]:
        """`choices[0].logprobs.content` as OpenAI sends it: token, logprob, bytes, top_logprobs."""
        tokens = self.tokens if self.tokens is not None else [(w, self.default_logprob) for w in _words(self.text)]
        entries = []
        for piece, logprob in tokens:
            raw = piece if isinstance(piece, bytes) else piece.encode("utf-8")
            shown = raw.decode("utf-8", "backslashreplace")  # OpenAI shows a partial character's bytes escaped
            entries.append({"token": shown, "logprob": logprob, "bytes": list(raw), "top_logprobs": []})
        return entries


def _words(text: str) -> list[str]:
    """How the fake streams an answer: one piece per word, each with the space before the next."""
    return [w for w in text.replace(" ", " \0").split("\0") if w] or [""]


@dataclass
class ErrorCode:
    """An ERNIE-style error code. On ERNIE routes: HTTP 200 with error_code in the body (AI Studio:
    errorCode). On OpenAI routes: the HTTP status and error body such a service would send."""

    code: int
    message: str | None = None


@dataclass
class Status:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Slow:
    seconds: float
    then: Reply | None = None


@dataclass
class Raw:
    body: bytes
    content_type: str = "application/json"
    status: int = 200


@dataclass
class Drop:
    """Close the connection without answering."""


Behaviour = Reply | ErrorCode | Status | Slow | Raw | Drop


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) leaves a broken pipe behind: expected here.
        pass


class FakeLLMServer:
    def __init__(
        self,
        *,
        access_token: str = "fake-access-token-123",
        bearer_key: str = "fake-bearer-key-456",
        ak: str = "fake-ak-789",
        sk: str = "fake-sk-012",
    ) -> None:
        self.access_token = access_token
        self.bearer_key = bearer_key
        self.ak = ak
        self.sk = sk
        self.requests: list[Recorded] = []
        self.responder: Callable[[Recorded], str] = lambda request: '{"ok": true}'
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
        self.responder = lambda request: '{"ok": true}'

    def next_behaviour(self, request: Recorded) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return Reply(self.responder(request))

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.route not in ("oauth", "models")]

    @property
    def last(self) -> Recorded:
        return self.chat_requests()[-1]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def ernie_rule_violation(body: Any) -> str | None:
    """What the ERNIE V1 service would complain about in `body`, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages must be a non-empty list"
    messages = body["messages"]
    if len(messages) % 2 == 0:
        return ERNIE_MESSAGES[336006]
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            parity = "odd" if index % 2 == 0 else "even"
            return f"the role of message with {parity} index in the messages must be {expected}"
    return None


def _openai_error_for_code(code: int, message: str) -> Status:
    """How an OpenAI-compatible service (Qianfan V2 included) reports the same conditions."""
    if code in (18, 17, 336501):
        kind, status = ("rate_limit_exceeded", 429)
    elif code in (110, 111):
        kind, status = ("invalid_api_key", 401)
    elif code in (336007, 336103):
        kind, status = ("context_length_exceeded", 400)
    elif code in (336100, 2):
        kind, status = ("server_error", 503)
    else:
        kind, status = ("invalid_request_error", 400)
    return Status(status, {"error": {"message": message, "type": kind, "code": kind, "param": None}})


def _make_handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
        # delayed ACK then stalls each keep-alive response by ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        # ---- plumbing ---------------------------------------------------------------------

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            request = Recorded(
                method=method,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            if request.route == "oauth":
                server.requests.append(request)
                return self._oauth(request)
            if request.route == "models":
                server.requests.append(request)
                return self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            behaviour = server.next_behaviour(request)
            if isinstance(behaviour, Slow):
                time.sleep(behaviour.seconds)
                behaviour = behaviour.then or Reply(server.responder(request))
            if isinstance(behaviour, Drop):
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            if isinstance(behaviour, Raw):
                return self._send(behaviour.status, behaviour.body, behaviour.content_type)
            if isinstance(behaviour, Status):
                payload = behaviour.body if behaviour.body is not None else {"error": {"message": "status"}}
                return self._json(behaviour.status, payload, behaviour.headers)
            if request.route == "ernie-v1":
                return self._ernie(request, behaviour, wrapped=False)
            if request.route == "aistudio-v1":
                return self._ernie(request, behaviour, wrapped=True)
            if request.route in ("openai", "qianfan-v2"):
                return self._openai(request, behaviour)
            return self._json(404, {"error": {"message": f"no route {request.path}"}})

        # ---- formats ----------------------------------------------------------------------

        def _oauth(self, request: Recorded) -> None:
            params = {**request.query}
            if request.query.get("grant_type") != "client_credentials":
                return self._json(400, {"error": "unsupported_grant_type"})
            if params.get("client_id") != server.ak or params.get("client_secret") != server.sk:
                return self._json(401, {"error": "invalid_client", "error_description": "unknown client id"})
            return self._json(
                200,
                {
                    "access_token": server.access_token,
                    "expires_in": 2592000,
                    "refresh_token": "r",
                    "scope": "s",
                },
            )

        def _ernie(self, request: Recorded, behaviour: Behaviour, *, wrapped: bool) -> None:
            def error(code: int, message: str | None = None) -> None:
                text = message or ERNIE_MESSAGES.get(code, "error")
                if wrapped:
                    return self._json(200, {"errorCode": code, "errorMsg": text, "result": None})
                return self._json(200, {"error_code": code, "error_msg": text, "id": "as-err"})

            if wrapped:
                authorised = request.headers.get("authorization") == f"token {server.access_token}"
            else:
                authorised = request.query.get("access_token") == server.access_token
            if not authorised:
                return error(110)
            violation = ernie_rule_violation(request.body)
            if violation:
                return error(336006, violation)
            if isinstance(behaviour, ErrorCode):
                return error(behaviour.code, behaviour.message)
            assert isinstance(behaviour, Reply)
            result = {
                "id": f"as-{uuid.uuid4().hex[:10]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "result": behaviour.text,
                "is_truncated": behaviour.truncated,
                "need_clear_history": False,
                "finish_reason": behaviour.finish_reason or ("length" if behaviour.truncated else "normal"),
                "usage": {
                    "prompt_tokens": behaviour.prompt_tokens,
                    "completion_tokens": behaviour.completion_tokens,
                    "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
                },
            }
            if wrapped:
                return self._json(200, {"errorCode": 0, "errorMsg": "", "result": result})
            return self._json(200, result)

        def _openai(self, request: Recorded, behaviour: Behaviour) -> None:
            expected = f"Bearer {server.bearer_key}"
            if request.headers.get("authorization") != expected:
                return self._json(
                    401,
                    {
                        "error": {
                            "message": "Incorrect API key provided",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                            "param": None,
                        }
                    },
                )
            if isinstance(behaviour, ErrorCode):
                status = _openai_error_for_code(
                    behaviour.code, behaviour.message or ERNIE_MESSAGES.get(behaviour.code, "error")
                )
                return self._json(status.status, status.body)
            assert isinstance(behaviour, Reply)
            body = request.body if isinstance(request.body, dict) else {}
            if body.get("stream"):
                return self._openai_stream(body, behaviour)
            logprobs = {"content": behaviour.token_entries(), "refusal": None} if body.get("logprobs") else None
            self._json(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": behaviour.text},
                            "logprobs": logprobs,
                            "finish_reason": behaviour.finish_reason or ("length" if behaviour.truncated else "stop"),
                        }
                    ],
                    "usage": {
                        "prompt_tokens": behaviour.prompt_tokens,
                        "completion_tokens": behaviour.completion_tokens,
                        "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
                    },
                },
            )

        def _openai_stream(self, body: dict[str, Any], reply: Reply) -> None:
            """Server-sent events as OpenAI streams them: a role chunk, one chunk per word, a
            finish chunk, a usage chunk when stream_options.include_usage asks, then [DONE]."""
            base = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake-model"),
            }

            def chunk(
                delta: dict[str, Any], finish: str | None = None, tokens: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
                if tokens is not None:
                    choice["logprobs"] = {"content": tokens, "refusal": None}
                return {**base, "choices": [choice]}

            events: list[Any] = [chunk({"role": "assistant", "content": ""})]
            if body.get("logprobs"):
                events += [chunk({"content": text}, tokens=group) for text, group in _stream_groups(reply)]
            else:
                events += [chunk({"content": word}) for word in _words(reply.text)]
            events.append(chunk({}, reply.finish_reason or ("length" if reply.truncated else "stop")))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                }
                events.append({**base, "choices": [], "usage": usage})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in [*events, "[DONE]"]:
                    data = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
                    payload = f"data: {data}\n\n".encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    self.wfile.flush()
                    if reply.chunk_delay and event is not events[0]:
                        time.sleep(reply.chunk_delay)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: cancelled
                self.close_connection = True

    return Handler


def _stream_groups(reply: Reply) -> list[tuple[str, list[dict[str, Any]]]]:
    """The answer's tokens grouped into chunks whose content is whole characters (a token holding
    part of one waits for the next), each chunk with its tokens' logprob entries."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    pending: list[dict[str, Any]] = []
    for entry in reply.token_entries():
        pending.append(entry)
        raw = bytes(b for item in pending for b in item["bytes"])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        groups.append((text, pending))
        pending = []
    if pending:
        groups.append((bytes(b for item in pending for b in item["bytes"]).decode("utf-8", "replace"), pending))
    return groups


def serve() -> Iterator[FakeLLMServer]:
    """Generator for a pytest fixture: one server, closed afterwards."""
    server = FakeLLMServer()
    try:
        yield server
    finally:
        server.close()
