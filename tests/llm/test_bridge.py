"""chatocr.bridge: async work run from sync code, once, for every caller."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from chatocr.bridge import LoopThread, run_sync, thread_loop

REPO = Path(__file__).resolve().parents[2]
# _IN_BACKGROUND: a test run started in the background by a non-interactive shell (`pytest &`, as
# CI scripts and nohup do) inherits SIGINT ignored, and so would the children here: Python then
# keeps it ignored and never installs its Ctrl-C handler. The children restore what a terminal gives.


async def _where() -> tuple[str, asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return threading.current_thread().name, asyncio.get_running_loop()


def test_without_a_running_loop_the_work_runs_here_on_one_kept_loop() -> None:
    first = run_sync(_where())
    second = run_sync(_where())
    assert first[0] == threading.current_thread().name
    assert first[1] is second[1] is thread_loop()


def test_inside_a_running_loop_the_work_runs_on_the_shared_loop_thread() -> None:
    async def main() -> tuple[str, asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        name, loop = run_sync(_where())  # sync code called from async code: must not deadlock
        return name, loop, asyncio.get_running_loop()

    name, loop, outer = asyncio.run(main())
    assert name == "chatocr-bridge" and loop is not outer


def test_loop_thread_cancels_the_work_when_the_wait_is_interrupted() -> None:
    loop = LoopThread("test-loop")
    started, cancelled = threading.Event(), threading.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    future = loop.submit(work())
    assert started.wait(30)
    future.cancel()  # what LoopThread.run does when KeyboardInterrupt ends its wait
    assert cancelled.wait(30)
    assert loop.run(_where())[0] == "test-loop"  # and the loop keeps serving


def test_ctrl_c_during_run_sync_cancels_the_work_first(tmp_path: Path) -> None:
    # A real SIGINT to a real process: the coroutine must see its cancellation (that is how a local
    # generation gets stopped) before KeyboardInterrupt reaches the caller.
    script = textwrap.dedent(
        """
        import asyncio, signal, sys
        from chatocr.bridge import run_sync

        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, see _IN_BACKGROUND

        async def work():
            print("started", flush=True)
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                print("work cancelled", flush=True)
                raise

        try:
            run_sync(work())
        except KeyboardInterrupt:
            print("KeyboardInterrupt after", flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert out.split("\n")[:2] == ["work cancelled", "KeyboardInterrupt after"]


def test_ctrl_c_during_a_blocking_step_is_not_swallowed() -> None:
    # A step that blocks the loop (an SDK call run inline under chat_sync) cannot see the cancel;
    # when it finishes, the caller still gets KeyboardInterrupt instead of a result.
    script = textwrap.dedent(
        """
        import asyncio, signal, time
        from chatocr.bridge import run_sync

        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, see _IN_BACKGROUND

        async def blocking():
            print("started", flush=True)
            time.sleep(1.5)
            return "answer"

        try:
            print("returned", run_sync(blocking()), flush=True)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert out.strip() == "KeyboardInterrupt"
