"""The chat core: settings, replies, and the retry loop every backend shares."""

from __future__ import annotations

import asyncio

import pytest

from chatocr.errors import (
    AuthenticationError,
    ConfigError,
    ContextTooLongError,
    InvalidRequestError,
    LLMTimeoutError,
    MalformedResponseError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm import ChatReply, ChatSettings, RetryPolicy, ScriptedChatModel, Usage
from chatocr.messages import Message

USER = [Message("user", "hello")]


def recording(model: ScriptedChatModel) -> list[float]:
    """Replace the model's sleep with one that records the requested delays."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    model._sleep = sleep  # type: ignore[method-assign]
    model._rng = lambda: 0.5  # type: ignore[method-assign]
    return delays


def test_reply_carries_text_usage_latency_and_identity() -> None:
    model = ScriptedChatModel(['{"a": 1}'], latency=0.01)
    reply = model.chat_sync(USER)
    assert reply.text == '{"a": 1}'
    assert reply.provider == "scripted" and reply.model == "scripted"
    assert reply.latency_s >= 0.01
    assert reply.usage == Usage(5, 8, 13)
    assert reply.attempts == 1
    assert model.calls[0].messages == tuple(USER)


def test_usage_fills_total() -> None:
    assert Usage(3, 4).total_tokens == 7
    assert Usage(None, 4).total_tokens is None


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": -1}, {"top_p": 0}, {"max_output_tokens": 0}, {"timeout": 0}, {"json_mode": "yaml"}],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ChatSettings(**kwargs)  # type: ignore[arg-type]


def test_retries_retryable_errors_with_exponential_backoff() -> None:
    model = ScriptedChatModel(
        [ServiceUnavailableError("down"), LLMTimeoutError("slow"), MalformedResponseError("junk"), "ok"],
        retry_policy=RetryPolicy(max_attempts=4, initial_delay=1.0, multiplier=2.0, max_delay=3.0),
    )
    delays = recording(model)
    reply = model.chat_sync(USER)
    assert reply.text == "ok" and reply.attempts == 4
    # equal jitter with rng=0.5: 3/4 of the exponential delay, capped at max_delay
    assert delays == [0.75, 1.5, 2.25]


def test_retry_after_is_honoured_when_longer_than_backoff() -> None:
    model = ScriptedChatModel([RateLimitError("429", retry_after=7.0), "ok"])
    delays = recording(model)
    assert model.chat_sync(USER).text == "ok"
    assert delays == [7.0]


def test_retry_after_beyond_the_limit_is_raised_not_waited() -> None:
    model = ScriptedChatModel([RateLimitError("429", retry_after=3600), "ok"])
    delays = recording(model)
    with pytest.raises(RateLimitError):
        model.chat_sync(USER)
    assert delays == []


def test_gives_up_after_max_attempts() -> None:
    model = ScriptedChatModel([ServiceUnavailableError("down")] * 5, retry_policy=RetryPolicy(max_attempts=3))
    recording(model)
    with pytest.raises(ServiceUnavailableError) as info:
        model.chat_sync(USER)
    assert len(model.calls) == 3
    assert info.value.provider == "scripted"


@pytest.mark.parametrize(
    "error",
    [ContextTooLongError("too long"), AuthenticationError("bad key"), InvalidRequestError("bad")],
)
def test_non_retryable_errors_are_raised_at_once(error: Exception) -> None:
    model = ScriptedChatModel([error, "never"])
    delays = recording(model)
    with pytest.raises(type(error)):
        model.chat_sync(USER)
    assert len(model.calls) == 1 and delays == []


def test_daily_quota_rate_limit_can_be_marked_final() -> None:
    error = RateLimitError("quota")
    error.retryable = False
    model = ScriptedChatModel([error, "never"])
    with pytest.raises(RateLimitError):
        model.chat_sync(USER)
    assert len(model.calls) == 1


def test_real_sleep_is_used_by_default() -> None:
    model = ScriptedChatModel(
        [ServiceUnavailableError("down"), "ok"],
        retry_policy=RetryPolicy(initial_delay=0.02, jitter=False),
    )
    reply = model.chat_sync(USER)
    assert reply.attempts == 2 and reply.latency_s < 0.5


def test_timeout_of_a_slow_model_is_retried_then_raised() -> None:
    model = ScriptedChatModel(["a", "b"], latency=0.2, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    with pytest.raises(LLMTimeoutError):
        model.chat_sync(USER, ChatSettings(timeout=0.01))
    assert len(model.calls) == 2


def test_responder_function_and_chat_reply_answers() -> None:
    model = ScriptedChatModel(lambda messages, settings: f"{len(messages)} {settings.json_mode}")
    assert model.chat_sync(USER * 3, ChatSettings(json_mode="object")).text == "3 object"
    ready = ChatReply("cut", finish_reason="length", truncated=True)
    model.enqueue(ready)
    reply = model.chat_sync(USER)
    assert reply.truncated and reply.text == "cut"


def test_running_out_of_answers_says_so() -> None:
    with pytest.raises(ConfigError, match="ran out of answers"):
        ScriptedChatModel([]).chat_sync(USER)


def test_empty_conversation_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        ScriptedChatModel(["x"]).chat_sync([])


def test_chat_sync_inside_a_running_loop_points_to_chat() -> None:
    async def inner() -> None:
        with pytest.raises(ConfigError, match=r"await model\.chat"):
            ScriptedChatModel(["x"]).chat_sync(USER)

    asyncio.run(inner())


def test_concurrent_async_calls() -> None:
    model = ScriptedChatModel(lambda messages, settings: messages[0].content, latency=0.05)

    async def run() -> list[str]:
        replies = await asyncio.gather(*(model.chat([Message("user", str(i))]) for i in range(10)))
        return [r.text for r in replies]

    assert asyncio.run(run()) == [str(i) for i in range(10)]


def test_retry_policy_delay_bounds() -> None:
    policy = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5)
    for retry in range(1, 8):
        value = policy.delay(retry)
        base = min(5, 2 ** (retry - 1))
        assert base / 2 <= value <= base


def test_chat_sync_keeps_one_loop_per_thread() -> None:
    import threading

    from chatocr.llm.base import _sync_loop

    model = ScriptedChatModel(lambda messages, settings: "ok")
    model.chat_sync(USER)
    loop = _sync_loop()
    model.chat_sync(USER)
    assert _sync_loop() is loop and not loop.is_running()
    seen: list[object] = []

    def worker() -> None:
        seen.append(model.chat_sync(USER).text)
        seen.append(_sync_loop())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen[0] == "ok" and seen[1] is not loop
