"""The service's work loop (serve/worker.py) and its decoding process (serve/decoding.py), in-process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatocr.serve.decoding import BodyDecoder, decode_body
from chatocr.serve.errors import ServeError
from chatocr.serve.inputs import UNDECODED, Received, json_body
from chatocr.serve.worker import WORK_NICE, WorkLoop
from tests.serve.conftest import Server, base_env


def test_work_runs_on_the_work_loops_thread_and_its_result_comes_back() -> None:
    async def main() -> None:
        work = WorkLoop()
        try:
            here = threading.get_ident()

            async def where() -> int:
                await asyncio.sleep(0)
                return threading.get_ident()

            assert await work.run(where()) != here
            assert await work.call(threading.get_ident) != here
            with pytest.raises(ZeroDivisionError):  # an error arrives as itself
                await work.call(lambda: 1 / 0)
        finally:
            await work.aclose()
        assert work.loop.is_closed()

    asyncio.run(main())


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no thread priorities here")
def test_the_work_loop_runs_at_a_lower_priority_than_its_caller() -> None:
    async def main() -> tuple[int, int]:
        work = WorkLoop()
        try:
            mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            theirs = await work.call(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return mine, theirs
        finally:
            await work.aclose()

    mine, theirs = asyncio.run(main())
    assert theirs == min(19, mine + WORK_NICE)


def test_cancelling_the_caller_cancels_the_work_and_notify_reaches_the_loop() -> None:
    async def main() -> None:
        work = WorkLoop()
        started, cancelled = threading.Event(), threading.Event()
        try:

            async def forever() -> None:
                started.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            waiting = asyncio.ensure_future(work.run(forever()))
            await asyncio.to_thread(started.wait, 10)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert await asyncio.to_thread(cancelled.wait, 10)

            seen = threading.Event()
            work.notify(seen.set)
            assert await asyncio.to_thread(seen.wait, 10)
        finally:
            await work.aclose()

    asyncio.run(main())


def test_a_large_body_is_decoded_in_the_child_process_with_the_same_bounds() -> None:
    decoder = BodyDecoder(threshold=1000)
    text = "TOTAL 9.00\n" * 200

    async def decoded(body: bytes) -> Received:
        received = Received(body=body)
        await decoder.decode(received)
        return received

    try:
        good = asyncio.run(decoded(json.dumps({"text": text}).encode()))
        assert good.decoded == {"text": text}
        assert json_body(good) == {"text": text}
        small = asyncio.run(decoded(b'{"text": "x"}'))  # under the threshold: decoded later, in the work loop
        assert small.decoded is UNDECODED and json_body(small) == {"text": "x"}
        said = {
            b'{"text": "' + b"a" * 2000 + b'", "text": "b"}': "given twice",
            b"[" * 2000 + b"]" * 2000: "nested too deeply",
            b'{"keys": ' + b"9" * 5000 + b"}": "5000 characters",
            b'{"text": "\xff' + b"a" * 2000 + b'"}': "not readable JSON",
        }
        for body, words in said.items():
            with pytest.raises(ServeError) as caught:
                asyncio.run(decoded(body))
            assert caught.value.status == 400 and words in caught.value.message, (words, caught.value.message)
    finally:
        decoder.close()


def test_a_dead_decoding_process_is_replaced_and_the_body_still_decoded(caplog: pytest.LogCaptureFixture) -> None:
    decoder = BodyDecoder(threshold=10)
    body = json.dumps({"text": "x" * 100}).encode()

    async def decode() -> object:
        received = Received(body=body)
        await decoder.decode(received)
        return received.decoded

    try:
        assert asyncio.run(decode()) == {"text": "x" * 100}
        child = decoder._child
        assert child is not None
        child.kill()  # as the OOM killer would, between two bodies: a new child is started
        child.wait(10)
        assert asyncio.run(decode()) == {"text": "x" * 100}
        assert decoder._child is not None and decoder._child is not child
        assert not caplog.text
        # One that dies in the middle of a body (here: reads its length, then exits): that body is
        # decoded in the server, said once, and the next goes to a new child.
        decoder._child.kill()
        decoder._child.wait(10)
        dying = "import sys; sys.stdin.buffer.read(8)"
        decoder._child = subprocess.Popen([sys.executable, "-c", dying], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert asyncio.run(decode()) == {"text": "x" * 100}
        assert "decoding process stopped" in caplog.text
        assert decoder._child is None
        assert asyncio.run(decode()) == {"text": "x" * 100}
        assert decoder._child is not None
    finally:
        decoder.close()
    assert child.poll() is not None and decoder._child is None


def test_the_child_returns_plain_values() -> None:
    """Plain values, pickled by the child: an exception with a constructor of its own may not unpickle."""
    assert decode_body(b'{"a": 1}') == (True, {"a": 1})
    ok, problem = decode_body(b"{")
    assert not ok and isinstance(problem, str) and "not valid JSON" in problem


PARENT = """
import asyncio, os, sys, time
from chatocr.serve.decoding import BodyDecoder
from chatocr.serve.inputs import Received
decoder = BodyDecoder(threshold=1)
asyncio.run(decoder.decode(Received(body=b"{}")))
children = [int(p) for t in os.listdir("/proc/self/task") for p in open(f"/proc/self/task/{t}/children").read().split()]
print(children[0], flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_a_killed_server_leaves_no_decoding_process_behind() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # alive while its parent is
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.1)
        assert not _running(child), "the decoding process outlived its server"
    finally:
        parent.kill()


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, and not a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_in_a_terminal_stops_the_service_and_its_child_quietly(tmp_path: Path) -> None:
    """Ctrl-C reaches the terminal's whole process group, the decoding process's start-up too: the
    service shuts down with no traceback from anyone, and leaves no process behind."""
    args = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(tmp_path / "d")]
    server = Server(args, base_env(tmp_path), tmp_path / "server.log", own_session=True)
    try:
        server.wait_ready()
        children = _children(server.process.pid)
        assert children, "the decoding process was not started with the service"
        os.killpg(server.process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert server.process.wait(30) == 0
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
        server.stop()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_running(child) for child in children):
        time.sleep(0.1)
    assert not any(_running(child) for child in children)
    log = server.log()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-2000:]


def _children(pid: int) -> list[int]:
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]
