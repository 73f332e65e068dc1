"""The one small interface every chat backend implements.

    reply = await model.chat(messages, ChatSettings(json_mode="object"))

`ChatModel.chat` is the async core. It owns retries (exponential backoff with jitter, honouring a
service's Retry-After) around the backend's single abstract method `_complete`, which performs one
attempt and raises our own exceptions (chatocr.errors) for every failure. SDK-level retries are
switched off in every backend so that exactly one layer decides when to try again.
`ContextTooLongError` is never retried: the caller re-plans the conversation with less.
`chat_sync` is a thin wrapper for scripts and the REPL.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

from chatocr.errors import ConfigError, ContextTooLongError, InvalidRequestError, LLMError
from chatocr.messages import Limits, Message
from chatocr.tokens import TokenCounter

__all__ = ["ChatModel", "ChatReply", "ChatSettings", "JsonMode", "RetryPolicy", "Usage", "run_blocking"]

log = logging.getLogger("chatocr.llm")
T = TypeVar("T")

# None: free text. "object": any JSON object. A dict: a JSON schema the answer must follow
# (backends that cannot enforce a schema fall back to "object").
JsonMode: TypeAlias = "Literal['object'] | dict[str, Any] | None"


@dataclass(frozen=True)
class ChatSettings:
    """Sampling and request settings for one call. Defaults suit extraction: near-deterministic."""

    temperature: float = 0.01  # ERNIE refuses 0; 0.01 is as greedy as it allows
    top_p: float | None = None
    max_output_tokens: int | None = 1024
    json_mode: JsonMode = None
    stop: tuple[str, ...] = ()
    timeout: float = 120.0  # seconds for one attempt
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be within [0, 2], got {self.temperature}.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be within (0, 1], got {self.top_p}.")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ConfigError(f"max_output_tokens must be positive, got {self.max_output_tokens}.")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout}.")
        if not (self.json_mode is None or self.json_mode == "object" or isinstance(self.json_mode, dict)):
            raise ConfigError(f"json_mode must be None, 'object' or a JSON-schema dict, got {self.json_mode!r}.")


@dataclass(frozen=True)
class Usage:
    """Token usage as the service reported it; None where it did not."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and self.prompt_tokens is not None and self.completion_tokens is not None:
            object.__setattr__(self, "total_tokens", self.prompt_tokens + self.completion_tokens)


@dataclass(frozen=True)
class ChatReply:
    """One answer. `truncated` is True when the model stopped for length (the answer may be cut)."""

    text: str
    finish_reason: str | None = None
    truncated: bool = False
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""
    provider: str = ""
    raw: Any = field(default=None, repr=False, compare=False)
    attempts: int = 1  # how many tries chat() needed (1 = first time)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    Delay before retry n (1-based): min(max_delay, initial_delay * multiplier**(n-1)), then "equal
    jitter": half of it fixed, half random, so that parallel workers spread out but never retry
    immediately. A service's Retry-After wins when it asks for longer; if it asks for more than
    `max_retry_after`, waiting is pointless for an interactive tool and the error is raised.
    """

    max_attempts: int = 4
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 20.0
    jitter: bool = True
    max_retry_after: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None, rng: Callable[[], float] = random.random) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        if self.jitter:
            base = base / 2 + rng() * base / 2
        if retry_after is not None:
            base = max(base, retry_after)
        return base


def sampling_options(settings: ChatSettings) -> dict[str, Any]:
    """The OpenAI-style sampling keys (temperature, top_p, max_tokens, stop, seed) that both
    OpenAI-compatible services and llama.cpp's create_chat_completion take."""
    options: dict[str, Any] = {"temperature": settings.temperature}
    if settings.top_p is not None:
        options["top_p"] = settings.top_p
    if settings.max_output_tokens is not None:
        options["max_tokens"] = settings.max_output_tokens
    if settings.stop:
        options["stop"] = list(settings.stop)
    if settings.seed is not None:
        options["seed"] = settings.seed
    return options


_thread_state = threading.local()


def _sync_loop() -> asyncio.AbstractEventLoop:
    """One event loop per calling thread, kept for chat_sync. asyncio.run() per call would build
    a loop and a fresh worker-thread pool every time (about 0.5 ms, a third of a local round trip)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop
    return loop


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking SDK call without blocking the event loop: in a worker thread, except on
    chat_sync's private loop, where nothing else runs and the thread hop (about 0.1 ms, 10% of a
    local round trip) would be pure overhead."""
    if getattr(_thread_state, "loop", None) is asyncio.get_running_loop():
        return function(*args)
    return await asyncio.to_thread(function, *args)


class ChatModel(abc.ABC):
    """A chat backend. Subclasses set the attributes and implement `_complete` (one attempt)."""

    provider: str
    model: str
    limits: Limits
    counter: TokenCounter
    retry_policy: RetryPolicy = RetryPolicy()
    default_settings: ChatSettings = ChatSettings()
    # Capabilities. A prompt-prefix cache re-uses the work for a prompt's unchanged start.
    supports_prefix_cache: ClassVar[bool] = False
    # Injection points for tests: how to wait and where jitter comes from.
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)
    _rng: Callable[[], float] = staticmethod(random.random)

    @abc.abstractmethod
    async def _complete(self, messages: Sequence[Message], settings: ChatSettings) -> ChatReply:
        """One attempt. Raise chatocr.errors.LLMError subclasses for every failure."""

    async def chat(self, messages: Sequence[Message], settings: ChatSettings | None = None) -> ChatReply:
        settings = settings or self.default_settings
        messages = list(messages)
        if not messages:
            raise InvalidRequestError("No messages to send.", hint="Pass at least one user message.")
        policy = self.retry_policy
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                reply = await self._complete(messages, settings)
            except ContextTooLongError:
                raise  # the caller re-plans with less; retrying the same input cannot help
            except LLMError as error:
                if error.provider is None:
                    error.provider = self.provider
                retry_after = getattr(error, "retry_after", None)
                if not error.retryable or attempt >= policy.max_attempts:
                    raise
                if retry_after is not None and retry_after > policy.max_retry_after:
                    raise
                delay = policy.delay(attempt, retry_after, self._rng)
                log.warning(
                    "%s:%s attempt %d/%d failed (%s: %s); retrying in %.2fs",
                    self.provider,
                    self.model,
                    attempt,
                    policy.max_attempts,
                    type(error).__name__,
                    error.message,
                    delay,
                )
                await self._sleep(delay)
                continue
            return replace(
                reply,
                latency_s=time.perf_counter() - started,
                model=reply.model or self.model,
                provider=self.provider,
                attempts=attempt,
            )

    def chat_sync(self, messages: Sequence[Message], settings: ChatSettings | None = None) -> ChatReply:
        """Blocking `chat` for scripts. Inside a running event loop, `await chat(...)` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _sync_loop().run_until_complete(self.chat(messages, settings))
        raise ConfigError(
            "chat_sync() was called from inside a running event loop.",
            hint="Use `await model.chat(...)` in async code.",
        )

    def __repr__(self) -> str:
        # Never include credentials: subclasses add only what `_repr_fields` returns.
        extra = "".join(f" {key}={value!r}" for key, value in self._repr_fields().items())
        return f"<{type(self).__name__} {self.provider}:{self.model}{extra}>"

    def _repr_fields(self) -> dict[str, object]:
        return {}
