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
        return where_time_went(result, timeline)

    beside = line(("read", None), ("load", None), ("load", 1.1), ("ocr", 1.9), ("prompt", None))
    assert "OCR 1.9 s · model load 1.1 s (beside the OCR)" in beside
    after = line(("read", None), ("ocr", 1.9), ("load", None), ("load", 1.1), ("prompt", None))
    assert "model load 1.1 s ·" in after and "beside" not in after


def test_where_the_time_went_is_the_documents_own_calls() -> None:
    """Each document's split comes from its own calls' figures (CallRecord.perf, what the backend
    gave each reply), summed over a re-ask, kept through the result's JSON form: not from the
    model's last call, which with several documents in flight may be another document's."""
    from chatocr import ChatOCR
    from chatocr.extraction.result import Extraction
    from chatocr.llm import ChatReply, RetryPolicy, ScriptedChatModel

    first = {"prefix_state": "sequence", "prefix_s": 0.01, "prompt_eval_tokens": 300, "prompt_eval_s": 4.0}
    first |= {"generated_tokens": 40, "generation_s": 3.0, "batch": 3}
    again = {"prefix_state": "context", "prefix_s": 0.0, "prompt_eval_tokens": 50, "prompt_eval_s": 0.5}
    again |= {"generated_tokens": 20, "generation_s": 1.5, "batch": 1}
    unknown_total = '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "7.77"}'
    good = '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "9.90"}'
    model = ScriptedChatModel(
        [ChatReply(unknown_total, raw={"chatocr": first}), ChatReply(good, raw={"chatocr": again})],
        retry_policy=RetryPolicy(max_attempts=1),
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    text = b"ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL        RM 9.90\n"
    result = ocr.extract(text, keys=["company", "date", "total"], scenario="retail_receipt")
    assert result.values["total"] == "9.90" and [c.perf for c in result.calls] == [first, again]
    line = where_time_went(Extraction.from_json(result.to_json()), [])
    assert "examples' prefix 0.0 s (sequence)" in line
    assert "prompt 4.5 s (350 tokens, 2 calls)" in line
    assert "generation 4.5 s (60 tokens, beside up to 2 other documents)" in line
    scripted = ScriptedChatModel(['{"total": "9.90"}'], retry_policy=RetryPolicy(max_attempts=1))  # no figures
    plain = ChatOCR(llm=scripted, ocr="text", ocr_cache=False).extract(text, keys=["total"], scenario="retail_receipt")
    assert plain.calls[0].perf is None and "model calls" in where_time_went(plain, [])


def test_the_progress_bar_shows_the_models_documents_in_flight_and_tokens_per_second() -> None:
    from chatocr.cli.batch_run import _model_text

    piece = Event("generate", "generating: 12 tokens", "a.jpg", tokens=12, data={"in_flight": 3, "tokens_per_s": 31.25})
    assert _model_text(piece) == "3 in flight · 31.2 tok/s"
    assert _model_text(Event("ocr", "OCR: 30 lines", "a.jpg")) is None  # other events leave the column as it was
