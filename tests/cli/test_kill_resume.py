"""A batch run killed with SIGKILL mid-way, then resumed: every document ends up exactly once.

Runs the installed `chatocr` in a subprocess (scripted backend with a small latency so that the
kill lands while documents are in flight); waits for results by polling the file, not by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.conftest import CHATOCR, RECEIPT_ANSWER, jsonl, receipts, script

COMMAND = [
    "--llm",
    "scripted",
    "--ocr",
    "text",
    "--scenario",
    "retail_receipt",
    "--keys",
    "company,total",
    "--concurrency",
    "2",
]


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a guard against hanging forever, not a timing assertion
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"chatocr exited early with {process.returncode}: {process.stderr.read()!r}")
        time.sleep(0.05)
    pytest.fail(f"{path} never reached {count} lines")


def test_kill_9_then_resume_gives_every_document_exactly_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = receipts(home / "in", 24)
    out = home / "results.jsonl"
    script(monkeypatch, [RECEIPT_ANSWER], latency=0.15)
    first = subprocess.Popen(
        [str(CHATOCR), "extract", str(home / "in"), *COMMAND, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        _wait_for_lines(out, 3, first)
        first.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
        assert first.stderr is not None
        first.stderr.close()
    survived = jsonl(out)  # every line the killed run left is a complete record
    assert 3 <= len(survived) < len(docs)
    with out.open("ab") as handle:  # and a crash in the middle of a write leaves half a line
        handle.write(json.dumps(survived[0])[:40].encode())

    script(monkeypatch, [RECEIPT_ANSWER])
    second = subprocess.run(
        [str(CHATOCR), "extract", str(home / "in"), *COMMAND, "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert "removed a half-written last line" in second.stderr
    assert f"resuming: {len(survived)} of {len(docs)}" in second.stderr
    records = jsonl(out)
    assert sorted(r["input"]["path"] for r in records) == sorted(str(d.resolve()) for d in docs)
    assert all(r["ok"] and r["values"] == RECEIPT_ANSWER for r in records)

    third = subprocess.run(
        [str(CHATOCR), "extract", str(home / "in"), *COMMAND, "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert third.returncode == 0 and f"{len(docs)} skipped" in third.stderr
    assert len(jsonl(out)) == len(docs)
