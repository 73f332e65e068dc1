"""The report's HTML without a browser: escaping, embedded images, missing images, symlinks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatocr.errors import OutputPathError
from chatocr.extraction.result import Extraction
from chatocr.fileio import file_sha256
from chatocr.runs.records import record_for
from chatocr.viewer import ReportItem, build_report, gather_items, read_result_file, write_report
from tests.viewer.conftest import IMG, SCRIPT


def _data(html: str) -> dict:  # type: ignore[type-arg]
    block = re.search(r'<script type="application/json" id="chatocr-data">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))  # type: ignore[no-any-return]


def test_document_text_never_reaches_the_html_unescaped(three_items: list[ReportItem]) -> None:
    html = build_report(three_items, title=SCRIPT)
    assert SCRIPT not in html and IMG not in html  # neither in the title nor in the data block
    assert html.count("<script") == 2 and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    data = _data(html)  # the JSON block still holds the exact text
    hostile = data["documents"][2]
    assert {f["name"]: f["value"] for f in hostile["fields"]}["company"] == SCRIPT
    assert re.search(r"script-src 'nonce-[\w-]+'", html) and "default-src 'none'" in html


def test_images_are_embedded_downscaled_and_boxes_keep_page_coordinates(three_items: list[ReportItem]) -> None:
    data = _data(build_report(three_items, max_side=400))
    receipt = data["documents"][1]
    (page,) = receipt["pages"]
    assert page["image"].startswith("data:image/jpeg;base64,")
    assert (page["width"], page["height"]) == three_items[1].images[0].size  # type: ignore[index]
    total = next(f for f in receipt["fields"] if f["name"] == "total")
    evidence = three_items[1].result.fields["total"].evidence[0]
    assert total["boxes"][0]["points"] == [round(c, 1) for p in evidence.box for c in p]
    assert data["documents"][2]["pages"][0]["image"] is None  # missing image: a blank page


def test_gather_items_reads_the_image_from_the_source_path(three_items: list[ReportItem], tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text(
        "".join(json.dumps(record_for((i.result.source, _sha(i.result.source)), i.result)) + "\n" for i in three_items),
        encoding="utf-8",
    )
    pairs, skipped = read_result_file(results)
    assert skipped == [] and len(pairs) == 3
    items = gather_items(pairs, None)
    assert items[0].images and items[0].images[0].size == three_items[0].images[0].size  # type: ignore[index]
    assert items[2].images is None and "is missing" in items[2].notes[0]
    view = _data(build_report(items))["documents"][2]
    (page,) = view["pages"]  # no OCR, no image: a page just large enough for the boxes
    assert page["width"] >= 560 and page["height"] >= 220  # the lowest field box (total) ends at y=220


def _sha(source: str) -> str:
    return file_sha256(Path(source)) if Path(source).is_file() else "0" * 64


def test_a_file_changed_since_the_result_is_neither_shown_nor_read_again(
    three_items: list[ReportItem], tmp_path: Path
) -> None:
    """The image at a result's path is another document now: the old result is not shown over it."""
    result = three_items[0].result
    copy = tmp_path / "receipt.jpg"
    copy.write_bytes(Path(result.source).read_bytes())
    old_sha = file_sha256(copy)
    copy.write_bytes(Path(three_items[1].result.source).read_bytes())  # another receipt under the same name
    moved = Extraction.from_dict({**result.to_dict(), "source": str(copy)})
    (item,) = gather_items([(old_sha, moved)], None)
    assert item.images is None and "changed since this result was made" in item.notes[0]
    (same,) = gather_items([(file_sha256(copy), moved)], None)
    assert same.images and not same.notes


def test_write_report_refuses_a_planted_symlink(three_items: list[ReportItem], tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me", encoding="utf-8")
    link = tmp_path / "report.html"
    link.symlink_to(precious)
    with pytest.raises(OutputPathError, match="symbolic link"):
        write_report(link, three_items[:1])
    assert precious.read_text(encoding="utf-8") == "keep me" and link.is_symlink()


def test_a_document_that_could_not_be_read_shows_its_error_without_a_page(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff broken")
    failed = Extraction(
        source=str(corrupt), error={"type": "CorruptImageError", "message": "does not decode", "hint": "Re-export it."}
    )
    (item,) = gather_items([(None, failed)], None)
    assert item.images is None and item.notes == []  # its error says why; no second, confusing note
    view = _data(build_report([item]))["documents"][0]
    assert view["ok"] is False and view["pages"] == [] and view["error"]["hint"] == "Re-export it."
