"""A chat model for tests and demos that answers from a script.

    model = ScriptedChatModel(['{"total": "9.90"}', RateLimitError("slow down"), "fine"])
    model = ScriptedChatModel(lambda messages, settings: '{"echo": %d}' % len(messages))

Queue items are answer strings, ready ChatReply objects, or exceptions to raise (for one attempt:
the retry loop of ChatModel.chat runs for real). Every attempt is recorded in `.calls`. With
`on_delta`, a string answer streams word by word, `latency` spread over the words, so streaming
and cancellation can be exercised without a model.

`get_chat_model("scripted")` without `script=` reads its answers from $CHATOCR_SCRIPTED_ANSWERS
(see `from_registry`). That hook stays because the CLI and REPL tests run the real `chatocr`
program in a subprocess (pexpect, kill-and-resume), where no object can be handed in; in-process
tests pass `script=` or use chatocr.llm.testing.ScriptedTransport with the openai backend.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatocr.errors import ConfigError, LLMTimeoutError
from chatocr.llm.base import ChatModel, ChatReply, ChatSettings, DeltaCallback, RetryPolicy, Usage
from chatocr.messages import Limits, Message
from chatocr.tokens import CharCounter, TokenCounter

__all__ = ["SCRIPTED_ANSWERS_ENV", "ScriptedCall", "ScriptedChatModel", "from_registry"]

Answer = str | ChatReply | BaseException
Responder = Callable[[Sequence[Message], ChatSettings], str]
SCRIPTED_ANSWERS_ENV = "CHATOCR_SCRIPTED_ANSWERS"
_WORDS = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True)
class ScriptedCall:
    messages: tuple[Message, ...]
    settings: ChatSettings


class ScriptedChatModel(ChatModel):
    # A test double accepts whatever a real backend would, so callers' code paths all run.
    supports_images = True
    supports_json_schema = True
    supports_json_mode = True
    supports_system_role = True
    supports_streaming = True
    description = "for tests: script=[...] or $CHATOCR_SCRIPTED_ANSWERS"

    def __init__(
        self,
        script: Iterable[Answer] | Responder = (),
        *,
        model: str = "scripted",
        latency: float = 0.0,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
        retry_policy: RetryPolicy | None = None,
        default_settings: ChatSettings | None = None,
    ) -> None:
        self.provider = "scripted"
        self.model = model
        self.latency = latency
        self.limits = limits or Limits(context_window=8192)
        self.counter = counter or CharCounter()
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if default_settings is not None:
            self.default_settings = default_settings
        self._responder: Responder | None = script if callable(script) else None
        self._queue: deque[Answer] = deque() if callable(script) else deque(script)
        self.calls: list[ScriptedCall] = []

    def enqueue(self, *answers: Answer) -> None:
        self._queue.extend(answers)

    async def _complete(
        self, messages: Sequence[Message], settings: ChatSettings, on_delta: DeltaCallback | None = None
    ) -> ChatReply:
        self.calls.append(ScriptedCall(tuple(messages), settings))
        if self.latency > settings.timeout:
            await asyncio.sleep(settings.timeout)
            raise LLMTimeoutError(f"scripted model took longer than {settings.timeout}s", provider=self.provider)
        answer = self._next(messages, settings)
        if isinstance(answer, BaseException):
            await _pause(self.latency)
            raise answer
        if isinstance(answer, ChatReply):
            await _pause(self.latency)
            return answer
        if on_delta is None:
            await _pause(self.latency)
        else:
            pieces = _WORDS.findall(answer) or [answer]
            for piece in pieces:
                await _pause(self.latency / len(pieces))
                on_delta(piece)
        prompt = sum(self.counter.count(m.content) for m in messages)
        completion = self.counter.count(answer)
        return ChatReply(
            text=answer,
            finish_reason="stop",
            usage=Usage(prompt, completion, prompt + completion),
            raw={"scripted": True},
        )

    def _next(self, messages: Sequence[Message], settings: ChatSettings) -> Answer:
        if self._queue:
            return self._queue.popleft()
        if self._responder is not None:
            return self._responder(messages, settings)
        raise ConfigError(
            f"ScriptedChatModel ran out of answers after {len(self.calls) - 1} call(s).",
            hint="Enqueue more answers or pass a function.",
        )


async def _pause(seconds: float) -> None:
    if seconds:  # no await at all without latency: the caller's scheduling stays as it was
        await asyncio.sleep(seconds)


def from_registry(model: str | None = None, **options: Any) -> ScriptedChatModel:
    """ "scripted:name" with the answers in `script=[...]` (a queue) or a function.

    Without `script`, the answers come from $CHATOCR_SCRIPTED_ANSWERS (so that a CLI run in a
    subprocess, e.g. `chatocr extract --llm scripted`, can be scripted): inline JSON or the path of
    a JSON file holding a list of answers, or {"answers": [...], "latency": seconds}. The answers
    are given in turn and cycle; an answer that is not a string is sent as its JSON text.
    """
    if "script" not in options and os.environ.get(SCRIPTED_ANSWERS_ENV):
        answers, latency = _answers_from_env(os.environ[SCRIPTED_ANSWERS_ENV])
        options.setdefault("latency", latency)
        turn = itertools.count()
        options["script"] = lambda messages, settings: answers[next(turn) % len(answers)]
    return ScriptedChatModel(options.pop("script", ()), model=model or "scripted", **options)


def _answers_from_env(value: str) -> tuple[list[str], float]:
    text = value.strip()
    try:
        if not text.startswith(("[", "{")):
            text = Path(text).expanduser().read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"${SCRIPTED_ANSWERS_ENV} is neither inline JSON nor a readable JSON file: {exc}",
            hint='Set it to e.g. \'["first answer", {"total": "9.00"}]\' or the path of such a file.',
        ) from exc
    latency = 0.0
    if isinstance(data, dict):
        latency = float(data.get("latency", 0.0))
        data = data.get("answers")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"${SCRIPTED_ANSWERS_ENV} must hold a non-empty list of answers.")
    return [a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in data], latency
