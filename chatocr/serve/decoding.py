"""Large JSON request bodies decoded in a child process, where they cannot stall the service.

Python's JSON decoder reads a whole string in one call that holds the interpreter lock: a 15 MB
body of OCR text with 1.4 million escaped line breaks is ~35-45 ms of it, a 15 MB base64 image ~11
ms (benchmarks/bench_json_decode.py, best of 5; more under load). No thread helps (the server's
loop needs that lock to answer anyone, /healthz included), so bodies from LARGE_BODY_BYTES up go to
one child process that decodes them with the same bounded reader (chatocr.fileio.parse_json: depth,
number length, duplicate members) and sends the value back (unpickling it costs the server ~2 ms
for 15 MB). Smaller bodies are decoded on the work loop, where they take a few milliseconds at
most.

The child is a plain `python -c` with a pipe each way (not multiprocessing: that child would share
the terminal's process group, so a Ctrl-C during its start-up killed it with a traceback, and it
would outlive a server killed outright). It runs in a session of its own, so the terminal's
signals are the server's to handle; it ends when its stdin does, which is when the server closes
it or dies. It is started with the service (its imports take ~0.7 s) and again if it ever dies;
while it is unavailable a body is decoded in the server as before, never refused.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from chatocr.errors import DataFileError
from chatocr.fileio import parse_json
from chatocr.serve.inputs import BODY, Received, not_json

__all__ = ["LARGE_BODY_BYTES", "BodyDecoder", "decode_body", "serve_decoding"]

log = logging.getLogger("chatocr.serve")
LARGE_BODY_BYTES = 1 << 20
_LENGTH = 8  # bytes of a frame's length, big-endian, before its payload
_CHILD = "from chatocr.serve.decoding import serve_decoding; serve_decoding()"


def decode_body(data: bytes) -> tuple[bool, Any]:
    """(True, value) or (False, what the bounded reader refused), as plain values to pickle."""
    try:
        return True, parse_json(data, BODY, unique_members=True)
    except DataFileError as exc:
        return False, exc.message


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(len(payload).to_bytes(_LENGTH, "big"))
    stream.write(payload)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's payload, or None at the end of the stream."""
    head = stream.read(_LENGTH)
    if len(head) < _LENGTH:
        return None
    size = int.from_bytes(head, "big")
    payload = stream.read(size)
    return payload if len(payload) == size else None


def serve_decoding() -> None:
    """The child's loop: a body in, decode_body's answer out, until stdin ends."""
    while (body := _read_frame(sys.stdin.buffer)) is not None:
        _write_frame(sys.stdout.buffer, pickle.dumps(decode_body(body), protocol=pickle.HIGHEST_PROTOCOL))


class BodyDecoder:
    """The child process that decodes large JSON bodies (module docstring), one body at a time."""

    def __init__(self, threshold: int = LARGE_BODY_BYTES) -> None:
        self.threshold = threshold
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # One thread talks to the child: the 15 MB buffers of a body and its value are then made
        # and freed in one malloc arena (from the many call threads, each kept its own: +300 MB RSS).
        self._talker = ThreadPoolExecutor(1, thread_name_prefix="chatocr-decode")

    def start(self) -> None:
        """Start the child now, so that the first large body does not wait for its imports."""
        with self._lock:
            self._running()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen(
                [sys.executable, "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C is for the server, which stops it
            )
        return self._child

    def wants(self, received: Received) -> bool:
        """Whether `received` is a JSON body large enough to be decoded in the child."""
        return received.body is not None and len(received.body) >= self.threshold

    async def decode(self, received: Received) -> None:
        """Set `received.decoded` for a JSON body of `threshold` bytes or more (a 400 when it is
        not JSON chatocr reads); smaller bodies and forms are left to the parsing step."""
        if received.body is None or not self.wants(received):
            return
        ok, value = await asyncio.get_running_loop().run_in_executor(self._talker, self._ask, received.body)
        if not ok:
            raise not_json(BODY, value)
        received.decoded = value

    def _ask(self, data: bytes) -> tuple[bool, Any]:
        with self._lock:
            child = self._running()
            assert child.stdin is not None and child.stdout is not None
            try:
                _write_frame(child.stdin, data)
                answer = _read_frame(child.stdout)
                if answer is not None:
                    return pickle.loads(answer)  # type: ignore[no-any-return]  # our own child's
            except OSError:
                pass
            log.warning("the JSON decoding process stopped; starting another")
            self._stop(child)
        return decode_body(data)  # here, this once

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
        try:
            child.wait(timeout=5)  # its stdin ended: it returns
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if self._child is child:
            self._child = None

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._stop(self._child)
        self._talker.shutdown(wait=False)
