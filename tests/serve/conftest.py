"""`chatocr serve` started for real: a uvicorn subprocess on a free loopback port, driven by httpx.

The model is chatocr's scripted backend (answers from $CHATOCR_SCRIPTED_ANSWERS, with an optional
latency) unless a test asks for another; documents are OCR text through the `text` engine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("multipart")

REPO = Path(__file__).resolve().parents[2]
CHATOCR = Path(sys.executable).with_name("chatocr")
TOKEN = "test-token-0123456789abcdef"
RECEIPT_TEXT = "SHOP ABC SDN BHD\nRECEIPT NO 7\nTOTAL 9.00\n"
ANSWER = {"company": "SHOP ABC SDN BHD", "total": "9.00"}
KEYS = ["company", "total"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One `chatocr serve` process. `log()` is everything it wrote to stderr and stdout."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, own_session: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(CHATOCR), "serve", "--port", str(self.port), *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=env.get("PWD"),
            start_new_session=own_session,  # a process group of its own, as a terminal's job is
        )

    def wait_ready(self, deadline_s: float = 120.0) -> None:
        """Poll /readyz until the model and OCR are loaded (or the process died)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {deadline_s}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


def base_env(
    tmp_path: Path,
    answers: list[Any] | None = None,
    latency: float = 0.0,
    tokens: str | None = TOKEN,
) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CHATOCR_KEYS_FILE", "CHATOCR_LLM", "CHATOCR_OCR", "XDG_CONFIG_HOME", "CHATOCR_SERVE_TOKENS")
    }
    env.update(
        {
            "HOME": str(home),
            "PWD": str(tmp_path),
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            "CHATOCR_SCRIPTED_ANSWERS": json.dumps({"answers": answers or [ANSWER], "latency": latency}),
        }
    )
    if tokens is not None:
        env["CHATOCR_SERVE_TOKENS"] = tokens
    return env


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """start_server(*args, env=None, latency=0.0, ready=True) -> Server; all stopped afterwards."""
    servers: list[Server] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        latency: float = 0.0,
        ready: bool = True,
        data_dir: Path | None = None,
    ) -> Server:
        environment = env or base_env(tmp_path, latency=latency)
        data = data_dir or tmp_path / "data"
        defaults = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(data)]
        server = Server([*defaults, *args], environment, tmp_path / f"server{len(servers)}.log")
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with the defaults, shared by the tests of a module that only send requests."""
    folder = tmp_path_factory.mktemp("shared-server")
    args = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(folder / "data")]
    shared = Server(args, base_env(folder), folder / "server.log")
    try:
        shared.wait_ready()
        yield shared
    finally:
        shared.stop()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
