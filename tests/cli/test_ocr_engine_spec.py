"""`chatocr ocr` builds its engine with the one factory every caller uses, so a vision-LLM spec
("vlm:provider:model") works there as it does in `extract` and the API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import CHATOCR, env, script


def test_ocr_command_takes_a_vlm_engine_spec(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, ImageDraw

    image = tmp_path / "page.png"
    page = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(page).text((10, 50), "TOTAL RM 9.00", fill="black")
    page.save(image)
    script(monkeypatch, ["TOTAL RM 9.00"])  # what the scripted vision model reads off the page
    done = subprocess.run(
        [str(CHATOCR), "ocr", str(image), "--engine", "vlm:scripted", "--no-cache"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "TOTAL RM 9.00" in done.stdout and "Unknown OCR engine" not in done.stderr
