"""Never silent: `chatocr extract` in a real terminal says what it is doing while it works (the
model call here takes 2 s), and says nothing of the kind in a pipe or with --quiet."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pexpect
import pytest

from chatocr.cli.status import where_time_went
from chatocr.progress import Event
from tests.cli.conftest import CHATOCR, RECEIPT_ANSWER, receipts, script


def _spawn(home: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm"}
    return pexpect.spawn(
        str(CHATOCR), ["extract", *args], env=env, cwd=str(home), encoding="utf-8", dimensions=(40, 160), timeout=60
    )


def test_a_terminal_sees_each_stage_before_the_result(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (doc,) = receipts(home / "in", 1)
    script(monkeypatch, [RECEIPT_ANSWER], latency=2.0)
    child = _spawn(home, str(doc), "--llm", "scripted", "--ocr", "text", "--keys", "company,total", "--timings")
    try:
        child.expect("starting")
        child.expect(r"asking scripted")  # shown while the (slow) model call runs ...
        child.expect("SHOP ABC SDN BHD")  # ... and only then the result
        child.expect("where the time went: OCR")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_pipes_and_quiet_get_no_status(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (doc,) = receipts(home / "in", 1)
    script(monkeypatch, [RECEIPT_ANSWER])
    command = [str(CHATOCR), "extract", str(doc), "--llm", "scripted", "--ocr", "text", "--keys", "company"]
    piped = subprocess.run(command, capture_output=True, text=True, cwd=home, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert "starting" not in piped.stderr and "asking" not in piped.stderr
    script(monkeypatch, [RECEIPT_ANSWER])
    child = _spawn(home, str(doc), "--llm", "scripted", "--ocr", "text", "-k", "company", "-q")
    try:
        child.expect("SHOP ABC SDN BHD")
        child.expect(pexpect.EOF)
        assert "asking" not in (child.before or "")
    finally:
        child.close()


# What llama-cpp-python does while a local model loads (beside the OCR, in another thread): the
# process's stderr goes to /dev/null, descriptor and sys.stderr both. The status line has its own
# copy of the terminal and keeps drawing; the plain stderr write meanwhile is gone, as it would be.
SILENCED_WHILE_DRAWING = """
import os, sys, time
from chatocr.cli.status import StatusLine
with StatusLine.for_terminal() as status:
    status.say("before the silence")
    time.sleep(0.3)
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    real, sys.stderr = sys.stderr, open(os.devnull, "w")
    print("lost to the silence", file=sys.stderr, flush=True)
    status.say("during the silence")
    time.sleep(0.5)
    sys.stderr = real
    os.dup2(saved, 2)
    status.say("after the silence")
    time.sleep(0.3)
print("done", flush=True)
"""


def test_the_status_line_keeps_drawing_while_stderr_is_silenced() -> None:
    python = CHATOCR.parent / "python"
    env = {**os.environ, "TERM": "xterm"}
    child = pexpect.spawn(
        str(python), ["-c", SILENCED_WHILE_DRAWING], env=env, encoding="utf-8", dimensions=(40, 160), timeout=60
    )
    try:
        child.expect("before the silence")
        child.expect("during the silence")
        child.expect("after the silence")
        child.expect("done")
        child.expect(pexpect.EOF)
        assert "lost to the silence" not in (child.before or "")
    finally:
        child.close()
    assert child.exitstatus == 0


def test_where_the_time_went_says_when_the_model_loaded_beside_the_ocr() -> None:
    def line(*stages: tuple[str, float | None]) -> str:
        timeline = [Event(stage, stage, seconds=seconds, at=float(at)) for at, (stage, seconds) in enumerate(stages)]
        result = SimpleNamespace(timings={"ocr_s": 1.9, "total_s": 12.0}, ocr={"cached": False})
        return where_time_went(result, None, timeline)

    beside = line(("read", None), ("load", None), ("load", 1.1), ("ocr", 1.9), ("prompt", None))
    assert "OCR 1.9 s · model load 1.1 s (beside the OCR)" in beside
    after = line(("read", None), ("ocr", 1.9), ("load", None), ("load", 1.1), ("prompt", None))
    assert "model load 1.1 s ·" in after and "beside" not in after
