"""Any OpenAI-compatible chat service, through the official `openai` SDK.

One adapter for the wire format; the vendor is a `Preset` (chatocr.llm.presets). The SDK's own
retries are off (`max_retries=0`): ChatModel.chat owns retrying. The synchronous client runs in a
worker thread, so one model object serves any number of event loops (`chat_sync` starts a new one
per call, which an async httpx client would not survive).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatocr.errors import (
    AuthenticationError,
    ConfigError,
    ContextTooLongError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    MissingDependencyError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm._sdk import mentions_context_limit, retry_after_seconds, safe_cause
from chatocr.llm.base import (
    BlockingChatModel,
    ChatReply,
    ChatSettings,
    DeltaCallback,
    RetryPolicy,
    Usage,
    sampling_options,
)
from chatocr.llm.presets import PRESETS, Preset, SchemaStyle
from chatocr.messages import Limits, Message
from chatocr.secrets import Secret, as_secret, install_log_redaction, redact
from chatocr.tokens import CharCounter, TiktokenCounter, TokenCounter

if TYPE_CHECKING:
    import httpx2
    import openai

__all__ = ["LazyTiktokenCounter", "OpenAIChatModel", "preset_model_class"]


class LazyTiktokenCounter:
    """A TiktokenCounter built on first use: building the BPE table takes a moment, and many
    processes (doctor, the REPL's model switcher) never count."""

    def __init__(self, encoding: str) -> None:
        self.name = f"tiktoken:{encoding}"
        self._encoding = encoding
        self._inner: TiktokenCounter | None = None

    def count(self, text: str) -> int:
        if self._inner is None:
            self._inner = TiktokenCounter(self._encoding)
        return self._inner.count(text)


class OpenAIChatModel(BlockingChatModel):
    """The OpenAI chat-completions wire format. Its capabilities are those of the `openai` preset;
    `preset_model_class(name)` gives the class for another preset, with that preset's."""

    key_env = PRESETS["openai"].key_envs
    needs_key = True
    base_url_env = PRESETS["openai"].base_url_env
    default_base_url = PRESETS["openai"].base_url
    requires = ("openai",)
    extra = "openai"
    supports_images = True  # the wire format carries images; whether the model reads them is its own
    supports_json_schema = True
    supports_json_mode = True
    supports_system_role = True
    supports_streaming = True
    supports_logprobs = PRESETS["openai"].logprobs
    description = PRESETS["openai"].docs

    def __init__(
        self,
        model: str | None = None,
        *,
        preset: str | Preset = "openai",
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        appid: str | None = None,
        headers: dict[str, str] | None = None,
        schema_style: SchemaStyle | None = None,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
        extra_body: dict[str, Any] | None = None,
        retry_policy: RetryPolicy | None = None,
        default_settings: ChatSettings | None = None,
        provider: str | None = None,
        http_client: httpx2.Client | None = None,
    ) -> None:
        """http_client: the httpx2 client the SDK sends with (e.g. one with a test transport,
        chatocr.llm.testing.ScriptedTransport); default: the SDK's own."""
        if isinstance(preset, str):
            if preset not in PRESETS:
                raise ConfigError(
                    f"Unknown OpenAI-compatible preset {preset!r}.",
                    hint=f"Use one of: {', '.join(PRESETS)}; or preset='openai' with base_url=...",
                )
            preset = PRESETS[preset]
        self.preset = preset
        self.provider = provider or preset.name
        chosen = model or preset.default_model
        if not chosen:
            raise ConfigError(
                f"The {preset.name} preset has no default model.",
                hint=f'Name the served model, e.g. get_chat_model("{self.provider}:Qwen/Qwen2.5-7B").',
            )
        self.model = chosen
        self.base_url = (base_url or os.environ.get(preset.base_url_env) or preset.base_url).rstrip("/")
        key = as_secret(api_key)
        if key is None:
            for env in preset.key_envs:
                if os.environ.get(env):
                    key = Secret(os.environ[env])
                    break
        if key is None and preset.needs_key:
            raise AuthenticationError(
                f"No API key for {preset.name}.",
                hint=f"Set {' or '.join(preset.key_envs)}, or pass api_key=...",
                provider=self.provider,
            )
        # Keyless local servers still need some value in the Authorization header.
        self._api_key = key or Secret("not-needed")
        self.schema_style: SchemaStyle = schema_style or preset.schema_style
        self.limits = limits or preset.limits(self.model)
        self.counter = counter or (CharCounter() if preset.counter == "chars" else LazyTiktokenCounter(preset.counter))
        self._extra_body = extra_body or {}
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if default_settings is not None:
            self.default_settings = default_settings
        default_headers = dict(headers or {})
        appid = appid or (os.environ.get("QIANFAN_APP_ID") if preset.name == "qianfan" else None)
        if appid:
            default_headers["appid"] = appid
        # Set when the service refused `logprobs` once: later requests leave it out.
        self._logprobs_refused = False
        install_log_redaction()
        self._client = self._make_client(default_headers, http_client)

    def _make_client(self, headers: dict[str, str], http_client: httpx2.Client | None) -> openai.OpenAI:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("The openai backend", "openai", package="openai") from exc
        return openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key.reveal(),
            max_retries=0,  # ChatModel.chat owns retries
            default_headers=headers or None,
            http_client=http_client,
        )

    def _repr_fields(self) -> dict[str, object]:
        return {"base_url": self.base_url}

    # ---- request ---------------------------------------------------------------------------

    def build_request(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        """The keyword arguments for `chat.completions.create` (public so tests and the REPL can
        show exactly what would be sent)."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in messages],
            **sampling_options(settings),
        }
        response_format = _response_format(settings.json_mode, self.schema_style)
        if response_format is not None:
            request["response_format"] = response_format
        if settings.logprobs and self.preset.logprobs and not self._logprobs_refused:
            # `top_logprobs: 0`: no alternatives, only the chosen tokens'. llama-cpp-python's server
            # computes logprobs only when it is set; the other services take 0 as well.
            request["logprobs"] = True
            request["top_logprobs"] = 0
        if self._extra_body:
            request["extra_body"] = self._extra_body
        return request

    def _send(self, request: dict[str, Any], settings: ChatSettings, on_delta: DeltaCallback | None) -> ChatReply:
        import openai

        try:
            if on_delta is not None:
                return self._stream(request, settings.timeout, on_delta)
            response = self._client.chat.completions.create(**request, timeout=settings.timeout)
        except openai.BadRequestError as exc:
            if request.get("logprobs") and "logprob" in str(exc).lower():
                # A service that says it takes logprobs but refuses them (a model that cannot):
                # the answer matters more than the signal. Ask again without, and from now on.
                self._logprobs_refused = True
                unasked = {k: v for k, v in request.items() if k not in ("logprobs", "top_logprobs")}
                return self._send(unasked, settings, on_delta)
            raise _map_error(exc, self.provider) from safe_cause(exc)
        except openai.OpenAIError as exc:
            raise _map_error(exc, self.provider) from safe_cause(exc)
        except ValueError as exc:  # a 200 whose body is not JSON
            raise MalformedResponseError(
                f"{self.provider} answered with a body that is not JSON: {redact(str(exc))[:200]}",
                provider=self.provider,
            ) from None
        return _parse(response, self.provider)

    def _stream(self, request: dict[str, Any], timeout: float, on_delta: DeltaCallback) -> ChatReply:
        """The same request as server-sent events: each content delta goes to on_delta as it
        arrives; usage comes in the last chunk (stream_options.include_usage), where served."""
        pieces: list[str] = []
        tokens: list[tuple[str, float]] | None = [] if request.get("logprobs") else None
        finish: str | None = None
        usage: Any = None
        model = ""
        stream = self._client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}, timeout=timeout
        )
        with stream:
            for chunk in stream:
                model = getattr(chunk, "model", None) or model
                usage = getattr(chunk, "usage", None) or usage
                for choice in getattr(chunk, "choices", None) or ():
                    text = getattr(getattr(choice, "delta", None), "content", None)
                    if text:
                        pieces.append(text)
                        on_delta(text)
                    if tokens is not None:
                        tokens.extend(_token_logprobs(choice) or ())
                    finish = getattr(choice, "finish_reason", None) or finish
        if finish is None and not pieces:
            raise MalformedResponseError(f"{self.provider} streamed no answer.", provider=self.provider)
        return ChatReply(
            text="".join(pieces),
            finish_reason=finish,
            truncated=finish == "length",
            usage=_usage(usage),
            model=model,
            token_logprobs=tuple(tokens) if tokens else None,
        )


def _wire_message(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    # Vision models take a list of parts: the text, then each image as a data URL.
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts.extend({"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images)
    return {"role": message.role, "content": parts}


def _response_format(json_mode: object, style: SchemaStyle) -> dict[str, Any] | None:
    if json_mode is None:
        return None
    if json_mode == "object" or style == "object":
        return {"type": "json_object"}
    assert isinstance(json_mode, dict)
    if style == "llamacpp":
        return {"type": "json_object", "schema": json_mode}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": json_mode, "strict": False}}


def _parse(response: Any, provider: str) -> ChatReply:
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedResponseError(f"{provider} answered without any choice.", provider=provider)
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    if text is None:
        # A refusal or a tool call: no text for us. Say so instead of returning "".
        refusal = getattr(message, "refusal", None)
        raise MalformedResponseError(
            f"{provider} answered without text" + (f" (refusal: {refusal})" if refusal else "") + ".",
            provider=provider,
        )
    finish = getattr(choice, "finish_reason", None)
    tokens = _token_logprobs(choice)
    return ChatReply(
        text=text,
        finish_reason=finish,
        truncated=finish == "length",
        usage=_usage(getattr(response, "usage", None)),
        model=getattr(response, "model", None) or "",
        raw=response,
        token_logprobs=tuple(tokens) if tokens else None,
    )


def _token_logprobs(choice: Any) -> list[tuple[str, float]] | None:
    """The choice's `logprobs.content` as (token text, logprob) pairs, None when it has none.
    A token's text comes from its UTF-8 `bytes` where the service gives them: a token holding part
    of a character then keeps those bytes (as surrogate escapes) instead of a replacement mark."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    out: list[tuple[str, float]] = []
    for item in content:
        raw = getattr(item, "bytes", None)
        logprob = getattr(item, "logprob", None)
        try:
            text = bytes(raw).decode("utf-8", "surrogateescape") if raw else str(getattr(item, "token", ""))
        except (TypeError, ValueError):
            return None  # malformed bytes: no probabilities rather than misaligned ones
        if not isinstance(logprob, (int, float)) or isinstance(logprob, bool):
            return None
        out.append((text, float(logprob)))
    return out


def _usage(usage: Any) -> Usage:
    return Usage(
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        getattr(usage, "total_tokens", None),
    )


def _map_error(exc: Exception, provider: str) -> LLMError:
    import openai

    text = f"{provider}: {redact(str(exc))}"
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeoutError(text, provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ServiceUnavailableError(text, provider=provider)
    if isinstance(exc, openai.APIResponseValidationError):
        return MalformedResponseError(text, provider=provider)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        lowered = str(exc).lower()
        code = str(getattr(exc, "code", "") or "")
        if status in (401, 403):
            return AuthenticationError(text, provider=provider)
        if status == 429:
            if code == "insufficient_quota" or "insufficient_quota" in lowered:
                error = RateLimitError(text, provider=provider, hint="The account's quota is used up: top it up.")
                error.retryable = False
                return error
            return RateLimitError(text, provider=provider, retry_after=retry_after_seconds(exc.response.headers))
        if status == 413 or mentions_context_limit(lowered, code):
            return ContextTooLongError(text, provider=provider)
        if status >= 500:
            return ServiceUnavailableError(text, provider=provider)
        if status == 404:
            return InvalidRequestError(text, provider=provider, hint="Check the model name and the base URL.")
        return InvalidRequestError(text, provider=provider)
    return MalformedResponseError(text, provider=provider)


_preset_classes: dict[str, type[OpenAIChatModel]] = {}


def preset_model_class(name: str) -> type[OpenAIChatModel]:
    """OpenAIChatModel with the capabilities of preset `name` (its key variables, JSON-schema
    support, whether it is a server the user runs): what `doctor` and the router read."""
    if name == "openai":
        return OpenAIChatModel
    cls = _preset_classes.get(name)
    if cls is None:
        preset = PRESETS[name]
        title = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
        capabilities: dict[str, Any] = {
            "key_env": preset.key_envs,
            "needs_key": preset.needs_key,
            "needs_server": not preset.needs_key,  # keyless presets are servers the user runs
            "server_hint": preset.start,
            "base_url_env": preset.base_url_env,
            "default_base_url": preset.base_url,
            "supports_images": preset.images,
            "supports_json_schema": preset.schema_style != "object",
            "supports_logprobs": preset.logprobs,
            "description": preset.docs,
            "__module__": __name__,
            "__doc__": f"OpenAIChatModel for the {name} preset: {preset.docs}.",
        }
        cls = type(f"{title}ChatModel", (OpenAIChatModel,), capabilities)
        _preset_classes[name] = cls
    return cls
