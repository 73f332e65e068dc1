"""The openai backend against llama-cpp-python's real OpenAI-compatible server (slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from chatocr.llm import ChatSettings, get_chat_model
from chatocr.llm.local import ensure_model
from tests.llm.test_local import DOCUMENT, FEW_SHOT, RECEIPT_SCHEMA

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn", reason="llama-cpp-python's server extra is not installed")
    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server extra is not installed")
    port = _free_port()
    # A file, not a pipe: llama.cpp's load log is larger than a pipe buffer and would block it.
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(ensure_model()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--n_threads",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 120 s")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_openai_backend_extracts_json_through_the_llamacpp_server(llama_server: str) -> None:
    model = get_chat_model("llamacpp", base_url=llama_server)
    reply = model.chat_sync(
        [*FEW_SHOT, DOCUMENT], ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60, timeout=300)
    )
    assert json.loads(reply.text) == {"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}
    assert reply.provider == "llamacpp" and reply.usage.prompt_tokens


def test_the_llamacpp_server_gives_each_value_a_probability(llama_server: str) -> None:
    """llama.cpp's server returns logprobs (without bytes) for a grammar-constrained answer: each
    value gets the probability of its least likely token."""
    from chatocr.calibration import value_probabilities

    model = get_chat_model("llamacpp", base_url=llama_server)
    settings = ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60, timeout=300, logprobs=True)
    reply = model.chat_sync([*FEW_SHOT, DOCUMENT], settings)
    assert reply.token_logprobs is not None
    assert "".join(text for text, _ in reply.token_logprobs) == reply.text
    probabilities = value_probabilities(reply.text, reply.token_logprobs)
    assert set(probabilities) == {"store", "date", "total"}
    assert all(0.0 < p.probability <= 1.0 and p.tokens >= 2 for p in probabilities.values())
    # copied from the document after one example: the model is sure of the date
    assert probabilities["date"].probability > 0.5
