"""The real openai SDK against the fake OpenAI-format server, through each preset."""

from __future__ import annotations

import asyncio

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
from chatocr.llm import PRESETS, ChatReply, ChatSettings, RetryPolicy, get_chat_model
from chatocr.llm.openai_backend import OpenAIChatModel
from chatocr.messages import ImagePart, Message
from tests.fakes.llm_server import Drop, ErrorCode, FakeLLMServer, Raw, Reply, Status

pytestmark = pytest.mark.usefixtures("no_llm_env")

ONE_TRY = RetryPolicy(max_attempts=1)
SCHEMA = {"type": "object", "properties": {"total": {"type": "string"}}, "required": ["total"]}
CONVERSATION = [
    Message("system", "Extract JSON."),
    Message("user", "Receipt: TOTAL 9.90"),
    Message("assistant", '{"total": "9.90"}'),
    Message("user", "Receipt: TOTAL 12.00"),
]


def model(server: FakeLLMServer, spec: str = "openai:gpt-4o-mini", **options: object) -> OpenAIChatModel:
    options.setdefault("api_key", server.bearer_key)
    options.setdefault("retry_policy", ONE_TRY)
    chat = get_chat_model(spec, base_url=server.url + "/v1", **options)
    assert isinstance(chat, OpenAIChatModel)
    return chat


def test_request_and_reply(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "12.00"}', prompt_tokens=30, completion_tokens=6))
    settings = ChatSettings(json_mode=SCHEMA, max_output_tokens=64, stop=("\n\n",), seed=7, top_p=0.9)
    reply = model(server).chat_sync(CONVERSATION, settings)

    sent = server.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {server.bearer_key}"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"][0] == {"role": "system", "content": "Extract JSON."}
    assert len(sent.body["messages"]) == 4
    assert sent.body["max_tokens"] == 64 and sent.body["stop"] == ["\n\n"] and sent.body["seed"] == 7
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False},
    }
    assert reply.text == '{"total": "12.00"}'
    assert reply.usage.total_tokens == 36 and reply.finish_reason == "stop"
    assert reply.provider == "openai" and reply.model == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("llamacpp", {"type": "json_object", "schema": SCHEMA}),  # llama.cpp refuses json_schema
        ("dashscope:qwen-plus", {"type": "json_object"}),
        ("qianfan-openai:ernie-4.0-8k", {"type": "json_object"}),
    ],
)
def test_schema_styles(server: FakeLLMServer, spec: str, expected: dict[str, object]) -> None:
    model(server, spec).chat_sync([Message("user", "hi")], ChatSettings(json_mode=SCHEMA))
    assert server.last.body["response_format"] == expected


def test_plain_json_object_and_free_text(server: FakeLLMServer) -> None:
    chat = model(server)
    chat.chat_sync([Message("user", "hi")], ChatSettings(json_mode="object"))
    assert server.last.body["response_format"] == {"type": "json_object"}
    chat.chat_sync([Message("user", "hi")])
    assert "response_format" not in server.last.body


def test_images_go_as_data_urls(server: FakeLLMServer) -> None:
    image = ImagePart(b"\x89PNG fake", "image/png")
    model(server, "dashscope:qwen-vl-max").chat_sync([Message("user", "Read this", images=(image,))])
    content = server.last.body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Read this"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"] == image.data_url()


def test_qianfan_v2_preset_sends_appid(server: FakeLLMServer) -> None:
    chat = get_chat_model(
        "qianfan-openai:ernie-4.0-8k", base_url=server.url + "/v2", api_key=server.bearer_key, appid="app-123"
    )
    chat.chat_sync([Message("user", "hi")])
    assert server.last.path == "/v2/chat/completions"
    assert server.last.headers["appid"] == "app-123"
    assert chat.limits.max_input_chars == 20000  # ERNIE limits, counted in characters
    assert chat.counter.count("增值税") == 3


def test_aistudio_v3_preset_from_environment(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISTUDIO_ACCESS_TOKEN", server.bearer_key)
    monkeypatch.setenv("AISTUDIO_BASE_URL", server.url + "/llm/lmapi/v3")
    chat = get_chat_model("aistudio")
    assert chat.model == "ernie-3.5-8k"
    chat.chat_sync([Message("user", "hi")])
    assert server.last.path == "/llm/lmapi/v3/chat/completions"
    assert server.last.headers["authorization"] == f"Bearer {server.bearer_key}"


def test_every_preset_has_a_working_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for preset in PRESETS.values():
        for env in preset.key_envs:
            monkeypatch.setenv(env, "k" * 10)
    for name, preset in PRESETS.items():
        spec = "qianfan-openai" if name == "qianfan" else name
        chat = get_chat_model(spec if preset.default_model else f"{spec}:some-model")
        assert chat.limits.input_token_budget() or chat.limits.max_input_chars
        assert chat.counter.count("abc") > 0
        assert chat.base_url == preset.base_url.rstrip("/")  # type: ignore[attr-defined]


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(AuthenticationError, match="DEEPSEEK_API_KEY"):
        get_chat_model("deepseek")
    get_chat_model("ollama")  # local servers need no key
    with pytest.raises(ConfigError, match="no default model"):
        get_chat_model("vllm")
    with pytest.raises(ConfigError, match="preset"):
        get_chat_model("openai", preset="nope", api_key="k" * 10)


def test_wrong_key_is_authentication_error(server: FakeLLMServer) -> None:
    with pytest.raises(AuthenticationError) as info:
        model(server, api_key="wrong-key-123456").chat_sync([Message("user", "hi")])
    assert "wrong-key-123456" not in str(info.value)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (18, RateLimitError),
        (336007, ContextTooLongError),
        (336103, ContextTooLongError),
        (336100, ServiceUnavailableError),
        (336006, InvalidRequestError),
        (110, AuthenticationError),
    ],
)
def test_error_statuses(server: FakeLLMServer, code: int, expected: type[Exception]) -> None:
    server.enqueue(ErrorCode(code))
    with pytest.raises(expected):
        model(server).chat_sync([Message("user", "hi")])


def test_insufficient_quota_is_not_retried(server: FakeLLMServer) -> None:
    server.enqueue(Status(429, {"error": {"message": "quota", "type": "x", "code": "insufficient_quota"}}))
    chat = model(server, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0))
    with pytest.raises(RateLimitError):
        chat.chat_sync([Message("user", "hi")])
    assert len(server.chat_requests()) == 1


def test_404_names_the_model_problem(server: FakeLLMServer) -> None:
    server.enqueue(Status(404, {"error": {"message": "model not found"}}))
    with pytest.raises(InvalidRequestError, match="model not found"):
        model(server).chat_sync([Message("user", "hi")])


@pytest.mark.parametrize(
    "behaviour",
    [
        Raw(b'{"id": "x", "choices": [{"message": {"content": "trunc'),
        Raw(b'{"id": "x", "object": "chat.completion", "choices": []}'),
        Raw(b"not json at all", content_type="text/plain"),
    ],
)
def test_malformed_bodies(server: FakeLLMServer, behaviour: Raw) -> None:
    server.enqueue(behaviour)
    with pytest.raises(MalformedResponseError):
        model(server).chat_sync([Message("user", "hi")])


def test_dropped_connection_and_refused_port(server: FakeLLMServer) -> None:
    server.enqueue(Drop())
    with pytest.raises(ServiceUnavailableError):
        model(server).chat_sync([Message("user", "hi")])
    chat = get_chat_model("openai", base_url="http://127.0.0.1:9/v1", api_key="sk-secret-999999", retry_policy=ONE_TRY)
    with pytest.raises(ServiceUnavailableError) as info:
        chat.chat_sync([Message("user", "hi")])
    assert "sk-secret-999999" not in str(info.value)
    assert "sk-secret-999999" not in repr(chat)


def test_length_finish_is_truncated(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"a": "b', finish_reason="length"))
    assert model(server).chat_sync([Message("user", "hi")]).truncated


# ---- streaming ----------------------------------------------------------------------------------


def test_streaming_delivers_pieces_as_they_arrive(server: FakeLLMServer) -> None:
    answer = '{"total": "12.00", "store": "GOLDEN BAKERY"}'
    server.enqueue(Reply(answer, prompt_tokens=30, chunk_delay=0.05))
    chat = model(server)
    pieces: list[str] = []

    async def run() -> tuple[bool, ChatReply]:
        task = asyncio.create_task(chat.chat(CONVERSATION, on_delta=pieces.append))
        while not pieces and not task.done():
            await asyncio.sleep(0.005)
        early = not task.done()  # a piece arrived while the answer was still streaming
        return early, await task

    early, reply = asyncio.run(run())
    assert early and len(pieces) == 5 and "".join(pieces) == reply.text == answer
    assert reply.usage.prompt_tokens == 30 and reply.finish_reason == "stop" and reply.model == "gpt-4o-mini"
    assert server.last.body["stream"] is True and server.last.body["stream_options"] == {"include_usage": True}


def test_a_cancelled_stream_stops_and_the_model_stays_usable(server: FakeLLMServer) -> None:
    server.enqueue(Reply(" ".join(["word"] * 40), chunk_delay=0.1), Reply("next"))
    chat = model(server)
    pieces: list[str] = []

    async def run() -> str:
        task = asyncio.create_task(chat.chat([Message("user", "hi")], on_delta=pieces.append))
        while not pieces:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return (await chat.chat([Message("user", "again")])).text

    assert asyncio.run(run()) == "next"
    assert 1 <= len(pieces) < 40


def test_a_failing_stream_is_mapped_like_any_call(server: FakeLLMServer) -> None:
    server.enqueue(Status(503, {"error": {"message": "overloaded"}}))
    with pytest.raises(ServiceUnavailableError):
        model(server).chat_sync([Message("user", "hi")], on_delta=lambda piece: None)
