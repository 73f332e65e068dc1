"""`chatocr plan` plans what `extract` sends: the same task (keys by alias, configured re-statement,
packing and prompt directories), for text, images and PDFs, for a preset or a real backend's
limits, without calling the backend."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.llm import ScriptedChatModel
from tests.cli.conftest import CHATOCR, env, script

REPO = Path(__file__).resolve().parents[2]
INVOICE = REPO / "samples" / "invoice.txt"
RECEIPT_IMAGE = REPO / "tests" / "fixtures" / "sroie" / "images" / "X00016469612.jpg"


def plan(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(CHATOCR), "plan", *args, "--json"], capture_output=True, text=True, env=env(), timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def configured(tmp_path: Path, **extra: str) -> Path:
    """A config with non-default re-statement and packing, and a prompt directory whose reminder
    template is recognisable."""
    prompts = tmp_path / "prompts" / "zh"
    prompts.mkdir(parents=True)
    (prompts / "reminder.j2").write_text("CUSTOM-REMINDER {{ keys | join(',') }}", encoding="utf-8")
    lines = ['packing = "pairs"', "restate_every = 1", f'prompt_dirs = ["{tmp_path / "prompts"}"]', "ocr_cache = false"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path = tmp_path / "chatocr.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_plan_sends_what_extract_sends_for_keys_by_alias(home: Path, tmp_path: Path) -> None:
    config = configured(tmp_path)
    planned = plan(
        str(INVOICE), "--scenario", "vat_invoice", "--keys", "发票号码", "--llm", "scripted", "--config", str(config)
    )
    assert planned["task"]["keys"] == ["发票号码"]  # the user's name, not the scenario's invoice_number
    model = ScriptedChatModel(['{"发票号码": "05281746"}'])
    ocr = ChatOCR(llm=model, ocr="text", config=config)
    result = ocr.extract(INVOICE.read_bytes(), keys=["发票号码"], scenario="vat_invoice")
    assert result.values == {"发票号码": "05281746"}
    sent = [(m.role, m.content) for m in model.calls[0].messages]
    assert [(m["role"], m["content"]) for m in planned["messages"]] == sent
    examples = [content for role, content in sent if role == "user"][:-1]
    assert examples and all("CUSTOM-REMINDER 发票号码" in content for content in examples)  # restate_every = 1
    assert planned["report"]["packing"] == "pairs" and planned["report"]["restate_every"] == 1
    assert '"发票号码"' in sent[-1][1] and "invoice_number" not in sent[-1][1]


def test_plan_for_a_backend_builds_it_but_never_calls_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    config = tmp_path / "chatocr.toml"
    config.write_text(
        f'llm = "openai:gpt-4o-mini"\nllm_options = {{ base_url = "http://127.0.0.1:{port}/v1" }}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "not-a-key")  # credentials never come from config files
    try:
        planned = plan(
            str(INVOICE), "--scenario", "vat_invoice", "--llm", "openai:gpt-4o-mini", "--config", str(config)
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    assert planned["task"]["target"] == "backend openai:gpt-4o-mini"
    assert planned["report"]["counter"].startswith("tiktoken") and planned["report"]["budget_tokens"]


def test_plan_reads_a_pdf_through_the_ocr_engine_asked_for(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image, ImageDraw

    pdf = tmp_path / "receipt.pdf"
    page = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(page).text((20, 20), "SHOP ABC SDN BHD  TOTAL RM 9.00", fill="black")
    page.save(pdf)
    script(monkeypatch, ["SHOP ABC SDN BHD\nTOTAL RM 9.00"])  # what the vision model reads off the page
    planned = plan(str(pdf), "--ocr", "vlm:scripted", "--keys", "company,total", "--limits", "openai-8k")
    assert planned["task"]["route"] == "prescore" and planned["task"]["scenario"] == "retail_receipt"
    assert "SHOP ABC SDN BHD" in planned["messages"][-1]["content"]


def test_plan_help_explains_every_limits_preset() -> None:
    done = subprocess.run([str(CHATOCR), "plan", "--help"], capture_output=True, text=True, env=env(), timeout=60)
    assert done.returncode == 0
    for preset in ("ernie-2000", "ernie", "openai-8k", "local"):
        assert f"  {preset} " in done.stdout
    assert "2000 characters per message" in done.stdout and "--llm" in done.stdout


@pytest.mark.slow
def test_plan_ocrs_an_image_with_the_configured_engine(home: Path) -> None:
    planned = plan(str(RECEIPT_IMAGE), "--keys", "company,total", "--limits", "local")
    assert planned["task"]["scenario"] == "retail_receipt"
    assert "TAMAN DAYA" in planned["messages"][-1]["content"] and "25/12/2018" in planned["messages"][-1]["content"]
