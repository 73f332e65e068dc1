"""`chatocr repl` driven the way a person uses it: the installed command in a real pseudo-terminal
(pexpect), with the scripted backend and text OCR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pexpect
import pytest

from chatocr.cli.repl import Repl, ReplCompleter
from tests.cli.conftest import CHATOCR, RECEIPT_ANSWER, receipts, script

PROMPT = r"chatocr \[receipt000\.txt\]>"


def _spawn(home: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(str(CHATOCR), ["repl", *args], env=env, cwd=str(home), encoding="utf-8",
                          dimensions=(40, 160), timeout=30)
    return child


def test_a_session_in_a_real_terminal(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (doc,) = receipts(home / "in", 1)
    script(monkeypatch, [RECEIPT_ANSWER, "The seller is SHOP ABC SDN BHD."])
    child = _spawn(home, str(doc), "--llm", "scripted", "--ocr", "text")
    try:
        child.expect("opened .*receipt000.txt: 3 lines")
        child.expect(PROMPT)
        child.sendline("/ocr")
        child.expect("RECEIPT NO 0")
        child.expect(PROMPT)
        child.sendline("/scenario retail_reciept")  # a typo: the turn fails, the session does not
        child.expect("Did you mean 'retail_receipt'")
        child.expect(PROMPT)
        child.sendline("/scenario retail_receipt")
        child.expect("fields: company")
        child.expect(PROMPT)
        child.sendline("/keys company,total")
        child.expect(PROMPT)
        child.sendline("/extract")
        child.expect("SHOP ABC SDN BHD")
        child.expect("grounded")
        child.expect(PROMPT)
        child.sendline("who sold this?")
        child.expect("The seller is SHOP ABC SDN BHD.")
        child.expect(PROMPT)
        child.sendline("/history")
        child.expect("1. you: who sold this?")
        child.expect(PROMPT)
        child.sendline("/usage")
        child.expect(r"2 call\(s\)")
        child.expect(PROMPT)
        child.sendline("/open no-such-file.png")
        child.expect("No such file")
        child.expect(PROMPT)
        child.sendline("/save session.json")
        child.expect("saved session.json")
        child.expect(PROMPT)
        child.send("/sce\t")  # completion of a command name
        child.expect("/scenario")
        child.sendline(" auto")
        child.expect("scenario: auto")
        child.expect(PROMPT)
        child.sendline("/exit")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    saved = json.loads((home / "session.json").read_text(encoding="utf-8"))
    assert saved["history"] == [{"question": "who sold this?", "answer": "The seller is SHOP ABC SDN BHD."}]
    assert saved["extractions"][0]["values"] == RECEIPT_ANSWER
    assert saved["usage"]["calls"] == 2
    assert (home.parent / "home" / ".local" / "share" / "chatocr" / "repl_history").is_file()


def test_ctrl_d_leaves_and_no_document_is_a_clear_error(home: Path) -> None:
    child = _spawn(home, "--llm", "scripted", "--ocr", "text")
    try:
        child.expect("chatocr>")
        child.sendline("what is this?")
        child.expect("No document is open")
        child.expect("chatocr>")
        child.sendeof()
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_completion_of_scenarios_keys_and_models(home: Path) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    from rich.console import Console

    from chatocr import ChatOCR
    from chatocr.llm import ScriptedChatModel

    repl = Repl(ChatOCR(llm=ScriptedChatModel(), ocr="text"), Console(), scenario="retail_receipt")
    completer = ReplCompleter(repl)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("/ex") == ["/extract", "/exit"]
    assert complete("/scenario tr") == ["train_ticket"]
    assert complete("/keys company,to") == ["total"]
    assert "scripted" in complete("/model scr")
