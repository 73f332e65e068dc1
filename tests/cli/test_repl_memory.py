"""The REPL's corrections and memory, the way a person uses them: the installed `chatocr repl` in a
real pseudo-terminal (pexpect). /ocr numbers the lines, /fix takes a value or lines by number and
the next /extract shows it as corrected, /remember puts the document with its accepted answer in
its scenario's memory (masked), the next receipt of the same shop gets it as an example, /forget
takes it out. The scripted backend (fast) and, once, the real local model (slow)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pexpect
import pytest

from chatocr.memory import MemoryStore
from tests.cli.conftest import CHATOCR, script

SHOP = ["KEDAI MAJU SDN BHD", "NO 12 JALAN MAJU 3", "47300 PETALING JAYA"]


def _receipt(folder: Path, number: int, total: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"receipt{number}.txt"
    rows = [*SHOP, f"RECEIPT NO {number}", "DATE 12/03/2019", "TOTAL", total, "THANK YOU"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _spawn(home: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    return pexpect.spawn(
        str(CHATOCR), ["repl", *args], env=env, cwd=str(home), encoding="utf-8", dimensions=(40, 160), timeout=60
    )


def test_fix_remember_and_the_next_receipt_of_the_shop(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _receipt(home / "in", 1, "12.50")
    second = _receipt(home / "in", 2, "7.00")
    # The model takes the goodbye line for the company, twice; then reads the second receipt.
    script(
        monkeypatch,
        [
            {"company": "THANK YOU", "total": "12.50"},
            {"company": "THANK YOU", "total": "12.50"},
            {"company": "KEDAI MAJU SDN BHD", "total": "7.00"},
        ],
    )
    memory = home / "memory"
    monkeypatch.setenv("CHATOCR_DATA_DIR", str(home / "data"))  # the default memory: this test's own
    child = _spawn(home, str(first), "--llm", "scripted", "--ocr", "text", "-s", "retail_receipt")
    child.logfile_read = transcript = io.StringIO()
    prompt = r"chatocr \[receipt1\.txt\]>"
    try:
        child.expect(prompt)
        child.sendline("/keys company,total")
        child.expect(prompt)
        child.sendline("/fix total 12.50")
        child.expect("Nothing to fix yet")  # before any /extract
        child.expect(prompt)
        child.sendline("/ocr")
        child.expect("#1 KEDAI MAJU SDN BHD")
        child.expect("#7 12.50")
        child.expect(prompt)
        child.sendline("/extract")
        child.expect("THANK YOU")
        child.expect(prompt)
        child.sendline("/fix company #1")
        child.expect(r"company: KEDAI MAJU SDN BHD \(corrected; /remember keeps it\)")
        child.expect(prompt)
        child.sendline("/fix totl 1.00")
        child.expect("Did you mean 'total'")
        child.expect(prompt)
        child.sendline("/fix total #99")
        child.expect("There is no OCR line #99")
        child.expect(prompt)
        child.sendline("/extract")  # the model says THANK YOU again; the table shows the fix
        child.expect("KEDAI MAJU SDN BHD")
        child.expect("corrected")
        child.expect(prompt)
        child.sendline("/remember")
        child.expect("remembered in the memory of retail_receipt")
        child.expect(prompt)
        child.sendline(f"/open {second}")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/extract")
        child.expect(r"2 example\(s\), 1 from memory")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/save session.json")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "a bug in chatocr" not in transcript.getvalue()
    # The default memory (the test session's data folder, $CHATOCR_DATA_DIR) holds the fixed answer.
    (example,) = MemoryStore("retail_receipt").examples()
    assert example.answer == {"company": "KEDAI MAJU SDN BHD", "total": "12.50"} and example.origin == "repl"
    assert example.source.path == str(first.resolve()) and example.lines
    saved = json.loads((home / "session.json").read_text(encoding="utf-8"))
    second_result = saved["extractions"][-1]
    assert f"memory:retail_receipt/{example.id}" in second_result["examples"]
    assert second_result["memory"]["used"] == [f"memory:retail_receipt/{example.id}"]
    assert not memory.exists()  # --memory was not given: the default folder was used

    # /forget takes it out again; with --no-memory /remember says the memory is off.
    script(monkeypatch, [{"company": "KEDAI MAJU SDN BHD", "total": "12.50"}])
    child = _spawn(home, str(first), "--llm", "scripted", "--ocr", "text", "-s", "retail_receipt")
    try:
        child.expect(prompt)
        child.sendline("/forget")
        child.expect("no longer in the memory of retail_receipt")
        child.expect(prompt)
        child.sendline("/forget")
        child.expect("not in the memory of retail_receipt")
        child.expect(prompt)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert MemoryStore("retail_receipt").examples() == []
    child = _spawn(home, str(first), "--llm", "scripted", "--ocr", "text", "-s", "retail_receipt", "--no-memory")
    try:
        child.expect(prompt)
        child.sendline("/extract")
        child.expect(prompt)
        child.sendline("/remember")
        child.expect("memory of reviewed documents is off here")
        child.expect(prompt)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_lines_by_number_join_and_keep_their_boxes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _receipt(home / "in", 1, "12.50")
    script(monkeypatch, [{"address": "NO 12 JALAN MAJU 3", "total": "12.50"}])
    memory = home / "mine"
    child = _spawn(
        home, str(first), "--llm", "scripted", "--ocr", "text", "-s", "retail_receipt", "--memory", str(memory)
    )
    prompt = r"chatocr \[receipt1\.txt\]>"
    try:
        child.expect(prompt)
        child.sendline("/keys address,total")
        child.expect(prompt)
        child.sendline("/extract")
        child.expect(prompt)
        child.sendline("/fix address #2-3")
        child.expect(r"address: NO 12 JALAN MAJU 3 47300 PETALING JAYA \(corrected")
        child.expect(prompt)
        child.sendline("/remember")
        child.expect(r"remembered in the memory of retail_receipt \(\w+, 2 fields, 1 corrected\)")
        child.expect(prompt)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    (example,) = MemoryStore("retail_receipt", memory).examples()
    assert example.answer["address"] == "NO 12 JALAN MAJU 3 47300 PETALING JAYA"


@pytest.mark.slow
def test_with_the_local_model_the_next_similar_receipt_shows_the_remembered_example_in_its_plan(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real local model: a receipt extracted, fixed and remembered; the next receipt of the
    same shop is extracted with the remembered one among its examples (its plan says so)."""
    monkeypatch.setenv("CHATOCR_DATA_DIR", str(home / "data"))
    first = _receipt(home / "in", 1, "12.50")
    second = _receipt(home / "in", 2, "7.00")
    child = _spawn(home, str(first), "--llm", "local", "--ocr", "text", "-s", "retail_receipt", "-k", "company,total")
    child.timeout = 900  # loading the model and two extractions on a busy 2-core machine
    prompt = r"chatocr \[receipt1\.txt\]>"
    try:
        child.expect(prompt)
        child.sendline("/extract")
        child.expect(r"scenario retail_receipt via given")
        child.expect(prompt)
        child.sendline("/fix company #1")
        child.expect(prompt)
        child.sendline("/fix total #7")
        child.expect(prompt)
        child.sendline("/remember")
        child.expect("remembered in the memory of retail_receipt")
        child.expect(prompt)
        child.sendline(f"/open {second}")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/extract")
        child.expect(r"from memory")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/save session.json")
        child.expect(r"chatocr \[receipt2\.txt\]>")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    (example,) = MemoryStore("retail_receipt").examples()
    saved = json.loads((home / "session.json").read_text(encoding="utf-8"))
    result = saved["extractions"][-1]
    remembered = f"memory:retail_receipt/{example.id}"
    assert remembered in [e["id"] for e in result["plan"]["included"]]
    # The remembered answer was in the conversation the model read, as an example's answer.
    sent = result["calls"][0]["messages"]
    assert any(m["role"] == "assistant" and "KEDAI MAJU SDN BHD" in m["content"] for m in sent)
    assert result["values"]["total"] == "7.00"
