"""A real 2-page PDF (two fixture receipts) through RapidOCR: one result per page, each drawn on its
own page image in the report, in Chromium; and the same through `chatocr extract --per-page --html`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chatocr import ChatOCR
from chatocr.cli.main import main
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.viewer import gather_items, write_report
from tests.cli.conftest import jsonl, script
from tests.viewer.browser import chromium
from tests.viewer.conftest import FIXTURES

pytestmark = pytest.mark.slow
COMPANIES = ("TAMAN DAYA", "UNIHAKKA")  # a word of each receipt's company line, page 1 and page 2


def two_page_pdf(path: Path) -> Path:
    first, second = (
        Image.open(FIXTURES / "images" / f"{n}.jpg").convert("RGB") for n in ("X00016469612", "X51005433541")
    )
    first.save(path, "PDF", save_all=True, append_images=[second], resolution=150)
    return path


def company_line(messages: Any, settings: Any) -> str:
    """Answers with the document's own company line, whichever page is asked about."""
    for message in reversed(messages):
        for line in message.content.splitlines():
            if any(word in line for word in COMPANIES):
                return json.dumps({"company": " ".join(line.split())})
    return json.dumps({"company": None})


def test_two_page_pdf_one_result_per_page_in_the_report(tmp_path: Path) -> None:
    pdf = two_page_pdf(tmp_path / "two receipts.pdf")
    ocr = ChatOCR(llm=ScriptedChatModel(company_line), ocr="rapid", config={"classify": False})
    first, second = ocr.extract_pages(str(pdf), ["company"], "retail_receipt")
    assert (first.page, second.page) == (1, 2) and first.source == second.source == str(pdf)
    assert "TAMAN DAYA" in first.values["company"] and "UNIHAKKA" in second.values["company"]
    assert first.fields["company"].evidence[0].page == 0 and second.fields["company"].evidence[0].page == 1

    items = gather_items([(None, first), (None, second)], lambda _name: ocr.engine)
    assert items[1].images is not None and len(items[1].images) == 2  # the PDF's pages, rendered
    report = write_report(tmp_path / "report.html", items)
    with chromium() as driver:
        driver.get(report.as_uri())
        assert driver.execute_script("return document.documentElement.dataset.ready") == "true"
        driver.find_element("css selector", '#doc-list li[data-doc="1"]').click()
        (page,) = driver.find_elements("css selector", "#document .page")
        assert page.get_attribute("data-page") == "1" and "page 2" in page.text
        svg = page.find_element("css selector", "svg")
        width = float(svg.get_attribute("data-width"))
        scale = svg.rect["width"] / width
        box = driver.find_element("css selector", '#document .field-box[data-field="company"]')
        xs = [p[0] for p in second.fields["company"].evidence[0].box]
        assert box.rect["x"] == pytest.approx(svg.rect["x"] + min(xs) * scale, abs=3)
        assert len(driver.find_elements("css selector", "#document .ocr-line")) == len(
            ocr.engine.read(str(pdf)).pages[1].lines
        )
        driver.save_screenshot(str(tmp_path / "page2.png"))


def test_extract_per_page_pdf_through_the_cli(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = two_page_pdf(home / "receipts.pdf")
    script(monkeypatch, [{"total": "9.00"}])
    out, html = home / "results.jsonl", home / "report.html"
    args = [
        "extract",
        str(pdf),
        "--per-page",
        "--ocr",
        "rapid",
        "--llm",
        "scripted",
        "--scenario",
        "retail_receipt",
        "--keys",
        "total",
        "--out",
        str(out),
        "--html",
        str(html),
    ]
    main(args)
    assert sorted((r["input"]["page"], r["input"]["pages"]) for r in jsonl(out)) == [(1, 2), (2, 2)]
    block = re.search(r'id="chatocr-data">(.*?)</script>', html.read_text(encoding="utf-8"), re.S)
    assert block is not None
    documents = json.loads(block.group(1))["documents"]
    assert [d["page"] for d in documents] == [1, 2]
    assert all(d["pages"][0]["image"].startswith("data:image/jpeg") for d in documents)
    capsys.readouterr()
    main(args)  # every page is done: nothing to extract again
    assert "resuming: 1 of 1" in capsys.readouterr().err and len(jsonl(out)) == 2
