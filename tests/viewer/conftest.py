"""Three real results for the report tests: two SROIE receipts (their fixture OCR and images) and a
document whose text is HTML/JS that must show as text, extracted by the real pipeline with the
scripted backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from chatocr import ChatOCR
from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message
from chatocr.ocr.text import TextEngine
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.viewer import ReportItem
from tests.cli.conftest import home  # noqa: F401  (the CLI tests' isolated HOME, a fixture here too)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
RECEIPTS = ("X00016469612", "X51005433541")
KEYS = ["company", "date", "address", "total"]
SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'


def receipt_document(name: str) -> tuple[OCRDocument, Image.Image]:
    """The fixture OCR of a receipt, sized and named as its image (as an image engine gives it)."""
    image = Image.open(FIXTURES / "images" / f"{name}.jpg")
    document = TextEngine().read(FIXTURES / "ocr" / f"{name}.json")
    page = replace(document.pages[0], width=image.width, height=image.height)
    return replace(document, pages=(page,), source=str(FIXTURES / "images" / f"{name}.jpg"), engine="rapid"), image


def hostile_document(missing_image: Path) -> OCRDocument:
    rows = [SCRIPT, IMG, "TOTAL 5.00", "单价 合计 ¥5.00"]
    lines = tuple(
        OCRLine(
            f"p0-l{n}",
            text,
            ((40.0, 40.0 + 60 * n), (560.0, 40.0 + 60 * n), (560.0, 80.0 + 60 * n), (40.0, 80.0 + 60 * n)),
            0.62 if n == 2 else 0.99,
        )
        for n, text in enumerate(rows)
    )
    return OCRDocument((Page(0, 600, 320, lines),), "rapid", "test", str(missing_image), 0.0)


@pytest.fixture
def three_items(tmp_path: Path) -> list[ReportItem]:
    documents = [receipt_document(name) for name in RECEIPTS]
    hostile = hostile_document(tmp_path / "gone" / "evil.jpg")
    # Each document's answer, also on a re-ask (the loop re-asks about the ungrounded date).
    answers = {
        doc.lines[0].text: (FIXTURES / "labels" / f"{name}.json").read_text(encoding="utf-8")
        for name, (doc, _) in zip(RECEIPTS, documents, strict=True)
    }
    answers[SCRIPT] = json.dumps({"company": SCRIPT, "date": "31/12/2019", "address": IMG, "total": "5.00"})

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        for message in reversed(messages):  # the document is in the last user turn that has one
            for first_line, reply in answers.items():
                if first_line in message.content:
                    return reply
        raise AssertionError("no known document in the prompt")

    ocr = ChatOCR(llm=ScriptedChatModel(answer), ocr="text", config={"ocr_cache": False, "classify": False})
    items = [
        ReportItem(ocr.extract(document, KEYS, "retail_receipt"), document, [image]) for document, image in documents
    ]
    items.append(
        ReportItem(
            ocr.extract(hostile, KEYS, "retail_receipt"),
            hostile,
            None,
            [f"The image {hostile.source} is missing; the boxes are drawn on a blank page."],
        )
    )
    return items
