"""`export_ocr_lines`: crops whose text is their OCR line's, images that decode, deskewing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from chatocr.api import ChatOCR
from chatocr.export import Backend, OCRLinesOptions, SplitOptions, export_ocr_lines
from chatocr.export.ocr_lines import deskew_crop, select_lines
from chatocr.export.sources import ReviewedDocument
from chatocr.fileio import file_sha256
from chatocr.ocr.types import OCRDocument
from tests.export.conftest import SROIE

_NAME = re.compile(r"_(p\d+-l\d+)\.png$")


def _rows(out: Path, name: str = "rec_gt.txt") -> list[tuple[str, str]]:
    rows = []
    for line in (out / name).read_text(encoding="utf-8").splitlines():
        path, text = line.split("\t")
        rows.append((path, text))
    return rows


def test_every_crop_is_a_decodable_image_of_its_ocr_line(sroie_set: Path, chat: ChatOCR, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    summary = export_ocr_lines([sroie_set], out, OCRLinesOptions(split=SplitOptions(val_ratio=0.34)), chat=chat)
    rows = _rows(out)
    assert summary.lines == len(rows) >= 9 and summary.documents_with_lines == 3
    assert len(_rows(out, "rec_gt_train.txt")) + len(_rows(out, "rec_gt_val.txt")) == len(rows)
    documents = {p.stem: chat.engine.read(p) for p in sorted((SROIE / "ocr").glob("*.json"))}
    for path, text in rows:
        stem = next(s for s in documents if f"_{s}-" in path)
        line = documents[stem].line(_NAME.search(path).group(1))  # type: ignore[union-attr]
        assert text == line.text
        with Image.open(out / path) as image:
            image.load()
            x0, y0, x1, y1 = line.bounds
            assert abs(image.width - (x1 - x0)) <= 2 and abs(image.height - (y1 - y0)) <= 2
    labels = json.loads((SROIE / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    assert any(text == labels["date"].split()[0] or labels["date"] in text for _, text in rows)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def test_a_rotated_box_is_deskewed() -> None:
    """A line drawn level, then the page rotated by 25 degrees: cut by its rotated 4-point box, the
    crop is level again and matches the line as drawn (the axis-aligned cut does not)."""
    width, height = 360, 60
    line = Image.new("L", (width, height), 255)
    ImageDraw.Draw(line).text((8, 8), "TOTAL 12.50 RM", fill=0, font=_font(36))
    page = Image.new("L", (800, 600), 255)
    left, top = 220, 270
    page.paste(line, (left, top))
    angle = 25.0
    centre = (400.0, 300.0)
    rotated = page.rotate(angle, resample=Image.BICUBIC, center=centre, fillcolor=255)
    theta = np.deg2rad(angle)  # PIL rotates counter-clockwise on screen (y down)

    def turn(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - centre[0], y - centre[1]
        return (
            centre[0] + dx * np.cos(theta) + dy * np.sin(theta),
            centre[1] - dx * np.sin(theta) + dy * np.cos(theta),
        )

    box = (turn(left, top), turn(left + width, top), turn(left + width, top + height), turn(left, top + height))
    pixels = np.asarray(rotated.convert("RGB"))
    crop = deskew_crop(pixels, box)
    assert abs(crop.shape[1] - width) <= 1 and abs(crop.shape[0] - height) <= 1
    got = np.asarray(Image.fromarray(crop).convert("L").resize((width, height)), dtype=float)
    want = np.asarray(line, dtype=float)

    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    xs, ys = [p[0] for p in box], [p[1] for p in box]
    naive = rotated.crop((int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))).resize((width, height))
    assert correlation(got, want) > 0.8
    assert correlation(np.asarray(naive, dtype=float), want) < 0.5


def test_confirmed_lines_carry_the_text_a_person_read(chat: ChatOCR) -> None:
    document: OCRDocument = chat.engine.read(SROIE / "ocr" / "X00016469612.json")
    company = document.lines[1]  # "BOOK TA .K(TAMAN DAYA) SDN BND": the OCR misread BHD
    doc = ReviewedDocument(
        "receipt",
        "reviewed.jsonl",
        document,
        "retail_receipt",
        ["total", "company"],
        {"total": "9.00", "company": "BOOK TA .K(TAMAN DAYA) SDN BHD"},
        SROIE / "images" / "X00016469612.jpg",
        {company.id: "BOOK TA .K(TAMAN DAYA) SDN BHD"},
    )
    chosen = {c.line_id: c for c in select_lines(doc, {"total": "amount", "company": "text"})}
    assert chosen[company.id].text == "BOOK TA .K(TAMAN DAYA) SDN BHD" and chosen[company.id].why == "confirmed"
    total_lines = [c for c in chosen.values() if c.why == "grounds total"]
    assert total_lines and all("9.00" in c.text for c in total_lines)
    # The corrected company name is not in the OCR text: it grounds no line of its own.
    assert not [c for c in chosen.values() if c.why == "grounds company"]


@pytest.mark.slow
def test_reviewed_results_of_a_real_ocr_run_give_crops(tmp_path: Path) -> None:
    """extract (RapidOCR, scripted answers) -> a person reviews the line -> ocr-lines."""
    from chatocr.llm.scripted import ScriptedChatModel
    from chatocr.runs.records import record_for

    image = SROIE / "images" / "X00016469612.jpg"
    chat = ChatOCR(ScriptedChatModel(['{"date": "25/12/2018", "total": "9.00"}']), "rapid", max_steps=1)
    result = chat.extract(image, keys=["date", "total"], scenario="retail_receipt")
    record = record_for((str(image), file_sha256(image)), result)
    line_id = result.fields["total"].evidence[0].line_id
    record["reviewed"] = True
    record["confirmed_lines"] = {line_id: "TOTAL 9.00"}
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = export_ocr_lines([results], tmp_path / "rec", OCRLinesOptions(split=SplitOptions(val_ratio=0)), chat=chat)
    rows = {_NAME.search(p).group(1): (p, t) for p, t in _rows(tmp_path / "rec")}  # type: ignore[union-attr]
    assert rows[line_id][1] == "TOTAL 9.00" and summary.by_reason.get("confirmed") == 1
    for path, _ in rows.values():
        with Image.open(tmp_path / "rec" / path) as crop:
            crop.load()
            assert crop.width > crop.height


def test_ocr_lines_loads_no_model_whatever_the_config_says(sroie_set: Path, tmp_path: Path) -> None:
    """Options meant for the local model must not reach the stand-in backend ocr-lines uses."""
    config = tmp_path / "chatocr.toml"
    config.write_text('llm = "local"\nocr = "text"\n[llm_options]\nn_ctx = 8192\n', encoding="utf-8")
    summary = export_ocr_lines(
        [sroie_set], tmp_path / "rec", OCRLinesOptions(split=SplitOptions(val_ratio=0), backend=Backend(config=config))
    )
    assert summary.lines >= 9 and summary.skipped == []
