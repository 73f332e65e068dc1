"""`chatocr eval` end to end in a subprocess (scripted backend, the sets' own OCR text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import SROIE


def test_eval_command(tmp_path: Path, ticket_set: Path) -> None:
    out = tmp_path / "report.json"
    env = {**os.environ, "CHATOCR_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatocr.cli.main",
            "eval",
            str(SROIE),
            str(ticket_set),
            "--llm",
            "scripted",
            "--ocr",
            "text",
            "--strategy",
            "default",
            "--strategy",
            "baseline",
            "--limit",
            "2",
            "--out",
            str(out),
            "--markdown",
            str(tmp_path / "report.md"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "exact %" in done.stdout and "tokens vs base" in done.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["results"]) == {"sroie", "cn_train_ticket_tiny", "ALL"}
    assert report["results"]["sroie"]["default"]["usage"]["documents"] == 2
    assert report["run"]["command"].startswith("chatocr eval ")
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("#### sroie")


def test_eval_command_bad_input(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatocr.cli.main", "eval", str(tmp_path), "--llm", "scripted", "--ocr", "text"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 1
    assert "no labels/ directory" in done.stderr and "Traceback" not in done.stderr
