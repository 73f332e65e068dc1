"""chatocr.llm.testing.ScriptedTransport: the openai backend with the real SDK and no server."""

from __future__ import annotations

import httpx2
import pytest

from chatocr.errors import AuthenticationError, LLMTimeoutError, RateLimitError
from chatocr.llm import RetryPolicy, get_chat_model
from chatocr.llm.testing import ScriptedTransport
from chatocr.messages import Message

pytestmark = pytest.mark.usefixtures("no_llm_env")
HI = [Message("system", "Be brief."), Message("user", "hi")]


def test_answers_retries_and_records_through_the_real_sdk() -> None:
    transport = ScriptedTransport([(429, {"Retry-After": "0"}), '{"total": "9.90"}'])
    chat = get_chat_model("dashscope", api_key="test-key", http_client=transport.client())
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    chat._sleep = sleep  # type: ignore[method-assign]
    reply = chat.chat_sync(HI)
    assert reply.text == '{"total": "9.90"}' and reply.attempts == 2 and len(delays) == 1
    assert reply.provider == "dashscope" and reply.usage.completion_tokens == len(reply.text)
    assert [body["model"] for body in transport.requests] == ["qwen-plus", "qwen-plus"]
    assert transport.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_statuses_and_transport_errors_map_to_our_errors() -> None:
    one_try = RetryPolicy(max_attempts=1)
    for item, error in [
        (401, AuthenticationError),
        ((429, {"Retry-After": "5"}), RateLimitError),
        (httpx2.ReadTimeout("scripted"), LLMTimeoutError),
    ]:
        transport = ScriptedTransport([item])
        chat = get_chat_model("openai", api_key="test-key", http_client=transport.client(), retry_policy=one_try)
        with pytest.raises(error):
            chat.chat_sync(HI)


def test_streams_word_by_word() -> None:
    transport = ScriptedTransport(["one two three"])
    chat = get_chat_model("openai", api_key="test-key", http_client=transport.client())
    pieces: list[str] = []
    reply = chat.chat_sync(HI, on_delta=pieces.append)
    assert pieces == ["one ", "two ", "three"] and reply.text == "one two three"
    assert transport.requests[0]["stream"] is True
