"""Inputs: every format, every way to go wrong, and a typed error (never a PIL traceback) for each."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chatocr.errors import InputError, MissingDependencyError
from chatocr.ocr import (
    CorruptImageError,
    EmptyImageError,
    ImageLimits,
    ImageTooLargeError,
    TooManyPagesError,
    UnsupportedInputError,
    load_input,
)

from .helpers import SROIE, FakeEngine, encode


def page(text: str = "hello", size: tuple[int, int] = (400, 300), colour: str = "white") -> Image.Image:
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).text((20, 20), text, fill="black")
    return image


def pdf_bytes(pages: int) -> bytes:
    first, *rest = [page(f"page {n}") for n in range(pages)]
    return encode(first, "PDF", save_all=True, append_images=rest, resolution=72.0)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF"])
def test_each_image_format_loads_as_rgb(fmt: str) -> None:
    loaded = load_input(encode(page(), fmt))
    assert len(loaded.pages) == 1
    assert loaded.pages[0].mode == "RGB" and loaded.pages[0].size == (400, 300)
    assert loaded.sha256 and not loaded.warnings


def test_path_pil_and_array_sources(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    page().save(path)
    assert load_input(path).source == str(path)
    assert load_input(str(path)).pages[0].size == (400, 300)
    assert load_input(page()).pages[0].size == (400, 300)
    array = np.asarray(page())
    assert load_input(array).pages[0].size == (400, 300)
    assert load_input(array[:, :, 0]).pages[0].mode == "RGB"  # grayscale array


def test_pdf_pages_render_at_the_configured_dpi() -> None:
    data = pdf_bytes(3)
    loaded = load_input(data)
    assert [p.size for p in loaded.pages] == [(1112, 834)] * 3  # 400x300 pt at 200 dpi, rounded up
    assert load_input(data, ImageLimits(pdf_dpi=72)).pages[0].size == (400, 300)


def test_pdf_multi_page_document_has_one_page_per_pdf_page(tmp_path: Path) -> None:
    path = tmp_path / "two.pdf"
    path.write_bytes(pdf_bytes(2))
    doc = FakeEngine().read(path)
    assert [p.index for p in doc.pages] == [0, 1]
    assert [line.id for line in doc.lines] == ["p0-l0", "p1-l0"]
    assert "--- page 2 of 2 ---" in doc.text()


def test_huge_pdf_page_is_rendered_smaller_not_refused() -> None:
    loaded = load_input(pdf_bytes(1), ImageLimits(max_pixels=200_000))
    width, height = loaded.pages[0].size
    assert width * height <= 200_000 and width > 400


def test_tiff_frames_are_pages() -> None:
    frames = [page(f"frame {n}", colour=colour) for n, colour in enumerate(["white", "#eeeeee", "#dddddd"])]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    loaded = load_input(data)
    assert len(loaded.pages) == 3
    assert [p.getpixel((0, 0)) for p in loaded.pages] == [(255, 255, 255), (238, 238, 238), (221, 221, 221)]


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (200, 100), "white")
    image.paste((255, 0, 0), (0, 0, 100, 100))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    upright = load_input(data).pages[0]
    assert upright.size == (100, 200)
    red, green, _blue = upright.getpixel((50, 20))  # type: ignore[misc]
    assert red > 200 and green < 60  # the red half is now on top


def test_transparent_background_becomes_white_and_16_bit_is_stretched() -> None:
    rgba = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).text((5, 5), "x", fill=(0, 0, 0, 255))
    assert load_input(encode(rgba, "PNG")).pages[0].getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((20, 20), 4000, dtype=np.uint16))
    deep.putpixel((0, 0), 0)
    assert load_input(encode(deep, "PNG")).pages[0].getpixel((5, 5)) == (255, 255, 255)


def test_a_blank_page_among_others_is_a_warning() -> None:
    frames = [page("text"), Image.new("RGB", (400, 300), "white")]
    loaded = load_input(encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]))
    assert loaded.warnings == ["page 2 is blank"]


def bomb_png() -> bytes:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


BAD_INPUTS = [
    ("text file", b"just some text, not an image", UnsupportedInputError, "not an image"),
    ("ico", encode(page(size=(32, 32)), "ICO"), UnsupportedInputError, "ICO image"),
    ("truncated png", encode(page(), "PNG")[:300], CorruptImageError, "cannot be decoded"),
    ("truncated jpeg", encode(page(), "JPEG")[:400], CorruptImageError, "cannot be decoded"),
    ("png magic, garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, CorruptImageError, "cannot be decoded"),
    ("pdf magic, garbage", b"%PDF-1.7\n garbage", CorruptImageError, "not a readable PDF"),
    ("zero bytes", b"", EmptyImageError, "empty"),
    ("blank image", encode(Image.new("RGB", (300, 200), "white"), "PNG"), EmptyImageError, "blank"),
    ("decompression bomb", bomb_png(), ImageTooLargeError, "decompression bomb|over the limit"),
]


@pytest.mark.parametrize(("case", "data", "error", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_get_typed_errors_with_hints(case: str, data: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words) as info:
        FakeEngine().read(data)
    assert isinstance(info.value, InputError)
    assert info.value.hint and "hint:" in str(info.value)


def test_limits_are_configurable() -> None:
    with pytest.raises(ImageTooLargeError, match="over the limit of 10000"):
        load_input(encode(page(), "PNG"), ImageLimits(max_pixels=10_000))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        load_input(encode(page(), "PNG"), ImageLimits(max_bytes=100))
    with pytest.raises(TooManyPagesError, match="3 pages, over the limit of 2"):
        load_input(pdf_bytes(3), ImageLimits(max_pages=2))
    frames = [page(str(n)) for n in range(3)]
    with pytest.raises(TooManyPagesError):
        load_input(encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]), ImageLimits(max_pages=2))
    engine = FakeEngine(limits=ImageLimits(max_pixels=10_000))
    with pytest.raises(ImageTooLargeError):
        engine.read(page())


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        load_input(tmp_path / "missing.png")
    with pytest.raises(UnsupportedInputError, match="directory"):
        load_input(tmp_path)
    with pytest.raises(UnsupportedInputError, match="Cannot read a int"):
        load_input(42)  # type: ignore[arg-type]
    with pytest.raises(EmptyImageError):
        load_input(np.zeros((0, 10, 3), dtype=np.uint8))
    with pytest.raises(UnsupportedInputError, match="dtype float64"):
        load_input(np.zeros((10, 10, 3)))
    with pytest.raises(UnsupportedInputError, match="shape"):
        load_input(np.zeros((10, 10, 5), dtype=np.uint8))
    with pytest.raises(EmptyImageError):
        load_input(Image.new("RGB", (0, 0)))
    with pytest.raises(EmptyImageError, match="blank"):
        load_input(np.full((10, 10, 3), 255, dtype=np.uint8))


def test_pdf_without_pypdfium2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "chatocr\[pdf\]"'):
        load_input(pdf_bytes(1))


@pytest.mark.filterwarnings("ignore:(Corrupt EXIF data|Truncated File Read):UserWarning")  # PIL on cut TIFFs
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "PDF"])
def test_any_truncation_is_an_input_error_or_a_page(fmt: str) -> None:
    """Cut a real file at many points: each result is pages or an InputError, nothing else."""
    data = (SROIE / "images" / "X00016469612.jpg").read_bytes() if fmt == "JPEG" else encode(page(), fmt)
    for cut in sorted({1, 2, 8, 16, 33, 100, len(data) // 3, len(data) // 2, len(data) - 10, len(data) - 1}):
        try:
            loaded = load_input(data[:cut])
        except InputError:
            continue
        assert loaded.pages and all(p.mode == "RGB" for p in loaded.pages)
