"""Helpers for CLI tests: an isolated home (no user config, keys file or history leaks in), the
scripted backend answering through $CHATOCR_SCRIPTED_ANSWERS, and the installed `chatocr` script."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHATOCR = Path(sys.executable).with_name("chatocr")
RECEIPT_ANSWER = {"company": "SHOP ABC SDN BHD", "total": "9.00"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh HOME and working directory; the scripted backend answers RECEIPT_ANSWER."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "CHATOCR_KEYS_FILE", "CHATOCR_LLM", "CHATOCR_OCR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(work)
    script(monkeypatch, [RECEIPT_ANSWER])
    yield work


def script(monkeypatch: pytest.MonkeyPatch, answers: list[Any], latency: float = 0.0) -> None:
    monkeypatch.setenv("CHATOCR_SCRIPTED_ANSWERS", json.dumps({"answers": answers, "latency": latency}))


def receipts(folder: Path, count: int) -> list[Path]:
    """`count` small receipts as OCR'd text files that RECEIPT_ANSWER grounds in."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"receipt{n:03d}.txt"
        path.write_text(f"SHOP ABC SDN BHD\nRECEIPT NO {n}\nTOTAL 9.00\n", encoding="utf-8")
        paths.append(path)
    return paths


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def env() -> dict[str, str]:
    return dict(os.environ)
