"""ERNIE Bot through the `erniebot` SDK (0.5.9), api_type "qianfan" (V1 URLs) or "aistudio".

- Configuration goes in the per-call `_config_` only, never in erniebot's module globals, so two
  models with different tokens or base URLs coexist safely in one process.
- ERNIE's message rules are enforced before sending (ernie_rules.to_ernie_payload), so the service's
  336006 means a bug in that function, not in the caller's plan.
- The synchronous `create` runs in a worker thread: erniebot 0.5.9's `acreate` silently drops
  `response_format`.
- `base_url` may be a bare host ("http://127.0.0.1:8000"): the api_type's path prefix
  ("/rpc/2.0/ai_custom/v1/wenxinworkshop" or "/llm/lmapi/v1") is then appended.
- With `ak`/`sk` instead of an access token, erniebot fetches the token from a hard-coded Baidu URL
  (not from `base_url`); tests therefore use access tokens.
- Baidu retired the V1 endpoints on 2026-08-31; the "aistudio" api_type or Qianfan V2 (the
  `qianfan-openai` provider) are the supported paths. V1 stays for private deployments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

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
from chatocr.llm._sdk import short_error
from chatocr.llm.base import BlockingChatModel, ChatReply, ChatSettings, DeltaCallback, RetryPolicy, Usage
from chatocr.llm.ernie_rules import ernie_limits, ernie_sampling, error_for_code, to_ernie_payload
from chatocr.messages import Limits, Message
from chatocr.secrets import Secret, as_secret, install_log_redaction
from chatocr.tokens import CharCounter, TokenCounter

__all__ = ["ErnieBotChatModel", "map_http_status"]

ApiType = Literal["qianfan", "aistudio"]
# erniebot refuses response_format for these families (InvalidArgumentError before sending).
_NO_JSON_MODE = ("ernie-speed", "ernie-lite", "ernie-tiny", "ernie-char")


class ErnieBotChatModel(BlockingChatModel):
    key_env = ("EB_ACCESS_TOKEN", "AISTUDIO_ACCESS_TOKEN", "EB_AK", "EB_SK")
    key_sets = (("EB_ACCESS_TOKEN",), ("AISTUDIO_ACCESS_TOKEN",), ("EB_AK", "EB_SK"))
    needs_key = True
    base_url_env = "EB_BASE_URL"
    requires = ("erniebot",)
    extra = "ernie"
    supports_json_mode = True  # "json_object" only, and not for ernie-speed/lite/tiny/char
    description = "ERNIE Bot via erniebot (api_type qianfan V1 or aistudio)"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_type: ApiType | None = None,
        access_token: str | Secret | None = None,
        ak: str | Secret | None = None,
        sk: str | Secret | None = None,
        base_url: str | None = None,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
        retry_policy: RetryPolicy | None = None,
        default_settings: ChatSettings | None = None,
    ) -> None:
        try:
            import erniebot  # noqa: F401  (fail now, with the install command, not at first call)
        except ImportError as exc:
            raise MissingDependencyError("The ernie backend", "ernie", package="erniebot") from exc
        self.provider = "ernie"
        self.model = (model or "ernie-3.5").lower()
        chosen = api_type or os.environ.get("EB_API_TYPE") or "qianfan"
        if chosen not in ("qianfan", "aistudio"):
            raise ConfigError(f"api_type must be 'qianfan' or 'aistudio', got {chosen!r}.")
        self.api_type: ApiType = "aistudio" if chosen == "aistudio" else "qianfan"
        token = access_token or os.environ.get("EB_ACCESS_TOKEN")
        if not token and self.api_type == "aistudio":
            token = os.environ.get("AISTUDIO_ACCESS_TOKEN")
        self._token = as_secret(token)
        self._ak = as_secret(ak or os.environ.get("EB_AK"))
        self._sk = as_secret(sk or os.environ.get("EB_SK"))
        if not self._token and not (self._ak and self._sk and self.api_type == "qianfan"):
            variable = (
                "AISTUDIO_ACCESS_TOKEN" if self.api_type == "aistudio" else "EB_ACCESS_TOKEN (or EB_AK and EB_SK)"
            )
            raise AuthenticationError(
                f"No credentials for ERNIE Bot (api_type {self.api_type}).",
                hint=f"Pass access_token=... or set {variable}.",
                provider=self.provider,
            )
        self.base_url = base_url or os.environ.get("EB_BASE_URL")
        if self.base_url and "://localhost" in self.base_url:
            # erniebot's URL validator refuses "localhost"; say so instead of its opaque error.
            raise ConfigError(
                f"erniebot refuses {self.base_url!r} as a base URL.",
                hint="Use http://127.0.0.1:PORT instead.",
            )
        self.limits = limits or ernie_limits(self.model)
        self.counter = counter or CharCounter()
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if default_settings is not None:
            self.default_settings = default_settings
        install_log_redaction()

    def _repr_fields(self) -> dict[str, object]:
        return {"api_type": self.api_type, "base_url": self.base_url}

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"api_type": self.api_type, "max_retries": 0}
        if self._token:
            config["access_token"] = self._token.reveal()
        if self._ak and self._sk:
            config["ak"], config["sk"] = self._ak.reveal(), self._sk.reveal()
        if self.base_url:
            config["api_base_url"] = _with_api_prefix(self.base_url, self.api_type)
        return config

    def build_request(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        """Keyword arguments for `erniebot.ChatCompletion.create`, without `_config_`."""
        payload = to_ernie_payload(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": payload.messages,
            "request_timeout": settings.timeout,
            **ernie_sampling(settings),
        }
        if payload.system:
            request["system"] = payload.system
        # ERNIE knows "json_object" but not schemas; the prompt describes the fields anyway.
        if settings.json_mode is not None and not self.model.startswith(_NO_JSON_MODE):
            request["response_format"] = "json_object"
        return request

    def _send(self, request: dict[str, Any], settings: ChatSettings, on_delta: DeltaCallback | None) -> ChatReply:
        import erniebot
        import erniebot.errors as eb

        try:
            response = erniebot.ChatCompletion.create(**request, _config_=self._config())
        except eb.APIError as exc:
            code = exc.ecode if exc.ecode is not None else -1
            raise error_for_code(code, short_error(exc), provider=self.provider) from None
        except eb.TokenUpdateFailedError as exc:
            # erniebot got 110/111, tried to renew the token without AK/SK, and failed: report
            # the service's original error, which sits in the exception chain.
            original = _chained_api_error(exc)
            if original is not None and original.ecode is not None:
                raise error_for_code(original.ecode, short_error(original), provider=self.provider) from None
            raise AuthenticationError(
                f"ernie: the access token was refused and could not be renewed ({short_error(exc)}).",
                provider=self.provider,
            ) from None
        except eb.TimeoutError as exc:
            raise LLMTimeoutError(f"ernie: {short_error(exc)}", provider=self.provider) from None
        except eb.ConnectionError as exc:
            raise ServiceUnavailableError(f"ernie: {short_error(exc)}", provider=self.provider) from None
        except eb.HTTPRequestError as exc:
            raise _map_http_error(exc, self.provider) from None
        except eb.InvalidArgumentError as exc:
            raise InvalidRequestError(
                f"ernie refused the arguments: {short_error(exc)}", provider=self.provider
            ) from None
        return _parse(response, self.provider)


# erniebot's base URL includes the API's path prefix; a bare host gets the documented one.
_API_PREFIX = {"qianfan": "/rpc/2.0/ai_custom/v1/wenxinworkshop", "aistudio": "/llm/lmapi/v1"}


def _with_api_prefix(base_url: str, api_type: ApiType) -> str:
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        return base + _API_PREFIX[api_type]
    return base


def _chained_api_error(exc: BaseException) -> Any:
    import erniebot.errors as eb

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, eb.APIError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _parse(response: Any, provider: str) -> ChatReply:
    result = getattr(response, "result", None) if "result" in response else None
    if not isinstance(result, str):
        raise MalformedResponseError(f"{provider} answered without a text result.", provider=provider)
    usage = response.get("usage") or {}
    finish = response.get("finish_reason")
    truncated = bool(response.get("is_truncated")) or finish == "length"
    return ChatReply(
        text=result,
        finish_reason=finish,
        truncated=truncated,
        usage=Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")),
        raw=response,
    )


_STATUS = re.compile(r"^\s*code: (\d+)", re.MULTILINE)
# erniebot prints the response headers into its message text; Retry-After is read from there.
_RETRY_AFTER = re.compile(r"['\"]retry-after['\"]: ['\"]?(\d+(?:\.\d+)?)", re.IGNORECASE)


def map_http_status(status: int, text: str, provider: str, retry_after: float | None = None) -> LLMError:
    """A non-200 HTTP answer from an ERNIE-style service."""
    if status == 429:
        return RateLimitError(text, provider=provider, retry_after=retry_after)
    if status in (401, 403):
        return AuthenticationError(text, provider=provider)
    if status == 413:
        return ContextTooLongError(text, provider=provider)
    if status >= 500:
        return ServiceUnavailableError(text, provider=provider)
    return InvalidRequestError(text, provider=provider)


def _map_http_error(exc: Exception, provider: str) -> LLMError:
    # erniebot's HTTPRequestError keeps the status and headers only inside its message text.
    full = str(exc)
    text = f"{provider}: {short_error(exc)}"
    status_match = _STATUS.search(full)
    status = int(status_match.group(1)) if status_match else 200
    if status == 200:
        return MalformedResponseError(text, provider=provider)
    after = _RETRY_AFTER.search(full)
    return map_http_status(status, text, provider, float(after.group(1)) if after else None)
