"""Documents of several pages: a whole-document result shows every page with its own image; a
result per page (`--per-page`) shows its page alone, its image being that page of the file; a
reviewed page exports as that page's picture."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from chatocr import ChatOCR
from chatocr.fileio import file_sha256
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.ocr.cache import OCRCache
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.review import MemorySettings, ReviewSession
from chatocr.review.labels import export_labels
from chatocr.runs import ResultLog

pytest.importorskip("fastapi", reason="the serve extra")
from fastapi.testclient import TestClient

from chatocr.review.app import create_review_app

SIZES = ((600, 400), (500, 700))
ROWS = (("KEDAI RIA SDN BHD", "TOTAL 9.00"), ("PAGE TWO TRADING", "TOTAL 12.50"))


def _tiff(path: Path) -> None:
    frames = []
    for size, rows in zip(SIZES, ROWS, strict=True):
        frame = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(frame)
        for n, row in enumerate(rows):
            draw.text((40, 40 + 80 * n), row, fill="black")
            draw.rectangle((30, 30 + 80 * n, 400, 70 + 80 * n), outline="black")
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:])


def _document(path: Path) -> OCRDocument:
    pages = []
    for index, (size, rows) in enumerate(zip(SIZES, ROWS, strict=True)):
        lines = tuple(
            OCRLine(
                f"p{index}-l{n}",
                row,
                ((30.0, 30.0 + 80 * n), (400.0, 30.0 + 80 * n), (400.0, 70.0 + 80 * n), (30.0, 70.0 + 80 * n)),
                0.97,
            )
            for n, row in enumerate(rows)
        )
        pages.append(Page(index, size[0], size[1], lines))
    return OCRDocument(tuple(pages), "rapid", "fixture", str(path), 0.0)


@pytest.fixture
def two_pages(tmp_path: Path, rapid_key: str) -> tuple[Path, Path]:
    """(results of the whole document, results one per page)."""
    tiff = tmp_path / "scans" / "two.tiff"
    tiff.parent.mkdir()
    _tiff(tiff)
    document = _document(tiff)
    sha256 = file_sha256(tiff)
    OCRCache().put(OCRCache.key(sha256, "rapid", rapid_key), document)

    def answer(messages: Any, settings: Any) -> str:
        text = messages[-1].content
        second = "PAGE TWO" in text and "KEDAI" not in text
        return json.dumps({"company": ROWS[1][0] if second else ROWS[0][0], "total": "12.50" if second else "9.00"})

    ocr = ChatOCR(llm=ScriptedChatModel(answer), ocr="text", config={"ocr_cache": False, "classify": False})
    whole, per_page = tmp_path / "whole.jsonl", tmp_path / "pages.jsonl"
    with ResultLog(whole) as log:
        log.append((str(tiff), sha256), ocr.extract(document, ["company", "total"], "retail_receipt"))
    with ResultLog(per_page) as log:
        for result in ocr.extract_pages(document, ["company", "total"], "retail_receipt"):
            log.append((str(tiff), sha256), result)
    return whole, per_page


def _client(results: Path, engine_for: Callable[[str], Any]) -> tuple[TestClient, ReviewSession]:
    session = ReviewSession(results, engine_for=engine_for, memory=MemorySettings(enabled=False))
    return TestClient(create_review_app(session, token="t" * 20), base_url="http://127.0.0.1"), session


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.size


@pytest.fixture(scope="module")
def engine_for(rapid_key: str) -> Callable[[str], Any]:
    from chatocr.cli.view_cmd import engine_lookup

    return engine_lookup(None, None)


def test_a_whole_document_shows_every_page(two_pages: tuple[Path, Path], engine_for: Callable[[str], Any]) -> None:
    client, _ = _client(two_pages[0], engine_for)
    view = client.get("/api/documents/0").json()
    assert [(p["index"], p["width"], p["height"]) for p in view["pages"]] == [(0, 600, 400), (1, 500, 700)]
    assert [line["id"] for line in view["pages"][1]["lines"]] == ["p1-l0", "p1-l1"]
    for number, size in enumerate(SIZES):
        image = client.get("/" + view["pages"][number]["image"])
        assert image.status_code == 200 and _size(image.content) == size
    assert client.get("/api/documents/0/pages/2/image").status_code == 404


def test_a_result_per_page_shows_its_own_page(
    two_pages: tuple[Path, Path], engine_for: Callable[[str], Any], tmp_path: Path
) -> None:
    client, session = _client(two_pages[1], engine_for)
    assert [doc.name for doc in session.documents] == ["two.tiff (page 1)", "two.tiff (page 2)"]
    view = client.get("/api/documents/1").json()
    (page,) = view["pages"]
    assert (page["index"], page["width"], page["height"]) == (1, 500, 700)
    assert [line["text"] for line in page["lines"]] == list(ROWS[1])
    assert {f["name"]: f["value"] for f in view["fields"]} == {"company": ROWS[1][0], "total": "12.50"}
    image = client.get("/" + page["image"])
    assert image.status_code == 200 and _size(image.content) == SIZES[1]  # the file's second frame
    assert client.get("/api/documents/1/pages/1/image").status_code == 404
    headers = {"content-type": "application/json", "x-review-token": "t" * 20}
    body = json.dumps({"actions": [{"field": "company", "action": "accept"}, {"field": "total", "action": "accept"}]})
    assert client.post("/api/documents/1/events", content=body, headers=headers).status_code == 200
    report = export_labels(session, tmp_path / "labelled")
    (doc_id,) = report.written
    assert doc_id.endswith("-p2")
    with Image.open(tmp_path / "labelled" / "images" / f"{doc_id}.png") as picture:
        assert picture.size == SIZES[1]
