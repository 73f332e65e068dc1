"""Token log-probabilities from OpenAI-compatible services: the real openai SDK against the fake
wire-format server, whole answers and streamed, with a Chinese character split over two tokens,
a preset that does not offer them, and a service that refuses them."""

from __future__ import annotations

import pytest

from chatocr.llm import ChatSettings, RetryPolicy, get_chat_model
from chatocr.llm.openai_backend import OpenAIChatModel, preset_model_class
from chatocr.messages import Message
from tests.fakes.llm_server import FakeLLMServer, Reply, Status

pytestmark = pytest.mark.usefixtures("no_llm_env")

ASK = [Message("user", "Receipt: TOTAL 9.00")]
WITH_LOGPROBS = ChatSettings(json_mode="object", logprobs=True)
# "中" is three UTF-8 bytes; the service's tokenizer splits it over two tokens.
ZH = '{"total": "中9.00"}'
ZH_TOKENS: list[tuple[str | bytes, float]] = [
    ('{"', -0.001),
    ("total", -0.002),
    ('": "', -0.003),
    (b"\xe4\xb8", -0.9),
    (b"\xad", -0.05),
    ("9", -0.2),
    (".00", -0.01),
    ('"}', -0.0001),
]


def _model(server: FakeLLMServer, spec: str = "openai:gpt-4o-mini") -> OpenAIChatModel:
    chat = get_chat_model(
        spec, base_url=server.url + "/v1", api_key=server.bearer_key, retry_policy=RetryPolicy(max_attempts=1)
    )
    assert isinstance(chat, OpenAIChatModel)
    return chat


def test_logprobs_are_asked_for_and_returned(server: FakeLLMServer) -> None:
    server.enqueue(Reply(ZH, tokens=ZH_TOKENS))
    reply = _model(server).chat_sync(ASK, WITH_LOGPROBS)
    assert server.last.body["logprobs"] is True and server.last.body["top_logprobs"] == 0
    assert reply.token_logprobs is not None
    texts = [text for text, _ in reply.token_logprobs]
    assert "".join(texts).encode("utf-8", "surrogateescape").decode("utf-8") == reply.text == ZH
    assert [lp for _, lp in reply.token_logprobs] == [lp for _, lp in ZH_TOKENS]
    assert texts[3] == "\udce4\udcb8"  # the character's first two bytes, kept as bytes


def test_streamed_answers_carry_their_logprobs(server: FakeLLMServer) -> None:
    server.enqueue(Reply(ZH, tokens=ZH_TOKENS))
    pieces: list[str] = []
    reply = _model(server).chat_sync(ASK, WITH_LOGPROBS, on_delta=pieces.append)
    assert server.last.body["stream"] is True and server.last.body["logprobs"] is True
    assert "".join(pieces) == reply.text == ZH
    assert reply.token_logprobs is not None and len(reply.token_logprobs) == len(ZH_TOKENS)


def test_not_asked_means_not_sent_and_none_back(server: FakeLLMServer) -> None:
    server.enqueue(Reply('{"total": "9.00"}'))
    reply = _model(server).chat_sync(ASK, ChatSettings(json_mode="object"))
    assert "logprobs" not in server.last.body and "top_logprobs" not in server.last.body
    assert reply.token_logprobs is None


def test_a_preset_without_logprobs_is_not_asked(server: FakeLLMServer) -> None:
    assert preset_model_class("moonshot").supports_logprobs is False
    assert preset_model_class("deepseek").supports_logprobs is True
    server.enqueue(Reply('{"total": "9.00"}'))
    reply = _model(server, "moonshot:moonshot-v1-8k").chat_sync(ASK, WITH_LOGPROBS)
    assert "logprobs" not in server.last.body
    assert reply.token_logprobs is None and reply.text == '{"total": "9.00"}'


def test_a_service_that_refuses_logprobs_is_asked_again_without(server: FakeLLMServer) -> None:
    refusal = {"error": {"message": "logprobs is not supported for this model", "type": "invalid_request_error"}}
    server.enqueue(Status(400, refusal), Reply('{"total": "9.00"}'), Reply('{"total": "9.10"}'))
    model = _model(server)
    reply = model.chat_sync(ASK, WITH_LOGPROBS)
    first, second = server.chat_requests()
    assert first.body["logprobs"] is True and "logprobs" not in second.body and "top_logprobs" not in second.body
    assert reply.text == '{"total": "9.00"}' and reply.token_logprobs is None
    model.chat_sync(ASK, WITH_LOGPROBS)  # remembered: not asked again
    assert "logprobs" not in server.last.body


def test_another_bad_request_is_still_an_error(server: FakeLLMServer) -> None:
    from chatocr.errors import InvalidRequestError

    server.enqueue(Status(400, {"error": {"message": "messages must not be empty", "type": "invalid_request_error"}}))
    with pytest.raises(InvalidRequestError):
        _model(server).chat_sync(ASK, WITH_LOGPROBS)
    assert len(server.chat_requests()) == 1
