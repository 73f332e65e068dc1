"""The real erniebot SDK against the fake ERNIE server on 127.0.0.1 (per-call `_config_`)."""

from __future__ import annotations

import logging

import pytest

from chatocr.errors import (
    AuthenticationError,
    ConfigError,
    ContextTooLongError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm import ChatSettings, RetryPolicy, get_chat_model
from chatocr.llm.erniebot_backend import ErnieBotChatModel
from chatocr.messages import Message
from tests.fakes.llm_server import Drop, ErrorCode, FakeLLMServer, Raw, Reply

pytestmark = pytest.mark.usefixtures("no_llm_env")

CONVERSATION = [
    Message("system", "Extract the fields as JSON."),
    Message("user", "Receipt: TOTAL 9.90"),
    Message("assistant", '{"total": "9.90"}'),
    Message("user", "Receipt: TOTAL 12.00"),
    Message("user", "Keys: total"),  # merged with the previous user message
]
ONE_TRY = RetryPolicy(max_attempts=1)


def ernie(server: FakeLLMServer, **options: object) -> ErnieBotChatModel:
    options.setdefault("access_token", server.access_token)
    options.setdefault("retry_policy", ONE_TRY)
    model = get_chat_model("ernie:ernie-3.5", base_url=server.url, **options)
    assert isinstance(model, ErnieBotChatModel)
    return model


def test_v1_request_and_reply(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "12.00"}', prompt_tokens=40, completion_tokens=9))
    reply = ernie(server).chat_sync(CONVERSATION, ChatSettings(json_mode="object", max_output_tokens=100, top_p=0.5))

    sent = server.last
    assert sent.route == "ernie-v1"
    assert sent.path == "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions"
    assert sent.query == {"access_token": server.access_token}
    assert sent.body["system"] == "Extract the fields as JSON."
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "user"]
    assert sent.body["messages"][2]["content"] == "Receipt: TOTAL 12.00\n\nKeys: total"
    assert sent.body["response_format"] == "json_object"
    assert sent.body["max_output_tokens"] == 100
    assert sent.body["top_p"] == 0.5
    assert 0 < sent.body["temperature"] <= 1

    assert reply.text == '{"total": "12.00"}'
    assert reply.usage.prompt_tokens == 40 and reply.usage.completion_tokens == 9
    assert reply.finish_reason == "normal" and not reply.truncated
    assert reply.provider == "ernie" and reply.model == "ernie-3.5"


def test_model_names_map_to_their_paths(server: FakeLLMServer) -> None:
    get_chat_model("ernie:ernie-4.0", base_url=server.url, access_token=server.access_token).chat_sync(
        [Message("user", "hi")]
    )
    assert server.last.path.endswith("/chat/completions_pro")
    get_chat_model("ernie:ernie-speed", base_url=server.url, access_token=server.access_token).chat_sync(
        [Message("user", "hi")], ChatSettings(json_mode="object")
    )
    assert server.last.path.endswith("/chat/ernie_speed")
    assert "response_format" not in server.last.body  # erniebot refuses it for ernie-speed


def test_aistudio_api_type(server: FakeLLMServer) -> None:
    server.enqueue(Reply("hello"))
    model = ernie(server, api_type="aistudio", model=None)
    reply = model.chat_sync([Message("user", "hi")])
    sent = server.last
    assert sent.route == "aistudio-v1"
    assert sent.path == "/llm/lmapi/v1/chat/completions"
    assert sent.headers["authorization"] == f"token {server.access_token}"
    assert "access_token" not in sent.query
    assert reply.text == "hello"


def test_aistudio_error_codes_are_mapped(server: FakeLLMServer) -> None:
    server.enqueue(ErrorCode(336007))
    with pytest.raises(ContextTooLongError):
        ernie(server, api_type="aistudio").chat_sync([Message("user", "x" * 10)])


def test_the_fake_enforces_ernie_rules_on_the_raw_sdk(server: FakeLLMServer) -> None:
    """What a wrong adapter would get: the SDK sends a system role and an even count as is."""
    import erniebot
    import erniebot.errors

    with pytest.raises(erniebot.errors.BadRequestError) as info:
        erniebot.ChatCompletion.create(
            model="ernie-3.5",
            messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            _config_={
                "api_type": "qianfan",
                "access_token": server.access_token,
                "api_base_url": server.url + "/rpc/2.0/ai_custom/v1/wenxinworkshop",
            },
        )
    assert info.value.ecode == 336006


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (18, RateLimitError),
        (17, RateLimitError),
        (110, AuthenticationError),
        (111, AuthenticationError),
        (336002, InvalidRequestError),
        (336006, InvalidRequestError),
        (336102, InvalidRequestError),
        (336007, ContextTooLongError),
        (336103, ContextTooLongError),
        (336100, ServiceUnavailableError),
        (336501, ServiceUnavailableError),
    ],
)
def test_error_codes(server: FakeLLMServer, code: int, expected: type[Exception]) -> None:
    server.enqueue(ErrorCode(code))
    with pytest.raises(expected) as info:
        ernie(server).chat_sync([Message("user", "hi")])
    assert str(code) in str(info.value)
    assert server.access_token not in str(info.value)


def test_wrong_token_is_an_authentication_error(server: FakeLLMServer) -> None:
    with pytest.raises(AuthenticationError):
        ernie(server, access_token="wrong-token-value").chat_sync([Message("user", "hi")])


def test_rate_limit_is_retried_by_our_loop(server: FakeLLMServer) -> None:
    server.enqueue(ErrorCode(18), ErrorCode(336100), Reply("ok"))
    model = ernie(server, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0.01))
    reply = model.chat_sync([Message("user", "hi")])
    assert reply.text == "ok" and reply.attempts == 3
    assert len(server.chat_requests()) == 3  # the SDK itself did not retry


@pytest.mark.parametrize(
    "behaviour",
    [Raw(b'{"result": "trunc'), Raw(b"<html>oops</html>", content_type="text/html"), Raw(b'{"id": "no result"}')],
)
def test_truncated_or_foreign_bodies(server: FakeLLMServer, behaviour: Raw) -> None:
    server.enqueue(behaviour)
    with pytest.raises(MalformedResponseError):
        ernie(server).chat_sync([Message("user", "hi")])


def test_dropped_connection(server: FakeLLMServer) -> None:
    server.enqueue(Drop())
    with pytest.raises(ServiceUnavailableError):
        ernie(server).chat_sync([Message("user", "hi")])


def test_truncated_answer_is_flagged(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "1', truncated=True))
    reply = ernie(server).chat_sync([Message("user", "hi")])
    assert reply.truncated and reply.finish_reason == "length"


def test_refused_port_never_leaks_the_token_and_never_touches_globals() -> None:
    import erniebot

    token = "secret-token-abcdef"
    before = erniebot.GlobalConfig().create_dict()
    model = get_chat_model("ernie", base_url="http://127.0.0.1:9", access_token=token, retry_policy=ONE_TRY)
    with pytest.raises(ServiceUnavailableError) as info:
        model.chat_sync([Message("user", "hi")])
    assert token not in str(info.value)
    assert token not in repr(model) and token not in str(model)
    assert erniebot.GlobalConfig().create_dict() == before


def test_debug_logs_are_redacted(server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    token = "another-secret-token-42"
    server.access_token, saved = token, server.access_token
    logger = logging.getLogger("erniebot")
    old_propagate = logger.propagate
    logger.propagate = True
    try:
        with caplog.at_level(logging.DEBUG, logger="erniebot"):
            ernie(server, access_token=token).chat_sync([Message("user", "hi")])
    finally:
        logger.propagate = old_propagate
        server.access_token = saved
    assert "URL: http://127.0.0.1" in caplog.text  # erniebot logged the request...
    assert token not in caplog.text  # ...without the token
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="erniebot"):
        logger.propagate = True
        try:
            logger.debug("Headers: %r", {"Authorization": f"token {token}"})
        finally:
            logger.propagate = old_propagate
    assert "token ***" in caplog.text and token not in caplog.text


def test_missing_credentials_and_bad_options(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthenticationError, match="EB_ACCESS_TOKEN"):
        get_chat_model("ernie:ernie-3.5")
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        get_chat_model("ernie", access_token="t" * 8, base_url="http://localhost:1234")
    with pytest.raises(ConfigError):
        get_chat_model("ernie", access_token="t" * 8, api_type="yinian")
    monkeypatch.setenv("AISTUDIO_ACCESS_TOKEN", "from-the-environment")
    model = get_chat_model("ernie", api_type="aistudio")
    assert model.limits.roles.system == "field"
