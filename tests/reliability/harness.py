"""The bad-input corpus's machinery: a Case (an input or fault and the outcome it must get), the
context each case runs in, and the checks every case shares.

A case's `run(ctx)` builds its bad input in `ctx.tmp`, feeds it to chatocr the way a user would
(the Python API, the `chatocr` command in-process, or a subprocess where the fault needs one), and
asserts its stated expectation: a typed error with a hint, an exit code, a result. Whatever the
case, nothing may end in a traceback or in the "a bug in chatocr" hint.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chatocr.errors import ChatOCRError

BUG_HINT = "a bug in chatocr"
RECEIPT_TEXT = "SHOP ABC SDN BHD\nRECEIPT NO 1\nTOTAL 9.00\n"
RECEIPT_ANSWER = {"company": "SHOP ABC SDN BHD", "total": "9.00"}
GOOD = json.dumps(RECEIPT_ANSWER)
CLI_ARGS = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", "company,total"]
CHATOCR = Path(sys.executable).with_name("chatocr")


@dataclass
class Ctx:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    notes: list[str] = field(default_factory=list)

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def receipts(self, folder: str, count: int) -> list[Path]:
        return [
            self.file(f"{folder}/receipt{n:03d}.txt", RECEIPT_TEXT.replace("NO 1", f"NO {n}")) for n in range(count)
        ]

    def script(self, answers: Sequence[Any], latency: float = 0.0) -> None:
        """What the `scripted` backend of an in-process or child `chatocr` answers, in turn."""
        self.monkeypatch.setenv("CHATOCR_SCRIPTED_ANSWERS", json.dumps({"answers": list(answers), "latency": latency}))

    def cli(self, *args: str | Path) -> tuple[int, str, str]:
        """`chatocr ARGS` in this process: (exit status, stdout, stderr); never a traceback."""
        from chatocr.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:  # argparse's own usage errors
                code = int(exit_.code or 0)
        no_traceback(err.getvalue())
        return code, out.getvalue(), err.getvalue()

    def run_cli(
        self,
        *args: str | Path,
        preexec: Callable[[], None] | None = None,
        user: int | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The installed `chatocr` in a child process (for faults a child must suffer alone)."""
        done = subprocess.run(
            [str(CHATOCR), *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
            env=env or dict(os.environ),
            preexec_fn=preexec,
            user=user,
            cwd=self.tmp,
            timeout=300,
        )
        no_traceback(done.stderr)
        return done


def no_traceback(stderr: str) -> None:
    assert "Traceback (most recent call last)" not in stderr, stderr
    assert BUG_HINT not in stderr, stderr


def raises(
    kind: type[ChatOCRError], call: Callable[[], Any], *, contains: str = "", hint_has: str = "", hint_lacks: str = ""
) -> ChatOCRError:
    """`call()` raises `kind` (typed, with a hint that says what to do)."""
    with pytest.raises(kind) as info:
        call()
    error = info.value
    assert error.hint, f"{type(error).__name__} without a hint: {error}"
    assert contains.casefold() in str(error).casefold(), str(error)
    assert hint_has.casefold() in error.hint.casefold(), error.hint
    if hint_lacks:
        assert hint_lacks.casefold() not in error.hint.casefold(), error.hint
    return error


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    expect: str  # the outcome this input must get, in words (shown in the test id's report)
    run: Callable[[Ctx], None]
    slow: bool = False
    xfail: str | None = None  # strict: flips to a failure the day it passes, so the mark is removed


CASES: list[Case] = []


def case(
    area: str, expect: str, *, slow: bool = False, xfail: str | None = None
) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def register(function: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        CASES.append(Case(f"{area}-{function.__name__}", area, expect, function, slow, xfail))
        return function

    return register
