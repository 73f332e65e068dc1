"""The real qianfan SDK against the fake server: V1 (ERNIE native) and V2 (OpenAI format).

qianfan's configuration is process-wide, so every in-process test here points it at the session's
one fake server with the same credentials; the OAuth (AK/SK) flow and the import-order trap run
in fresh subprocesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatocr.errors import (
    AuthenticationError,
    ConfigError,
    ContextTooLongError,
    InvalidRequestError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm import ChatSettings, RetryPolicy, get_chat_model
from chatocr.llm.qianfan_backend import QianfanChatModel
from chatocr.messages import Message
from tests.fakes.llm_server import ErrorCode, FakeLLMServer, Reply, Status

pytestmark = pytest.mark.usefixtures("no_llm_env")

REPO = Path(__file__).resolve().parents[2]
ONE_TRY = RetryPolicy(max_attempts=1)
CONVERSATION = [
    Message("system", "Extract JSON."),
    Message("user", "Receipt: TOTAL 9.90"),
    Message("assistant", '{"total": "9.90"}'),
    Message("user", "Receipt: TOTAL 12.00"),
]


def v1(server: FakeLLMServer, model: str = "ERNIE-3.5-8K", **options: object) -> QianfanChatModel:
    options.setdefault("retry_policy", ONE_TRY)
    chat = get_chat_model(
        f"qianfan:{model}",
        base_url=server.url,
        console_base_url=server.url,
        access_token=server.access_token,
        **options,
    )
    assert isinstance(chat, QianfanChatModel)
    return chat


def v2(server: FakeLLMServer, **options: object) -> QianfanChatModel:
    options.setdefault("retry_policy", ONE_TRY)
    chat = get_chat_model(
        "qianfan:ernie-4.0-8k",
        version=2,
        base_url=server.url,
        console_base_url=server.url,
        bearer_token=server.bearer_key,
        **options,
    )
    assert isinstance(chat, QianfanChatModel)
    return chat


def test_v1_request_and_reply(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "12.00"}', prompt_tokens=21, completion_tokens=5))
    reply = v1(server).chat_sync(CONVERSATION, ChatSettings(json_mode="object", max_output_tokens=50))
    sent = server.last
    assert sent.path == "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions"
    assert sent.query == {"access_token": server.access_token}
    assert sent.body["system"] == "Extract JSON."
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "user"]
    assert sent.body["response_format"] == "json_object" and sent.body["max_output_tokens"] == 50
    assert sent.body["stream"] is False
    assert reply.text == '{"total": "12.00"}' and reply.usage.total_tokens == 26
    assert reply.provider == "qianfan"


def test_v1_model_names_and_endpoints(server: FakeLLMServer) -> None:
    v1(server, "ERNIE-Speed-8K").chat_sync([Message("user", "hi")])
    assert server.last.path.endswith("/chat/ernie_speed")
    v1(server, "custom", endpoint="my_endpoint").chat_sync([Message("user", "hi")])
    assert server.last.path.endswith("/chat/my_endpoint")


def test_v2_request_and_reply(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "12.00"}'))
    reply = v2(server, app_id="app-7").chat_sync(CONVERSATION, ChatSettings(json_mode="object"))
    sent = server.last
    assert sent.path == "/v2/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {server.bearer_key}"
    assert sent.headers["appid"] == "app-7"
    assert sent.body["model"] == "ernie-4.0-8k"
    assert sent.body["messages"][0] == {"role": "system", "content": "Extract JSON."}
    assert sent.body["response_format"] == {"type": "json_object"}
    assert reply.text == '{"total": "12.00"}' and reply.finish_reason == "stop"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (18, RateLimitError),
        (17, RateLimitError),
        (110, AuthenticationError),
        (111, AuthenticationError),
        (336006, InvalidRequestError),
        (336007, ContextTooLongError),
        (336103, ContextTooLongError),
        (336100, ServiceUnavailableError),
    ],
)
def test_v1_error_codes(server: FakeLLMServer, code: int, expected: type[Exception]) -> None:
    server.enqueue(*[ErrorCode(code)] * 3)
    with pytest.raises(expected):
        v1(server).chat_sync([Message("user", "hi")])
    # retry_count=1: the SDK did not retry, except that on 110/111 it refreshes the token and
    # re-sends once (its token logic, which cannot be switched off).
    assert len(server.chat_requests()) == (2 if code in (110, 111) else 1)


def test_v2_error_body(server: FakeLLMServer) -> None:
    server.enqueue(Status(200, {"error": {"code": "invalid_argument", "message": "bad model"}, "id": "x"}))
    with pytest.raises(InvalidRequestError):
        v2(server).chat_sync([Message("user", "hi")])


def test_a_differently_configured_second_instance_fails_loudly(server: FakeLLMServer) -> None:
    v1(server)
    v2(server)  # a bearer key next to a V1 token: compatible, shared
    with pytest.raises(ConfigError, match="process-wide"):
        get_chat_model("qianfan", base_url="http://127.0.0.1:9", access_token=server.access_token)
    with pytest.raises(ConfigError, match="a different key") as info:
        get_chat_model("qianfan", base_url=server.url, access_token="someone-elses-token")
    assert "someone-elses-token" not in str(info.value)
    v1(server).chat_sync([Message("user", "still works")])
    assert server.last.query == {"access_token": server.access_token}


def test_repr_hides_credentials(server: FakeLLMServer) -> None:
    chat = v1(server)
    assert server.access_token not in repr(chat)
    assert "qianfan:ERNIE-3.5-8K" in repr(chat)


# The autouse network guard does not reach subprocesses: they install their own.
_GUARD = """
import socket
_real = socket.getaddrinfo
def _guard(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", None):
        raise RuntimeError(f"network access to {host!r} in a test subprocess")
    return _real(host, *args, **kwargs)
socket.getaddrinfo = _guard
"""


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _GUARD + textwrap.dedent(code)],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_v1_oauth_with_ak_sk_in_a_fresh_process(server: FakeLLMServer) -> None:
    result = _run(
        f"""
        from chatocr.llm import get_chat_model
        from chatocr.messages import Message
        model = get_chat_model("qianfan:ERNIE-3.5-8K", base_url="{server.url}",
                               ak="{server.ak}", sk="{server.sk}")
        print(model.chat_sync([Message("user", "hi")]).text)
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"ok": true}'
    oauth = [r for r in server.requests if r.route == "oauth"]
    assert oauth and oauth[0].query["client_id"] == server.ak
    assert server.last.query == {"access_token": server.access_token}


def test_pandas_still_imports_after_the_qianfan_backend_was_used(server: FakeLLMServer) -> None:
    pytest.importorskip("pandas")
    result = _run(
        f"""
        from chatocr.llm import get_chat_model
        from chatocr.messages import Message
        model = get_chat_model("qianfan", base_url="{server.url}", access_token="{server.access_token}")
        model.chat_sync([Message("user", "hi")])
        import pandas
        print(pandas.__version__)
        """,
        {},
    )
    assert result.returncode == 0, result.stderr


def test_base_urls_are_not_treated_as_secrets(server: FakeLLMServer) -> None:
    # They were registered for redaction with the keys, so every later log line and error of any
    # backend showed "***" where the server's address belongs.
    from chatocr.llm import redact

    v1(server)
    assert redact(f"POST {server.url}/v1/chat") == f"POST {server.url}/v1/chat"
    assert server.access_token not in redact(f"token {server.access_token}")
