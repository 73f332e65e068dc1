"""API keys never show up in reprs, error messages or logs."""

from __future__ import annotations

import logging

import pytest

from chatocr.errors import ServiceUnavailableError
from chatocr.llm import RetryPolicy, Secret, get_chat_model, redact
from chatocr.messages import Message
from chatocr.secrets import install_log_redaction

pytestmark = pytest.mark.usefixtures("no_llm_env")


def test_secret_is_masked() -> None:
    secret = Secret("sk-very-secret-value")
    assert "very-secret" not in repr(secret) and "very-secret" not in str(secret)
    assert "very-secret" not in f"{secret} {secret!r}"
    assert secret.reveal() == "sk-very-secret-value"
    assert secret == Secret("sk-very-secret-value") and secret


def test_redact_scrubs_known_secrets() -> None:
    Secret("tok-123456789")
    assert redact("GET /x?access_token=tok-123456789&a=1") == "GET /x?access_token=***&a=1"
    assert redact("nothing here") == "nothing here"


def test_short_values_are_not_treated_as_secrets() -> None:
    Secret("ab")
    assert redact("abc ab") == "abc ab"


def test_model_reprs_never_show_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-key-should-not-leak"
    monkeypatch.setenv("DEEPSEEK_API_KEY", key)
    models = [
        get_chat_model("deepseek"),
        get_chat_model("openai", api_key=key),
        get_chat_model("ernie", access_token=key),
    ]
    for model in models:
        assert key not in repr(model) and key not in str(model)
        assert key not in repr(vars(model))


def test_sdk_and_our_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-logged-key-0123456"
    Secret(key)
    install_log_redaction()
    with caplog.at_level(logging.DEBUG):
        for name in ("openai._base_client", "httpx", "chatocr.llm", "urllib3.connectionpool"):
            logging.getLogger(name).debug("Request options: %s", {"headers": {"Authorization": f"Bearer {key}"}})
    assert caplog.text.count("Bearer ***") == 4
    assert key not in caplog.text


def test_retry_warnings_and_errors_carry_no_key(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-retry-key-987654321"
    model = get_chat_model(
        "openai", base_url="http://127.0.0.1:9/v1", api_key=key, retry_policy=RetryPolicy(2, initial_delay=0)
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(ServiceUnavailableError) as info:
        model.chat_sync([Message("user", "hi")])
    assert "retrying" in caplog.text
    assert key not in caplog.text and key not in str(info.value)
