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


def test_real_sleep_is_used_by_default_and_latency_covers_every_attempt() -> None:
    # Without a real wait between the attempts the whole call would take well under 0.2 s: the
    # lower bound below can only hold if asyncio.sleep ran (and latency_s counts the wait).
    model = ScriptedChatModel(
        [ServiceUnavailableError("down"), "ok"],
        retry_policy=RetryPolicy(initial_delay=0.2, jitter=False),
    )
    reply = model.chat_sync(USER)
    assert reply.attempts == 2 and len(reply.attempt_latencies) == 2
    assert reply.latency_s >= 0.2 + sum(reply.attempt_latencies)


def test_latency_includes_failed_attempts() -> None:
    # Each attempt takes the scripted latency; the reply's latency is at least both of them.
    model = ScriptedChatModel([ServiceUnavailableError("down"), "ok"], latency=0.05)
    recording(model)  # no wait between the attempts
    reply = model.chat_sync(USER)
    assert all(seconds >= 0.05 for seconds in reply.attempt_latencies)
    assert reply.latency_s >= 0.1


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


def test_concurrent_async_calls_overlap() -> None:
    # Every call has started before the first one finishes only if they run at the same time;
    # one at a time, the first reply would see 1 started call.
    started = 0

    def respond(messages: object, settings: object) -> str:
        nonlocal started
        started += 1
        return messages[0].content  # type: ignore[index]

    model = ScriptedChatModel(respond, latency=0.05)

    async def one(i: int) -> tuple[str, int]:
        reply = await model.chat([Message("user", str(i))])
        return reply.text, started

    async def run() -> list[tuple[str, int]]:
        return await asyncio.gather(*(one(i) for i in range(10)))

    results = asyncio.run(run())
    assert [text for text, _ in results] == [str(i) for i in range(10)]
    assert [seen for _, seen in results] == [10] * 10


def test_retry_policy_delay_bounds() -> None:
    policy = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5)
    for retry in range(1, 8):
        value = policy.delay(retry)
        base = min(5, 2 ** (retry - 1))
        assert base / 2 <= value <= base


def test_chat_sync_keeps_one_loop_per_thread() -> None:
    import threading

    from chatocr.bridge import thread_loop

    model = ScriptedChatModel(lambda messages, settings: "ok")
    model.chat_sync(USER)
    loop = thread_loop()
    model.chat_sync(USER)
    assert thread_loop() is loop and not loop.is_running()
    seen: list[object] = []

    def worker() -> None:
        seen.append(model.chat_sync(USER).text)
        seen.append(thread_loop())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen[0] == "ok" and seen[1] is not loop


# ---- streaming and cancelling -------------------------------------------------------------------


class WholeAnswerModel(ScriptedChatModel):
    """A backend that cannot stream."""

    supports_streaming = False


def test_a_backend_that_cannot_stream_delivers_the_whole_text_once() -> None:
    pieces: list[str] = []
    reply = WholeAnswerModel(["one two three"]).chat_sync(USER, on_delta=pieces.append)
    assert pieces == ["one two three"] == [reply.text]


def test_a_streaming_backend_delivers_pieces_before_the_answer() -> None:
    model = ScriptedChatModel(['{"store": "GOLDEN BAKERY", "total": "5.50"}'], latency=0.05)
    pieces: list[str] = []

    async def run() -> tuple[int, str]:
        task = asyncio.create_task(model.chat(USER, on_delta=pieces.append))
        while not pieces:  # partial text arrives while the call is still running
            await asyncio.sleep(0.001)
        seen_before_end = len(pieces) if not task.done() else -1
        return seen_before_end, (await task).text

    seen, text = asyncio.run(run())
    assert 1 <= seen < 5 and "".join(pieces) == text and len(pieces) == 5


def test_a_failure_after_partial_output_is_not_retried() -> None:
    class FailsMidStream(ScriptedChatModel):
        async def _complete(self, messages, settings, on_delta=None):  # type: ignore[no-untyped-def]
            if on_delta is not None and not self.calls:
                self.calls.append(None)  # type: ignore[arg-type]
                on_delta("partial ")
                raise ServiceUnavailableError("dropped mid-stream")
            return await super()._complete(messages, settings, on_delta)

    model = FailsMidStream(["full answer"])
    delays = recording(model)
    pieces: list[str] = []
    with pytest.raises(ServiceUnavailableError):
        model.chat_sync(USER, on_delta=pieces.append)
    assert pieces == ["partial "] and delays == []
    # without a consumer of pieces the same failure is retried as usual
    assert FailsMidStream(["full answer"]).chat_sync(USER).text == "full answer"


def test_cancelling_the_task_stops_the_stream_and_the_model_stays_usable() -> None:
    model = ScriptedChatModel([" ".join(["word"] * 50), "next"], latency=5.0)
    pieces: list[str] = []

    async def run() -> str:
        task = asyncio.create_task(model.chat(USER, on_delta=pieces.append))
        while not pieces:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        model.latency = 0.0
        return (await model.chat(USER)).text

    assert asyncio.run(run()) == "next"
    assert 1 <= len(pieces) < 50
