"""The one small interface every chat backend implements.

    reply = await model.chat(messages, ChatSettings(json_mode="object"), on_delta=print)

`ChatModel.chat` is the async core. It owns retries (exponential backoff with jitter, honouring a
service's Retry-After) around the backend's single abstract method `_complete`, which performs one
attempt and raises our own exceptions (chatocr.errors) for every failure. SDK-level retries are
switched off in every backend so that exactly one layer decides when to try again.
`ContextTooLongError` is never retried: the caller re-plans the conversation with less.
`on_delta` receives the answer as it is generated (backends with `supports_streaming`) or once,
whole; cancelling the awaiting task cancels the attempt. What a backend can do is declared in
class attributes (capabilities) that doctor, the router and the OCR vlm engine read.
`BlockingChatModel` is the template for SDK backends (build the request, send it in a worker
thread). `chat_sync` is a thin wrapper for scripts (chatocr.bridge).
"""

from __future__ import annotations

import abc
import asyncio
import importlib.util
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeAlias

from chatocr.bridge import run_blocking, run_sync
from chatocr.errors import ConfigError, ContextTooLongError, InvalidRequestError, LLMError
from chatocr.messages import Limits, Message
from chatocr.tokens import TokenCounter

__all__ = [
    "BlockingChatModel",
    "ChatModel",
    "ChatReply",
    "ChatSettings",
    "DeltaCallback",
    "JsonMode",
    "RetryPolicy",
    "SetupStatus",
    "Usage",
    "run_blocking",
]

log = logging.getLogger("chatocr.llm")

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
    # Ask for each answer token's log-probability (`ChatReply.token_logprobs`) where the backend
    # can give them (`ChatModel.supports_logprobs`); the others answer without, never fail.
    logprobs: bool = False

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
    latency_s: float = 0.0  # from the first attempt's start to the answer, backoff waits included
    model: str = ""
    provider: str = ""
    raw: Any = field(default=None, repr=False, compare=False)
    attempts: int = 1  # how many tries chat() needed (1 = first time)
    attempt_latencies: tuple[float, ...] = ()  # each attempt's own seconds, in order
    # Each generated token's text and natural-log probability, in order, when asked for
    # (ChatSettings.logprobs) and given; None otherwise. The texts joined are `text`. A token
    # holding part of a UTF-8 character (a CJK character split over two tokens) carries those
    # bytes as surrogate escapes: `"".join(texts).encode("utf-8", "surrogateescape")` is the
    # answer's bytes (chatocr.calibration.probability aligns values to tokens that way).
    token_logprobs: tuple[tuple[str, float], ...] | None = field(default=None, repr=False)


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


DeltaCallback = Callable[[str], None]


@dataclass(frozen=True)
class SetupStatus:
    """What `ChatModel.setup_status()` found: usable, what was seen, the one step that fixes it."""

    ok: bool
    detail: str
    fix: str = ""


class ChatModel(abc.ABC):
    """A chat backend. Subclasses declare what they can do (the class attributes below), set the
    instance attributes, and implement `_complete` (one attempt); SDK backends subclass
    `BlockingChatModel`, which implements `_complete` for them.

    Capabilities are class attributes so that `doctor`, the router, the CLI and the OCR `vlm`
    engine can read them from the class, without credentials and without building a client
    (`chatocr.llm.backend_class(name)`).
    """

    # -- what the backend can do (read by doctor, the router, the CLI, the vlm engine) ----------
    key_env: ClassVar[tuple[str, ...]] = ()  # environment variables that may hold its key
    # Sets of variables that together are a credential (("EB_AK", "EB_SK")); empty: any one
    # variable of key_env alone is enough.
    key_sets: ClassVar[tuple[tuple[str, ...], ...]] = ()
    needs_key: ClassVar[bool] = False
    needs_server: ClassVar[bool] = False  # a server the user runs (ollama, vllm, llama.cpp)
    server_hint: ClassVar[str] = ""  # how to start that server
    base_url_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules it needs (looked up, not imported)
    extra: ClassVar[str | None] = None  # the pip extra that installs them: chatocr[extra]
    supports_images: ClassVar[bool] = False
    supports_json_schema: ClassVar[bool] = False
    supports_json_mode: ClassVar[bool] = False
    supports_system_role: ClassVar[bool] = False
    supports_streaming: ClassVar[bool] = False  # on_delta gets pieces as they are generated
    supports_prefix_cache: ClassVar[bool] = False  # a shared prompt prefix is cheap to re-send
    # It can return each answer token's log-probability (ChatSettings.logprobs): a signal of
    # how sure the model was of each value (chatocr.calibration).
    supports_logprobs: ClassVar[bool] = False
    # Its exact token counter can be had without loading the model (the module's
    # `vocabulary_counter`): an export that only counts never loads a 1 GB model.
    counts_from_vocabulary: ClassVar[bool] = False
    description: ClassVar[str] = ""

    provider: str
    model: str
    limits: Limits
    counter: TokenCounter
    retry_policy: RetryPolicy = RetryPolicy()
    default_settings: ChatSettings = ChatSettings()
    # Injection points for tests: how to wait and where jitter comes from.
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)
    _rng: Callable[[], float] = staticmethod(random.random)

    @classmethod
    def credentials_found(cls, environ: Mapping[str, str] | None = None) -> bool:
        """Whether the environment holds a complete credential (True when none is needed)."""
        if not cls.needs_key:
            return True
        env = os.environ if environ is None else environ
        sets = cls.key_sets or tuple((name,) for name in cls.key_env)
        return any(all(env.get(name) for name in names) for names in sets)

    @classmethod
    def setup_status(cls, environ: Mapping[str, str] | None = None) -> SetupStatus:
        """Whether this backend can work here, for `chatocr doctor`: its modules are installed
        (looked up, not imported) and its credentials are in the environment (never shown).
        Nothing is contacted. Backends with more to check (the local model file) extend it."""
        env = os.environ if environ is None else environ
        missing = [module for module in cls.requires if importlib.util.find_spec(module) is None]
        if missing:
            fix = f'pip install "chatocr[{cls.extra}]"' if cls.extra else f"pip install {' '.join(missing)}"
            return SetupStatus(False, f"{', '.join(missing)} missing", fix)
        if not cls.needs_key:
            return SetupStatus(True, cls.description)
        sets = cls.key_sets or tuple((name,) for name in cls.key_env)
        shown = [name for name in cls.key_env if env.get(name)] if cls.key_sets else list(cls.key_env)
        detail = ", ".join(f"{name} {'set' if env.get(name) else 'not set'}" for name in shown)
        if cls.credentials_found(env):
            return SetupStatus(True, detail)
        others = " / ".join(" and ".join(names) for names in sets[1:])
        fix = "export " + " ".join(f"{name}=..." for name in sets[0]) + (f" (or {others})" if others else "")
        return SetupStatus(False, detail or f"none of {', '.join(cls.key_env)} set", fix)

    def prepare(self) -> None:
        """Get ready to answer without answering (the local model loads its weights). Blocking;
        the pipeline calls it in a worker thread beside a document's OCR, so the two overlap.
        Safe to call again and while answering. Default: nothing to get ready."""
        return

    @abc.abstractmethod
    async def _complete(
        self, messages: Sequence[Message], settings: ChatSettings, on_delta: DeltaCallback | None = None
    ) -> ChatReply:
        """One attempt. Raise chatocr.errors.LLMError subclasses for every failure. Backends that
        declare `supports_streaming` call `on_delta` with each piece (it is None otherwise)."""

    async def chat(
        self,
        messages: Sequence[Message],
        settings: ChatSettings | None = None,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> ChatReply:
        """One answer, with retries. `on_delta(text)` receives the answer as it is generated by
        backends that stream, else once with the whole text. Once a piece has been delivered, a
        failure is raised, not retried (the caller has shown part of an answer). Cancelling the
        awaiting task cancels the attempt; the local backend then stops generating."""
        settings = settings or self.default_settings
        messages = list(messages)
        if not messages:
            raise InvalidRequestError("No messages to send.", hint="Pass at least one user message.")
        policy = self.retry_policy
        delivered = 0

        def forward(piece: str) -> None:
            nonlocal delivered
            if piece and on_delta is not None:
                delivered += 1
                on_delta(piece)

        stream = forward if on_delta is not None and self.supports_streaming else None
        began = time.perf_counter()
        attempt_times: list[float] = []
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                # Without a consumer of pieces, the two-argument call that backends written
                # before streaming existed also implement.
                reply = await (
                    self._complete(messages, settings) if stream is None else self._complete(messages, settings, stream)
                )
            except ContextTooLongError:
                attempt_times.append(time.perf_counter() - started)
                raise  # the caller re-plans with less; retrying the same input cannot help
            except LLMError as error:
                attempt_times.append(time.perf_counter() - started)
                if error.provider is None:
                    error.provider = self.provider
                retry_after = getattr(error, "retry_after", None)
                if not error.retryable or attempt >= policy.max_attempts or delivered:
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
            attempt_times.append(time.perf_counter() - started)
            if on_delta is not None and stream is None:
                forward(reply.text)  # a backend that cannot stream: the whole text at once
            return replace(
                reply,
                latency_s=time.perf_counter() - began,  # every attempt and every wait between
                attempt_latencies=tuple(attempt_times),
                model=reply.model or self.model,
                provider=self.provider,
                attempts=attempt,
            )

    async def keep_prefix(self, messages: Sequence[Message]) -> str:
        """Compute and keep, ahead of any document, the state of these messages' stable prefix
        (system + examples), so the first document to use it starts from there. Returns where the
        state came from ("built", "disk", ...), or "none" for backends that keep no such state
        (remote services cache on their side, if at all)."""
        return "none"

    def chat_sync(
        self,
        messages: Sequence[Message],
        settings: ChatSettings | None = None,
        *,
        on_delta: DeltaCallback | None = None,
    ) -> ChatReply:
        """Blocking `chat` for scripts. Inside a running event loop, `await chat(...)` instead:
        blocking the loop for a whole model call would stall everything else on it."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_sync(self.chat(messages, settings, on_delta=on_delta))
        raise ConfigError(
            "chat_sync() was called from inside a running event loop.",
            hint="Use `await model.chat(...)` in async code.",
        )

    @property
    def label(self) -> str:
        """`provider:model`: which model answered (a calibration records the one it was fitted with)."""
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:
        # Never include credentials: subclasses add only what `_repr_fields` returns.
        extra = "".join(f" {key}={value!r}" for key, value in self._repr_fields().items())
        return f"<{type(self).__name__} {self.provider}:{self.model}{extra}>"

    def _repr_fields(self) -> dict[str, object]:
        return {}


class BlockingChatModel(ChatModel):
    """The template for backends whose SDK call blocks: build the request, send it in a worker
    thread (see chatocr.bridge.run_blocking), parse the answer. Subclasses implement the two
    halves; errors are mapped inside `_send`."""

    @abc.abstractmethod
    def build_request(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        """What would be sent (public so tests and the REPL can show it)."""

    @abc.abstractmethod
    def _send(self, request: dict[str, Any], settings: ChatSettings, on_delta: DeltaCallback | None) -> ChatReply:
        """One blocking attempt with a built request."""

    async def _complete(
        self, messages: Sequence[Message], settings: ChatSettings, on_delta: DeltaCallback | None = None
    ) -> ChatReply:
        request = self.build_request(messages, settings)
        if on_delta is None:
            return await run_blocking(self._send, request, settings, None)
        # Streaming: pieces hop to the caller's loop (on_delta runs there, in order, before the
        # reply); a cancelled caller makes the next piece end the stream, closing the connection.
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def deliver(piece: str) -> None:
            if stop.is_set():
                raise _StreamCancelled
            loop.call_soon_threadsafe(on_delta, piece)

        try:
            return await asyncio.to_thread(self._send, request, settings, deliver)
        except asyncio.CancelledError:
            stop.set()
            raise


class _StreamCancelled(Exception):
    """Raised into a streaming SDK loop (in its worker thread) after the caller was cancelled."""
