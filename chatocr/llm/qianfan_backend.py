"""Baidu Qianfan through the `qianfan` SDK (0.4.12.3): V1 (ERNIE native API) and V2 (OpenAI format).

The SDK keeps its base URLs and credentials in ONE process-wide config (`qianfan.get_config()`,
read once from QIANFAN_* variables and a `.env` file in the working directory); per-instance
`base_url=` is ignored and a per-instance V2 `bearer_token=` fails. So this backend writes its
settings into that config and *claims* each value: a second model that needs a different value
for a claimed setting (another base URL, other credentials) raises ConfigError instead of
silently sending with the first one's key. Models that agree, or set disjoint settings (a V1
access token and a V2 bearer key), share the config. Use the `qianfan-openai` provider (openai SDK,
per-instance settings) when one process needs several Qianfan accounts.

Two more things the SDK does to the process, handled here:
- `import qianfan` puts an import hook first on sys.meta_path that serves a fake `pyarrow` when
  pyarrow is missing, after which `import pandas` (paddleocr) dies. We import qianfan lazily and
  remove that hook right after; the chat API never needs pyarrow.
- Its own retries (3 by default, up to 4 s against a refused port) are cut to one attempt
  (`retry_count=1`): ChatModel.chat owns retrying.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from chatocr.errors import (
    AuthenticationError,
    ConfigError,
    ContextTooLongError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    MissingDependencyError,
    ServiceUnavailableError,
)
from chatocr.llm._sdk import mentions_context_limit, retry_after_seconds, short_error
from chatocr.llm.base import BlockingChatModel, ChatReply, ChatSettings, DeltaCallback, RetryPolicy, Usage
from chatocr.llm.ernie_rules import ernie_limits, ernie_sampling, error_for_code, to_ernie_payload
from chatocr.llm.erniebot_backend import map_http_status
from chatocr.llm.openai_backend import _wire_message
from chatocr.messages import Limits, Message, RoleRules
from chatocr.secrets import Secret, as_secret, install_log_redaction, redact, reveal
from chatocr.tokens import CharCounter, TokenCounter

__all__ = ["QianfanChatModel", "import_qianfan"]

_claims: dict[str, str] = {}  # config field -> value set by a chatocr model in this process
_claims_lock = threading.Lock()
_SECRET_FIELDS = {"AK", "SK", "ACCESS_TOKEN", "BEARER_TOKEN", "ACCESS_KEY", "SECRET_KEY"}


def import_qianfan() -> Any:
    """Import qianfan without leaving its fake-pyarrow import hook behind."""
    already = "qianfan" in sys.modules
    try:
        import qianfan
    except ImportError as exc:
        raise MissingDependencyError("The qianfan backend", "qianfan", package="qianfan") from exc
    if not already:
        sys.meta_path[:] = [
            finder for finder in sys.meta_path if type(finder).__module__ != "qianfan.fake_pyarrow_replacer"
        ]
    return qianfan


class QianfanChatModel(BlockingChatModel):
    key_env = (
        "QIANFAN_ACCESS_KEY",
        "QIANFAN_SECRET_KEY",
        "QIANFAN_AK",
        "QIANFAN_SK",
        "QIANFAN_ACCESS_TOKEN",
        "QIANFAN_BEARER_TOKEN",
    )
    key_sets = (
        ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY"),
        ("QIANFAN_AK", "QIANFAN_SK"),
        ("QIANFAN_ACCESS_TOKEN",),
        ("QIANFAN_BEARER_TOKEN",),
    )
    needs_key = True
    base_url_env = "QIANFAN_BASE_URL"
    requires = ("qianfan",)
    extra = "qianfan"
    supports_json_mode = True  # json_object only
    # V1 (the default) takes the system prompt as a field; version=2 takes a system message.
    supports_system_role = False
    description = "Baidu Qianfan via the qianfan SDK (version 1 or 2)"

    def __init__(
        self,
        model: str | None = None,
        *,
        version: Literal[1, 2] | Literal["1", "2"] = 1,
        endpoint: str | None = None,
        access_token: str | Secret | None = None,
        ak: str | Secret | None = None,
        sk: str | Secret | None = None,
        bearer_token: str | Secret | None = None,
        app_id: str | None = None,
        base_url: str | None = None,
        console_base_url: str | None = None,
        iam_base_url: str | None = None,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
        retry_policy: RetryPolicy | None = None,
        default_settings: ChatSettings | None = None,
    ) -> None:
        self._qianfan = import_qianfan()
        self.provider = "qianfan"
        self.version = int(version)
        if self.version not in (1, 2):
            raise ConfigError(f"qianfan version must be 1 or 2, got {version!r}.")
        self.model = model or ("ERNIE-3.5-8K" if self.version == 1 else "ernie-3.5-8k")
        self.endpoint = endpoint
        self.app_id = app_id or os.environ.get("QIANFAN_APP_ID")
        wanted: dict[str, str | None] = {
            "BASE_URL": base_url,
            "CONSOLE_API_BASE_URL": console_base_url,
            "IAM_BASE_URL": iam_base_url,
            "ACCESS_TOKEN": reveal(access_token),
            "AK": reveal(ak),
            "SK": reveal(sk),
            "BEARER_TOKEN": reveal(bearer_token),
        }
        for name, value in wanted.items():
            if value and name in _SECRET_FIELDS:
                # Remember keys for redaction; not URLs, which would then vanish from every log
                # line and error message of every other backend too.
                as_secret(value)
        self._claim({k: v for k, v in wanted.items() if v})
        self._check_credentials()
        base = ernie_limits(self.model)
        if self.version == 2:  # V2 takes a system message; ERNIE models still want alternation
            base = replace(base, roles=RoleRules(system="message", alternate=True, odd_count=True))
        self.limits = limits or base
        self.counter = counter or CharCounter()
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if default_settings is not None:
            self.default_settings = default_settings
        install_log_redaction()
        kwargs: dict[str, Any] = {"version": str(self.version)}
        if self.version == 2 and self.app_id:
            kwargs["app_id"] = self.app_id
        self._resource = self._qianfan.ChatCompletion(**kwargs)

    def _claim(self, wanted: dict[str, str]) -> None:
        config = self._qianfan.get_config()
        with _claims_lock:
            for name, value in wanted.items():
                claimed = _claims.get(name)
                if claimed is not None and claimed != value:
                    shown = "a different key" if name in _SECRET_FIELDS else repr(claimed)
                    raise ConfigError(
                        f"qianfan's {name} is process-wide and another chatocr model already set it to {shown}.",
                        hint="The qianfan SDK cannot hold two configurations in one process: use one "
                        "configuration, or the `qianfan-openai` provider (per-instance settings) "
                        "for the other.",
                    )
            for name, value in wanted.items():
                setattr(config, name, value)
                _claims[name] = value

    def _check_credentials(self) -> None:
        config = self._qianfan.get_config()
        if self.version == 2:
            ok = bool(config.BEARER_TOKEN or (config.ACCESS_KEY and config.SECRET_KEY))
            needed = "bearer_token=... or QIANFAN_BEARER_TOKEN (or QIANFAN_ACCESS_KEY/QIANFAN_SECRET_KEY)"
        else:
            ok = bool(config.ACCESS_TOKEN or (config.AK and config.SK) or (config.ACCESS_KEY and config.SECRET_KEY))
            needed = "access_token=..., ak=/sk=, or QIANFAN_ACCESS_TOKEN / QIANFAN_AK and QIANFAN_SK"
        if not ok:
            raise AuthenticationError(
                f"No credentials for qianfan V{self.version}.", hint=f"Pass {needed}.", provider=self.provider
            )

    def _repr_fields(self) -> dict[str, object]:
        return {"version": self.version, "base_url": self._qianfan.get_config().BASE_URL}

    def build_request(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        """Keyword arguments for `ChatCompletion.do`."""
        request: dict[str, Any] = {
            "retry_count": 1,  # one attempt: ChatModel.chat owns retries
            "request_timeout": settings.timeout,
            **ernie_sampling(settings, max_output_key="max_output_tokens" if self.version == 1 else None),
        }
        if self.version == 1:
            payload = to_ernie_payload(messages)
            request["messages"] = payload.messages
            if payload.system:
                request["system"] = payload.system
            if self.endpoint:
                request["endpoint"] = self.endpoint
            else:
                request["model"] = self.model
            if settings.json_mode is not None:
                request["response_format"] = "json_object"
        else:
            request["messages"] = [_wire_message(m) for m in messages]
            request["model"] = self.model
            if settings.max_output_tokens is not None:
                request["max_tokens"] = settings.max_output_tokens
            if settings.json_mode is not None:
                request["response_format"] = {"type": "json_object"}
            if settings.seed is not None:
                request["seed"] = settings.seed
        return request

    def _send(self, request: dict[str, Any], settings: ChatSettings, on_delta: DeltaCallback | None) -> ChatReply:
        import requests

        errors = self._qianfan.errors
        try:
            response = self._resource.do(**request)
        except errors.AccessTokenExpiredError as exc:
            raise AuthenticationError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
        except errors.APIError as exc:
            raise _api_error(exc, self.provider) from None
        except errors.RequestError as exc:
            status = getattr(exc, "status_code", None) or 0
            headers = getattr(exc, "headers", None) or {}
            if not status or 200 <= int(status) < 300:  # e.g. "Got invalid json response from server"
                raise MalformedResponseError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
            if int(status) == 400 and mentions_context_limit(redact(str(exc))):  # V2: OpenAI-style 400
                raise ContextTooLongError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
            raise map_http_status(
                int(status), f"qianfan: {short_error(exc)}", self.provider, retry_after_seconds(headers)
            ) from None
        except (errors.RequestTimeoutError, requests.Timeout) as exc:
            raise LLMTimeoutError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
        except errors.InvalidArgumentError as exc:
            raise InvalidRequestError(
                f"qianfan refused the arguments: {short_error(exc)}", provider=self.provider
            ) from None
        except ValueError as exc:  # a body that is not JSON
            raise MalformedResponseError(f"qianfan: {short_error(exc)}", provider=self.provider) from None
        return self._parse(response)

    def _parse(self, response: Any) -> ChatReply:
        body = getattr(response, "body", None)
        if not isinstance(body, dict):
            raise MalformedResponseError("qianfan answered without a JSON body.", provider=self.provider)
        usage = body.get("usage") or {}
        if self.version == 1:
            text = body.get("result")
            finish = body.get("finish_reason")
            truncated = bool(body.get("is_truncated")) or finish == "length"
        else:
            choices = body.get("choices") or [{}]
            text = (choices[0].get("message") or {}).get("content")
            finish = choices[0].get("finish_reason")
            truncated = finish == "length"
        if not isinstance(text, str):
            raise MalformedResponseError("qianfan answered without text.", provider=self.provider)
        return ChatReply(
            text=text,
            finish_reason=finish,
            truncated=truncated,
            usage=Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")),
            model=str(body.get("model") or ""),
            raw=body,
        )


def _api_error(exc: Any, provider: str) -> LLMError:
    code: Any = getattr(exc, "error_code", None)
    message = redact(str(getattr(exc, "error_msg", "") or exc))
    try:
        number = int(code)
    except (TypeError, ValueError):
        # V2 reports string codes in an `error` object.
        return InvalidRequestError(f"qianfan error {code}: {message}", provider=provider)
    return error_for_code(number, message, provider=provider)
