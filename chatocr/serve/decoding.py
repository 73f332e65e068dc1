"""Large JSON request bodies decoded in a child process, where they cannot stall the service.

Python's JSON decoder reads a whole string in one call that holds the interpreter lock: a 15 MB
body of OCR text with 1.4 million escaped line breaks is ~50-65 ms of it, a 15 MB base64 image
~20 ms. No thread helps (the server's loop needs that lock to answer anyone, /healthz included),
so bodies from LARGE_BODY_BYTES up go to one spawned process that decodes them with the same
bounded reader (chatocr.fileio.parse_json: depth, number length, duplicate members) and sends the
value back (unpickling it costs the server ~3 ms for 15 MB). Smaller bodies are decoded on the work
loop, where they take under a millisecond or two.

The process is started when the service starts (its imports take ~0.7 s) and is started again if it
ever dies; while it is unavailable a body is decoded in this process as before, never refused. It
ends with the server: a server killed outright (SIGKILL, the OOM killer) leaves no child behind,
because the child watches its parent (nothing else would tell it: it holds its own end of the pipe
it waits on).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from chatocr.errors import DataFileError
from chatocr.fileio import parse_json
from chatocr.serve.inputs import BODY, Received, not_json

__all__ = ["LARGE_BODY_BYTES", "BodyDecoder"]

log = logging.getLogger("chatocr.serve")
LARGE_BODY_BYTES = 1 << 20


def decode_body(data: bytes) -> tuple[bool, Any]:
    """(True, value) or (False, what the bounded reader refused): run in the child process, so it
    returns plain values (an exception with its own constructor does not always unpickle)."""
    try:
        return True, parse_json(data, BODY, unique_members=True)
    except DataFileError as exc:
        return False, exc.message


def _end_with(parent: int) -> None:
    """In the child: exit as soon as `parent` is no longer this process's parent (it died)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="chatocr-parent-watch", daemon=True).start()


class BodyDecoder:
    """The child process that decodes large JSON bodies (module docstring)."""

    def __init__(self, threshold: int = LARGE_BODY_BYTES) -> None:
        self.threshold = threshold
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the process now and have it import its modules, so the first large body does not wait."""
        self._executor().submit(decode_body, b"{}")

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the server has threads, and a forked copy of a held lock never opens
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_end_with, initargs=(os.getpid(),)
            )
        return self._pool

    def wants(self, received: Received) -> bool:
        """Whether `received` is a JSON body large enough to be decoded in the child."""
        return received.body is not None and len(received.body) >= self.threshold

    async def decode(self, received: Received) -> None:
        """Set `received.decoded` for a JSON body of `threshold` bytes or more (a 400 when it is
        not JSON chatocr reads); smaller bodies and forms are left to the parsing step."""
        data = received.body
        if data is None or not self.wants(received):
            return
        try:
            ok, value = await asyncio.wrap_future(self._executor().submit(decode_body, data))
        except BrokenProcessPool:  # the child died (killed, out of memory): a new one next time
            log.warning("the JSON decoding process stopped; starting another")
            self.close()
            ok, value = decode_body(data)
        if not ok:
            raise not_json(BODY, value)
        received.decoded = value

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
