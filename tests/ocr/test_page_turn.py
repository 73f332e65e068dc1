"""A page photographed sideways or upside down, through the real RapidOCR: read the right way up,
rows and reading order as for the upright page, boxes in the pixels of the image as given.

Before, RapidOCR read such a page's lines but their boxes ran down, up or right to left, so the
layout put a sideways receipt's lines into one row and an upside-down one's in reverse, and the
model lost most fields (session check on samples/receipt.jpg turned: 1-2 of 4 right)."""

from __future__ import annotations

import pytest
from PIL import Image

from chatocr.ocr import OCRDocument
from chatocr.ocr.rapid import RapidEngine
from chatocr.ocr.types import Box

from .helpers import CHINESE_PAGE, ENGLISH_PAGE, SROIE, encode, render

pytestmark = pytest.mark.slow

TURNS = {
    "counter-clockwise": Image.Transpose.ROTATE_90,
    "upside-down": Image.Transpose.ROTATE_180,
    "clockwise": Image.Transpose.ROTATE_270,
}
_engine: list[RapidEngine] = []


def engine() -> RapidEngine:
    if not _engine:  # building the engine takes a second or two: one per session
        _engine.append(RapidEngine())
    return _engine[0]


def turned_box(box: Box, turn: Image.Transpose, size: tuple[int, int]) -> list[tuple[float, float]]:
    """Where a box of the upright page (of `size`) lies on the page turned by `turn`."""
    width, height = size
    if turn is Image.Transpose.ROTATE_90:  # counter-clockwise
        return [(y, width - x) for x, y in box]
    if turn is Image.Transpose.ROTATE_180:
        return [(width - x, height - y) for x, y in box]
    return [(height - y, x) for x, y in box]


def read(image: Image.Image) -> OCRDocument:
    return engine().read(encode(image, "PNG"))


@pytest.mark.parametrize("way", list(TURNS))
@pytest.mark.parametrize("page", ["english", "chinese", "receipt"])
def test_a_turned_page_reads_as_the_upright_one(page: str, way: str) -> None:
    if page == "receipt":
        upright_image = Image.open(sorted((SROIE / "images").glob("*.jpg"))[0]).convert("RGB")
    else:
        upright_image = render(ENGLISH_PAGE if page == "english" else CHINESE_PAGE)
    upright = read(upright_image)
    turn = TURNS[way]
    turned = read(upright_image.transpose(turn))
    assert turned.text() == upright.text()
    # The boxes are where the text is on the image as given (the viewer draws them there).
    width, height = upright_image.transpose(turn).size
    for line, reference in zip(turned.lines, upright.lines, strict=True):
        expected = turned_box(reference.box, turn, upright_image.size)
        assert all(0 <= x <= width and 0 <= y <= height for x, y in line.box)
        assert max(abs(a - b) for p, q in zip(line.box, expected, strict=True) for a, b in zip(p, q, strict=True)) <= 2


def test_an_upright_page_is_read_once() -> None:
    calls: list[int] = []
    rapid = RapidEngine()
    reader = rapid._read
    rapid._read = lambda bgr: calls.append(bgr.shape[0]) or reader(bgr)  # type: ignore[method-assign]
    rapid.read(encode(render(ENGLISH_PAGE), "PNG"))
    assert len(calls) == 1


def test_the_rapidocr_object_keeps_its_configured_steps() -> None:
    """Asking the classifier alone sets RapidOCR's steps for later calls too: they are put back,
    so the engine's RapidOCR object (used directly by benchmarks/bench_ocr.py) still reads pages."""
    rapid = engine()
    rapid.read(encode(render(ENGLISH_PAGE).transpose(Image.Transpose.ROTATE_180), "PNG"))
    rapid.read(encode(render(ENGLISH_PAGE), "PNG"))
    direct = rapid._ocr(encode(render(ENGLISH_PAGE), "PNG"))
    assert direct.txts and "ACME TRADING SDN BHD" in direct.txts


def test_without_the_line_classifier_a_page_is_left_as_read() -> None:
    rapid = RapidEngine(params={"Global.use_cls": False})
    turned = render(ENGLISH_PAGE).transpose(Image.Transpose.ROTATE_180)
    doc = rapid.read(encode(turned, "PNG"))
    assert all(line.box[1][0] >= line.box[0][0] for line in doc.lines)  # boxes as RapidOCR drew them


@pytest.mark.parametrize("degrees", [40, -35])
def test_a_receipt_photographed_at_an_angle_keeps_its_rows(degrees: int) -> None:
    """Tilted past 30 degrees, the layout used to leave the page unrotated: `Date:` and `Cashier:`
    came out on one row and their values elsewhere. Up to 45 degrees is a skew it undoes."""
    receipt = Image.open(sorted((SROIE / "images").glob("*.jpg"))[0]).convert("RGB")
    tilted = receipt.rotate(degrees, expand=True, fillcolor="white")
    rows = read(tilted).text().splitlines()
    date = next(row for row in rows if row.startswith("Date:"))
    assert "25/12/2018" in date and "Cashier" not in date
    assert any(row.startswith("Cashier:") and "MANIS" in row for row in rows)
