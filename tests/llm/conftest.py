"""Fixtures for the LLM backend tests: one fake wire-format server for the session, and the real
local model (loaded once per process by the backend itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatocr.llm import get_chat_model, local
from tests.fakes.llm_server import FakeLLMServer


@pytest.fixture(scope="session")
def session_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    yield server
    server.close()


@pytest.fixture
def server(session_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The session's fake server, with an empty script and request log for this test."""
    session_server.reset()
    yield session_server
    session_server.reset()


@pytest.fixture
def no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove credentials and base URLs a developer may have set, so tests see only their own."""
    import os

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "QIANFAN_", "EB_", "AISTUDIO_", "DASHSCOPE_", "DEEPSEEK_", "MOONSHOT_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def qwen() -> local.LocalChatModel:
    """The shipped local model (tests using it are marked slow)."""
    pytest.importorskip("llama_cpp")
    model = get_chat_model("local")
    assert isinstance(model, local.LocalChatModel)
    return model
