"""A test double for the openai backend's HTTP client: answers from a script, no server needed.

    from chatocr.llm import get_chat_model
    from chatocr.llm.testing import ScriptedTransport

    transport = ScriptedTransport(['{"total": "9.90"}', (429, {"Retry-After": "1"}), "fine"])
    model = get_chat_model("openai", api_key="test", http_client=transport.client())
    model.chat_sync(messages).text            # '{"total": "9.90"}' (the real SDK parsed it)
    transport.requests[-1]["messages"]        # what the SDK sent

It is httpx's MockTransport (the `httpx2` flavour the openai SDK ships with) answering
`POST .../chat/completions` in the OpenAI wire format, so everything between ChatModel.chat and
the socket runs for real: request building, the SDK's parsing, error mapping, retries, streaming.
Script items: an answer string (a 200 completion, or server-sent events when the request
streams), an int HTTP status, a `(status, headers)` pair, or an exception to raise from the
transport (e.g. `httpx2.ConnectTimeout`). With the script used up, the last item repeats.

Subprocesses (the CLI and REPL tests) cannot be handed a client: they use `--llm scripted` with
$CHATOCR_SCRIPTED_ANSWERS (chatocr.llm.scripted), or the fake server in tests/fakes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from chatocr.errors import MissingDependencyError

__all__ = ["ScriptedTransport"]

Item = str | int | tuple[int, dict[str, str]] | BaseException


def _httpx() -> Any:
    try:
        import httpx2
    except ImportError as exc:
        raise MissingDependencyError("chatocr.llm.testing", "openai", package="openai") from exc
    return httpx2


class ScriptedTransport:
    def __init__(self, script: Iterable[Item], *, model: str = "scripted-model") -> None:
        self.script: list[Item] = list(script)
        if not self.script:
            raise ValueError("ScriptedTransport needs at least one scripted answer.")
        self.model = model
        self.requests: list[dict[str, Any]] = []  # the JSON bodies the SDK sent, in order
        self._lock = threading.Lock()
        self._turn = 0
        self.transport = _httpx().MockTransport(self._handle)

    def client(self) -> Any:
        """An httpx2.Client for OpenAIChatModel(http_client=...)."""
        return _httpx().Client(transport=self.transport)

    def _next(self) -> Item:
        with self._lock:
            item = self.script[min(self._turn, len(self.script) - 1)]
            self._turn += 1
            return item

    def _handle(self, request: Any) -> Any:
        httpx = _httpx()
        body = json.loads(request.content or b"{}")
        with self._lock:
            self.requests.append(body)
        item = self._next()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, int):
            item = (item, {})
        if isinstance(item, tuple):
            status, headers = item
            error = {"error": {"message": f"scripted HTTP {status}", "type": "scripted", "code": None}}
            return httpx.Response(status, headers=headers, json=error)
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=self._events(item))
        return httpx.Response(200, json=self._completion(item, body))

    def _completion(self, text: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        return {
            "id": f"scripted-{self._turn}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model") or self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(text), "total_tokens": prompt + len(text)},
        }

    def _events(self, text: str) -> bytes:
        base = {"id": f"scripted-{self._turn}", "object": "chat.completion.chunk", "created": 0, "model": self.model}
        words = [w for w in text.replace(" ", " \0").split("\0") if w] or [""]
        chunks = [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in words]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
        return "".join(lines).encode()
