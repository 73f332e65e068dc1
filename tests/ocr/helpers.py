"""Test documents rendered with real fonts (Debian's fonts-noto-cjk / fonts-wqy-microhei), so every
test knows exactly what text an image holds, and fake engines for tests that need no OCR."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from chatocr.ocr import ImageEngine, RawLine
from chatocr.ocr.types import Box, OCRDocument, OCRLine, Page

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SROIE = FIXTURES / "sroie"
FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)

# (x, y, text) at 36 px: a VAT-invoice-like page whose key/value pairs sit far apart on one row.
CHINESE_PAGE = [
    (330, 40, "增值税普通发票"),
    (60, 140, "购买方名称：北京智能科技有限公司"),
    (60, 220, "开票日期：2024年03月15日"),
    (60, 300, "金额："),
    (640, 300, "¥8,490.57"),
    (60, 380, "税率：6%"),
    (640, 380, "税额：509.43"),
    (60, 460, "价税合计（小写）"),
    (640, 460, "¥9,000.00"),
]
ENGLISH_PAGE = [
    (60, 40, "ACME TRADING SDN BHD"),
    (60, 120, "Invoice No: INV-2024-0315"),
    (60, 200, "Date:"),
    (600, 200, "15/03/2024"),
    (60, 280, "Subtotal"),
    (600, 280, "RM 84.90"),
    (60, 360, "Total:"),
    (600, 360, "RM 90.00"),
    (60, 440, "THANK YOU, PLEASE COME AGAIN"),
]


def font(size: int = 36) -> ImageFont.FreeTypeFont:
    for path in FONTS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    pytest.skip("CJK fonts are not installed: apt-get install -y fonts-noto-cjk fonts-wqy-microhei")


def render(lines: list[tuple[int, int, str]], size: tuple[int, int] = (1000, 540), text_size: int = 36) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    face = font(text_size)
    for x, y, text in lines:
        draw.text((x, y), text, fill="black", font=face)
    return image


def reference_text(lines: list[tuple[int, int, str]]) -> str:
    """The ground truth in reading order (rows by y, then x)."""
    return "\n".join(text for _, _, text in sorted(lines, key=lambda item: (item[1], item[0])))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rect(x0: float, y0: float, x1: float, y1: float) -> Box:
    return (x0, y0), (x1, y0), (x1, y1), (x0, y1)


def document(*lines: tuple[str, Box], engine: str = "fake") -> OCRDocument:
    ocr_lines = tuple(OCRLine(f"p0-l{n}", text, box, 0.9) for n, (text, box) in enumerate(lines))
    return OCRDocument((Page(0, 1000, 1000, ocr_lines),), engine, "m", "<test>", 0.0)


@dataclass
class Seen:
    sizes: list[tuple[int, int]]
    pixels: list[tuple[int, int, int]]


class FakeEngine(ImageEngine):
    """Reports one line per page naming the page size; records what it was given."""

    name = "fake"
    model = "fake-1"

    def __init__(self, setting: str = "a", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.setting = setting
        self.seen = Seen([], [])
        self.calls = 0

    def settings(self) -> dict[str, object]:
        return {"setting": self.setting}

    def _recognize(self, image: Image.Image) -> list[RawLine]:
        self.calls += 1
        self.seen.sizes.append(image.size)
        self.seen.pixels.append(image.getpixel((0, 0)))  # type: ignore[arg-type]
        return [RawLine(f"{image.width}x{image.height}", rect(1, 1, 50, 10), 0.99)]
