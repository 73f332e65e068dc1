"""A chat model for tests and demos that answers from a script.

    model = ScriptedChatModel(['{"total": "9.90"}', RateLimitError("slow down"), "fine"])
    model = ScriptedChatModel(lambda messages, settings: '{"echo": %d}' % len(messages))

Queue items are answer strings, ready ChatReply objects, or exceptions to raise (for one attempt:
the retry loop of ChatModel.chat runs for real). Every attempt is recorded in `.calls`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chatocr.errors import ConfigError, LLMTimeoutError
from chatocr.llm.base import ChatModel, ChatReply, ChatSettings, RetryPolicy, Usage
from chatocr.messages import Limits, Message
from chatocr.tokens import CharCounter, TokenCounter

__all__ = ["ScriptedCall", "ScriptedChatModel"]

Answer = str | ChatReply | BaseException
Responder = Callable[[Sequence[Message], ChatSettings], str]


@dataclass(frozen=True)
class ScriptedCall:
    messages: tuple[Message, ...]
    settings: ChatSettings


class ScriptedChatModel(ChatModel):
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

    @property
    def remaining(self) -> int:
        return len(self._queue)

    async def _complete(self, messages: Sequence[Message], settings: ChatSettings) -> ChatReply:
        self.calls.append(ScriptedCall(tuple(messages), settings))
        if self.latency:
            if self.latency > settings.timeout:
                await asyncio.sleep(settings.timeout)
                raise LLMTimeoutError(
                    f"scripted model took longer than {settings.timeout}s", provider=self.provider
                )
            await asyncio.sleep(self.latency)
        if self._queue:
            answer = self._queue.popleft()
        elif self._responder is not None:
            answer = self._responder(messages, settings)
        else:
            raise ConfigError(
                f"ScriptedChatModel ran out of answers after {len(self.calls) - 1} call(s).",
                hint="Enqueue more answers or pass a function.",
            )
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, ChatReply):
            return answer
        prompt = sum(self.counter.count(m.content) for m in messages)
        completion = self.counter.count(answer)
        return ChatReply(
            text=answer,
            finish_reason="stop",
            usage=Usage(prompt, completion, prompt + completion),
            raw={"scripted": True},
        )
