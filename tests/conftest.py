"""Session-wide test rules.

No test may touch the network: an autouse fixture makes every socket connection to anything but
the loopback interface fail loudly. Tests that talk to SDKs do so against real HTTP servers on
127.0.0.1 (see tests/fakes/).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


class NetworkAccessForbidden(RuntimeError):
    pass


def _is_loopback(address: Any) -> bool:
    if not (isinstance(address, tuple) and address):
        return isinstance(address, (str, bytes))  # AF_UNIX socket paths are local
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def forbid_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(address: Any) -> None:
        if not _is_loopback(address):
            raise NetworkAccessForbidden(f"test tried to reach {address!r}: tests must stay on 127.0.0.1")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback((name, 0)):
            raise NetworkAccessForbidden(f"test tried to resolve {name!r}: tests must stay on 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test session gets its own chatocr cache directory, and each test its own data directory,
    except for the assembled local model, which is expensive to rebuild and is found through
    CHATOCR_MODEL_DIR when the caller set it."""
    cache = tmp_path_factory.getbasetemp() / "chatocr-cache"
    monkeypatch.setenv("CHATOCR_CACHE_DIR", str(cache))
    # The memory of reviewed documents (chatocr.memory) too, per test: no test reads or grows the
    # user's, and no test's /remember or review becomes another test's example (the memory is on by
    # default, so a document remembered by one test changed what the next one's model was shown).
    monkeypatch.setenv("CHATOCR_DATA_DIR", str(tmp_path_factory.mktemp("chatocr-data")))
    # scripts/setup.sh assembles the local model there once; tests reuse it.
    models = os.environ.get("CHATOCR_MODEL_DIR") or str(Path.home() / ".cache" / "chatocr" / "models")
    monkeypatch.setenv("CHATOCR_MODEL_DIR", models)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped where that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available on this machine")
    return path
