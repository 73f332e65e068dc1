"""`chatocr doctor` reads what each backend declares, and says "not contacted" for servers unless
--check asks them (real HTTP against the fake server on 127.0.0.1, and a closed port)."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chatocr.cli.main import main
from chatocr.llm import ChatReply, ChatSettings
from chatocr.llm import registry as llm_registry
from chatocr.llm.base import ChatModel, DeltaCallback
from chatocr.messages import Message
from tests.fakes.llm_server import FakeLLMServer


def _checks(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    main(["doctor", "--json", *args])
    report = json.loads(capsys.readouterr().out)
    return {c["name"]: c for c in report["checks"] if c["kind"] == "llm"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_servers_are_not_contacted_without_check(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = _checks(capsys)
    for name in ("ollama", "vllm", "llamacpp"):
        assert checks[name]["server"] and not checks[name]["contacted"]
        assert "not contacted" in checks[name]["detail"]
    assert not checks["openai"]["server"]
    main(["doctor"])
    rows = [line for line in capsys.readouterr().out.splitlines() if " ollama " in line]
    assert rows and "✓" not in rows[0] and "?" in rows[0]


def test_check_asks_the_servers(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeLLMServer()
    try:
        monkeypatch.setenv("OLLAMA_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("LLAMACPP_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
        checks = _checks(capsys, "--check")
        assert [r.path for r in server.requests] == ["/v1/models"]
    finally:
        server.close()
    assert checks["ollama"]["ok"] and checks["ollama"]["contacted"] and "answered" in checks["ollama"]["detail"]
    llamacpp = checks["llamacpp"]
    assert not llamacpp["ok"] and "not reachable" in llamacpp["detail"]
    assert "LLAMACPP_BASE_URL" in llamacpp["fix"] and "llama_cpp.server" in llamacpp["fix"]


class MyCloudModel(ChatModel):
    """A backend doctor has never heard of: it declares its key variables and module."""

    key_env = ("MYCLOUD_TOKEN", "MYCLOUD_ID")
    key_sets = (("MYCLOUD_TOKEN", "MYCLOUD_ID"),)
    needs_key = True
    requires = ("json",)

    async def _complete(
        self, messages: Sequence[Message], settings: ChatSettings, on_delta: DeltaCallback | None = None
    ) -> ChatReply:
        raise NotImplementedError


def test_doctor_reads_a_backends_declared_keys(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(llm_registry._factories, "mycloud", MyCloudModel)
    monkeypatch.setenv("MYCLOUD_TOKEN", "t-secret-value")
    monkeypatch.delenv("MYCLOUD_ID", raising=False)
    check = _checks(capsys)["mycloud"]
    assert not check["ok"] and check["fix"] == "export MYCLOUD_TOKEN=... MYCLOUD_ID=..."
    monkeypatch.setenv("MYCLOUD_ID", "42")
    check = _checks(capsys)["mycloud"]
    assert check["ok"] and "MYCLOUD_TOKEN set" in check["detail"] and "t-secret-value" not in check["detail"]
