"""ERNIE's message rules, limits and error codes, independent of any SDK."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatocr.errors import (
    AuthenticationError,
    ContextTooLongError,
    InvalidRequestError,
    RateLimitError,
    ServiceUnavailableError,
)
from chatocr.llm import ERNIE_ROLES, ernie_limits, to_ernie_payload
from chatocr.llm.ernie_rules import error_for_code
from chatocr.messages import ImagePart, Message
from tests.fakes.llm_server import ernie_rule_violation


def test_system_goes_to_its_own_field_and_same_roles_merge() -> None:
    payload = to_ernie_payload(
        [
            Message("system", "You extract fields."),
            Message("user", "example 1"),
            Message("user", "example 2"),
            Message("assistant", '{"a": 1}'),
            Message("system", "Answer JSON only."),
            Message("user", "the document"),
        ]
    )
    assert payload.system == "You extract fields.\n\nAnswer JSON only."
    assert payload.messages == [
        {"role": "user", "content": "example 1\n\nexample 2"},
        {"role": "assistant", "content": '{"a": 1}'},
        {"role": "user", "content": "the document"},
    ]
    assert ernie_rule_violation({"messages": payload.messages}) is None


def test_no_system_means_no_field() -> None:
    assert to_ernie_payload([Message("user", "hi")]).system is None


@pytest.mark.parametrize(
    "messages",
    [
        [Message("assistant", "hi"), Message("user", "q")],
        [Message("user", "q"), Message("assistant", "a")],
        [Message("system", "only system")],
        [Message("user", "look", images=(ImagePart(b"png"),))],
    ],
)
def test_unrepairable_conversations_are_refused_before_sending(messages: list[Message]) -> None:
    with pytest.raises(InvalidRequestError):
        to_ernie_payload(messages)


roles = st.sampled_from(["system", "user", "assistant"])
conversations = st.lists(st.tuples(roles, st.text(max_size=5)), min_size=1, max_size=12)


@given(conversations)
def test_any_accepted_payload_satisfies_the_service(pairs: list[tuple[str, str]]) -> None:
    messages = [Message(role, text) for role, text in pairs]  # type: ignore[arg-type]
    try:
        payload = to_ernie_payload(messages)
    except InvalidRequestError:
        non_system = [m.role for m in messages if m.role != "system"]
        assert not non_system or non_system[0] != "user" or non_system[-1] != "user"
        return
    assert ernie_rule_violation({"messages": payload.messages}) is None
    # nothing is lost: every non-system text is still there, in order
    joined = "\n\n".join(m["content"] for m in payload.messages)
    for message in messages:
        if message.role != "system":
            assert message.content in joined


def test_limits_by_model_name() -> None:
    assert ernie_limits("ernie-3.5").max_input_chars == 20000
    assert ernie_limits("ERNIE-3.5-8K").max_input_tokens == 5120
    assert ernie_limits("ernie-3.5-8k-0205").max_input_chars == 20000
    assert ernie_limits("ERNIE-Speed-8K").max_input_chars == 11200
    assert ernie_limits("ernie-speed-128k").max_input_chars == 507904
    assert ernie_limits("ernie-3.5-128k").max_input_chars == 516096
    unknown = ernie_limits("ernie-mystery")
    assert unknown.max_input_chars == 4800 and unknown.max_message_chars == 4800
    assert ernie_limits("ernie-4.0").roles == ERNIE_ROLES
    assert ERNIE_ROLES.system == "field" and ERNIE_ROLES.alternate and ERNIE_ROLES.odd_count


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [
        (18, RateLimitError, True),
        (17, RateLimitError, False),
        (110, AuthenticationError, False),
        (111, AuthenticationError, False),
        (336002, InvalidRequestError, False),
        (336003, InvalidRequestError, False),
        (336006, InvalidRequestError, False),
        (336102, InvalidRequestError, False),
        (336007, ContextTooLongError, False),
        (336103, ContextTooLongError, False),
        (336100, ServiceUnavailableError, True),
        (336501, ServiceUnavailableError, True),
        (999999, InvalidRequestError, False),
    ],
)
def test_error_codes(code: int, expected: type[Exception], retryable: bool) -> None:
    error = error_for_code(code, "msg", provider="ernie")
    assert type(error) is expected
    assert error.retryable is retryable
    assert str(code) in str(error) and error.hint
