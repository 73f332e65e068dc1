"""One failure matrix, every SDK backend: the real openai, erniebot and qianfan SDKs against the
fake wire-format server on 127.0.0.1 (tests/fakes/llm_server.py), each failure scripted the same
way and expected to come out as the same chatocr error, retried (or not) by ChatModel.chat alone.

Format-specific details (ERNIE's error-code table, OpenAI's empty `choices`, qianfan's token
refresh) stay in the per-backend test files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from chatocr.errors import (
    AuthenticationError,
    ContextTooLongError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm import ChatSettings, RetryPolicy
from chatocr.llm.base import ChatModel
from chatocr.messages import Message
from tests.fakes.llm_server import Behaviour, ErrorCode, FakeLLMServer, Raw, Reply, Slow, Status
from tests.llm.test_erniebot_backend import ernie
from tests.llm.test_openai_backend import model as openai_model
from tests.llm.test_qianfan_backend import v1 as qianfan_v1
from tests.llm.test_qianfan_backend import v2 as qianfan_v2

pytestmark = pytest.mark.usefixtures("no_llm_env")

HI = [Message("user", "hi")]
Factory = Callable[..., ChatModel]
BACKENDS: dict[str, Factory] = {
    "openai": openai_model,
    "erniebot": ernie,
    "qianfan-v1": qianfan_v1,
    "qianfan-v2": qianfan_v2,
}


@dataclass(frozen=True)
class Case:
    behaviour: Behaviour
    error: type[LLMError]
    retried: bool
    settings: ChatSettings = field(default_factory=ChatSettings)


CASES = {
    "429 with Retry-After": Case(
        Status(429, {"error": {"message": "slow down", "type": "rate_limit"}, "error_code": 18}, {"Retry-After": "3"}),
        RateLimitError,
        retried=True,
    ),
    "5xx": Case(Status(503, {"error": {"message": "overloaded"}}), ServiceUnavailableError, retried=True),
    "timeout": Case(Slow(1.0), LLMTimeoutError, retried=True, settings=ChatSettings(timeout=0.2)),
    "bad key": Case(ErrorCode(110), AuthenticationError, retried=False),
    "context too long": Case(ErrorCode(336103), ContextTooLongError, retried=False),
    "malformed body": Case(Raw(b'{"result": "trunc'), MalformedResponseError, retried=True),
}


def _sleeps(model: ChatModel) -> list[float]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    model._sleep = sleep  # type: ignore[method-assign]
    model._rng = lambda: 0.0  # type: ignore[method-assign]
    return delays


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
@pytest.mark.parametrize("backend", BACKENDS.values(), ids=list(BACKENDS))
def test_failure_matrix(server: FakeLLMServer, backend: Factory, case: Case) -> None:
    # One attempt: the failure maps to our error, the SDK did not retry on its own.
    server.enqueue(case.behaviour, case.behaviour, case.behaviour)
    chat = backend(server)
    with pytest.raises(case.error) as info:
        chat.chat_sync(HI, case.settings)
    error = info.value
    assert error.provider == chat.provider
    assert server.access_token not in str(error) and server.bearer_key not in str(error)
    if isinstance(error, RateLimitError):
        assert error.retry_after == 3.0
    # qianfan V1 re-sends once after refreshing its token on 110 (its own token logic, documented)
    sdk_resend = int(case.error is AuthenticationError and getattr(chat, "version", None) == 1)
    assert len(server.chat_requests()) == 1 + sdk_resend

    # With two attempts allowed: retried by ChatModel.chat (after the Retry-After) or not at all.
    server.reset()
    server.enqueue(*[case.behaviour] * (1 + sdk_resend), Reply("recovered"))
    chat = backend(server, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0.01))
    delays = _sleeps(chat)
    if case.retried:
        reply = chat.chat_sync(HI, case.settings)
        assert reply.text == "recovered" and reply.attempts == 2 and len(reply.attempt_latencies) == 2
        assert len(server.chat_requests()) == 2
        assert delays == ([3.0] if case.error is RateLimitError else [0.005])
    else:
        with pytest.raises(case.error):
            chat.chat_sync(HI, case.settings)
        assert delays == []
