"""Never silent: `chatocr extract` in a real terminal says what it is doing while it works (the
model call here takes 2 s), and says nothing of the kind in a pipe or with --quiet."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pexpect
import pytest

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
