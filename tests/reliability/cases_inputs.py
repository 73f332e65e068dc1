"""Corpus cases: images, PDFs, text and pre-OCR'd JSON, scenario YAML."""

from __future__ import annotations

import io
import json
import os
import random

import numpy as np
from PIL import Image, ImageDraw

from chatocr.errors import (
    CorruptImageError,
    DocumentTooLargeError,
    EmptyImageError,
    EncryptedInputError,
    ImageTooLargeError,
    InputError,
    ScenarioError,
    TooManyPagesError,
    UnsupportedInputError,
)
from chatocr.ocr.images import ImageLimits, load_input
from chatocr.ocr.layout import MAX_LINES_PER_PAGE
from chatocr.ocr.text import MAX_TEXT_BYTES, TextEngine
from chatocr.scenarios.loader import MAX_SCENARIO_BYTES, load_scenario_file, load_scenario_text, load_scenarios
from tests.reliability.harness import Ctx, case, raises


def png(width: int = 120, height: int = 40, text: str = "TOTAL 9.00", mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height), "white" if mode == "RGB" else 255)
    ImageDraw.Draw(image).text((5, 5), text, fill="black" if mode == "RGB" else 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf(objects: list[str], trailer: str = "") -> bytes:
    """A minimal PDF with a correct cross-reference table."""
    out = b"%PDF-1.7\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    ids = "<00112233445566778899aabbccddeeff>"
    out += (
        f"trailer\n<</Root 1 0 R /Size {len(objects) + 1} /ID[{ids}{ids}]{trailer}>>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


def pdf_pages(count: int) -> bytes:
    kids = " ".join(f"{n + 3} 0 R" for n in range(count))
    pages = ["<</MediaBox[0 0 200 200]/Parent 2 0 R /Resources<<>>/Type/Page>>" for _ in range(count)]
    return pdf(["<</Pages 2 0 R /Type/Catalog>>", f"<</Count {count}/Kids[{kids}]/Type/Pages>>", *pages])


# ---- images and PDFs ---------------------------------------------------------------------------


@case("image", "EmptyImageError for a zero-byte file")
def empty_file(ctx: Ctx) -> None:
    raises(EmptyImageError, lambda: load_input(ctx.file("empty.png", b"")))


@case("image", "UnsupportedInputError for random bytes named .png")
def random_bytes(ctx: Ctx) -> None:
    # Seeded, so that it repeats: with fresh bytes this case failed once in a full run and never in
    # 3,000 draws alone.
    noise = random.Random(512).randbytes(512).replace(b"\x89", b"x")
    raises(UnsupportedInputError, lambda: load_input(ctx.file("noise.png", noise)))


@case("image", "CorruptImageError for a truncated PNG")
def truncated_png(ctx: Ctx) -> None:
    raises(CorruptImageError, lambda: load_input(ctx.file("cut.png", png()[:60])))


@case("image", "CorruptImageError for a PNG signature alone")
def png_signature_only(ctx: Ctx) -> None:
    raises(CorruptImageError, lambda: load_input(ctx.file("sig.png", b"\x89PNG\r\n\x1a\n")))


@case("image", "CorruptImageError for a truncated JPEG")
def truncated_jpeg(ctx: Ctx) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="JPEG")
    raises(CorruptImageError, lambda: load_input(buffer.getvalue()[:100]))


@case("image", "EmptyImageError for a blank (one-colour) image")
def blank_image(ctx: Ctx) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (50, 50), "white").save(buffer, format="PNG")
    raises(EmptyImageError, lambda: load_input(buffer.getvalue()), contains="blank")


@case("image", "ImageTooLargeError over the pixel limit (the decompression-bomb guard)")
def pixel_bomb(ctx: Ctx) -> None:
    raises(ImageTooLargeError, lambda: load_input(png(400, 300), ImageLimits(max_pixels=10_000)))


@case("image", "ImageTooLargeError for a file over the byte limit, before decoding")
def byte_limit(ctx: Ctx) -> None:
    path = ctx.file("big.png", png())
    raises(ImageTooLargeError, lambda: load_input(path, ImageLimits(max_bytes=100)))


@case("image", "TooManyPagesError for a TIFF over the page limit")
def tiff_pages(ctx: Ctx) -> None:
    frames = [Image.open(io.BytesIO(png(text=f"page {n}"))).convert("RGB") for n in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    raises(TooManyPagesError, lambda: load_input(buffer.getvalue(), ImageLimits(max_pages=2)))


@case("image", "UnsupportedInputError for an image format chatocr does not read (ICO)")
def ico_format(ctx: Ctx) -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png(32, 32, "x"))).save(buffer, format="ICO")
    raises(UnsupportedInputError, lambda: load_input(buffer.getvalue()))


@case("image", "UnsupportedInputError for a directory given as the image")
def directory_input(ctx: Ctx) -> None:
    (ctx.tmp / "folder.png").mkdir()
    raises(UnsupportedInputError, lambda: load_input(ctx.tmp / "folder.png"), contains="directory")


@case("image", "UnsupportedInputError for a FIFO, at once (opening it must not wait for a writer)")
def fifo_image(ctx: Ctx) -> None:
    path = ctx.tmp / "pipe.png"
    os.mkfifo(path)
    raises(UnsupportedInputError, lambda: load_input(path), contains="not a regular file")


@case("image", "InputError 'No such file' for a missing path")
def missing_image(ctx: Ctx) -> None:
    raises(InputError, lambda: load_input(ctx.tmp / "nope.png"), contains="no such file")


@case("image", "InputError for a dangling symlink")
def dangling_link(ctx: Ctx) -> None:
    link = ctx.tmp / "gone.png"
    link.symlink_to(ctx.tmp / "deleted.png")
    raises(InputError, lambda: load_input(link))


@case("image", "UnsupportedInputError for a float array (uint8 pixels expected)")
def float_array(ctx: Ctx) -> None:
    raises(UnsupportedInputError, lambda: load_input(np.zeros((10, 10, 3), dtype=np.float32)), contains="dtype")


@case("image", "UnsupportedInputError for a 4-D array")
def four_d_array(ctx: Ctx) -> None:
    raises(UnsupportedInputError, lambda: load_input(np.zeros((2, 10, 10, 3), dtype=np.uint8)), contains="shape")


@case("image", "EmptyImageError for an array with no pixels")
def empty_array(ctx: Ctx) -> None:
    raises(EmptyImageError, lambda: load_input(np.zeros((0, 10, 3), dtype=np.uint8)))


@case("image", "UnsupportedInputError for an object that is no image at all")
def not_an_image_object(ctx: Ctx) -> None:
    raises(UnsupportedInputError, lambda: load_input(42))  # type: ignore[arg-type]


@case("image", "a 16-bit grayscale PNG is read (stretched to 8 bits), not refused")
def sixteen_bit_png(ctx: Ctx) -> None:
    array = np.zeros((40, 120), dtype=np.uint16)
    array[10:30, 10:110] = 60000
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    loaded = load_input(buffer.getvalue())
    assert loaded.pages[0].mode == "RGB" and loaded.pages[0].getextrema()[0] == (0, 255)


@case("pdf", "EncryptedInputError that says 'password-protected' and hints how to decrypt")
def encrypted_pdf(ctx: Ctx) -> None:
    body = pdf_pages(1)
    encrypted = pdf(
        [
            "<</Pages 2 0 R /Type/Catalog>>",
            "<</Count 1/Kids[ 3 0 R ]/Type/Pages>>",
            "<</MediaBox[ 0 0 200 200]/Parent 2 0 R /Resources<<>>/Type/Page>>",
            "<</Filter/Standard/V 1/R 2/O<" + "ab" * 32 + ">/U<" + "cd" * 32 + ">/P -4>>",
        ],
        " /Encrypt 4 0 R",
    )
    assert body != encrypted
    raises(
        EncryptedInputError,
        lambda: load_input(ctx.file("locked.pdf", encrypted)),
        contains="password",
        hint_has="decrypt",
        hint_lacks="damaged",
    )


@case("pdf", "EmptyImageError 'a PDF with no pages' (not 'PDFium: Success', not 'damaged')")
def zero_page_pdf(ctx: Ctx) -> None:
    error = raises(
        EmptyImageError,
        lambda: load_input(ctx.file("none.pdf", pdf_pages(0))),
        contains="no pages",
        hint_lacks="damaged",
    )
    assert "Success" not in str(error)


@case("pdf", "CorruptImageError for a PDF header followed by garbage")
def garbage_pdf(ctx: Ctx) -> None:
    raises(CorruptImageError, lambda: load_input(b"%PDF-1.4\n" + os.urandom(300)))


@case("pdf", "CorruptImageError for a PDF cut in half")
def truncated_pdf(ctx: Ctx) -> None:
    whole = pdf_pages(1)
    raises(CorruptImageError, lambda: load_input(whole[: len(whole) // 3]))


@case("pdf", "TooManyPagesError for a PDF over the page limit")
def pdf_page_limit(ctx: Ctx) -> None:
    raises(TooManyPagesError, lambda: load_input(pdf_pages(3), ImageLimits(max_pages=2)))


@case("pdf", "EmptyImageError for a PDF whose only page is blank")
def blank_pdf(ctx: Ctx) -> None:
    raises(EmptyImageError, lambda: load_input(pdf_pages(1)), contains="blank")


# ---- text and pre-OCR'd JSON -------------------------------------------------------------------

TEXT = TextEngine()
TEXT_HINT = "JSON array of {'text', 'box'}"


def text_error(ctx: Ctx, name: str, content: bytes | str, kind: type = UnsupportedInputError, **checks: str) -> None:
    path = ctx.file(name, content)
    raises(kind, lambda: TEXT.read(path), **checks)


@case("text", "EmptyImageError for an empty text file")
def empty_text(ctx: Ctx) -> None:
    text_error(ctx, "empty.txt", "", EmptyImageError)


@case("text", "EmptyImageError for whitespace only")
def whitespace_text(ctx: Ctx) -> None:
    text_error(ctx, "blank.txt", " \n\t\n  \n", EmptyImageError)


@case("text", "UnsupportedInputError 'not UTF-8 text'")
def latin1_text(ctx: Ctx) -> None:
    text_error(ctx, "latin.txt", "caf\xe9 \xff\xfe".encode("latin-1"), contains="not UTF-8")


@case("text", "UnsupportedInputError with the text-format hint for JSON that does not parse")
def broken_json(ctx: Ctx) -> None:
    text_error(ctx, "broken.json", '[{"text": "a", "box": [1, 2', hint_has=TEXT_HINT, hint_lacks="PNG")


@case("text", "UnsupportedInputError (no RecursionError) for 100,000 nested '['")
def deep_brackets(ctx: Ctx) -> None:
    text_error(ctx, "deep.json", "[" * 100_000 + "]" * 100_000, contains="nested too deeply")


@case("text", "UnsupportedInputError (no RecursionError) for 100,000 nested '[' never closed")
def deep_unclosed(ctx: Ctx) -> None:
    text_error(ctx, "deep2.json", "[" * 100_000)


@case("text", "UnsupportedInputError with the text hint (not 'Give a PNG') for a NaN box coordinate")
def nan_box(ctx: Ctx) -> None:
    text_error(
        ctx,
        "nan.json",
        '[{"text": "TOTAL", "box": [NaN, 0, 10, 10]}]',
        contains="finite",
        hint_has=TEXT_HINT,
        hint_lacks="PNG",
    )


@case("text", "UnsupportedInputError for an Infinity coordinate")
def infinite_box(ctx: Ctx) -> None:
    text_error(ctx, "inf.json", '[{"text": "TOTAL", "box": [0, 0, Infinity, 10]}]', contains="finite")


@case("text", "UnsupportedInputError for a coordinate far beyond any page (1e9 px)")
def huge_coordinate(ctx: Ctx) -> None:
    text_error(ctx, "far.json", '[{"text": "TOTAL", "box": [0, 0, 1e9, 10]}]')


@case("text", "UnsupportedInputError for a box of three numbers")
def short_box(ctx: Ctx) -> None:
    text_error(ctx, "short.json", '[{"text": "TOTAL", "box": [0, 0, 10]}]', contains="line 1")


@case("text", "UnsupportedInputError for a box of words")
def word_box(ctx: Ctx) -> None:
    text_error(ctx, "words.json", '[{"text": "TOTAL", "box": ["left", "top", "right", "bottom"]}]')


@case("text", "UnsupportedInputError for a box nested 500 deep")
def nested_box(ctx: Ctx) -> None:
    text_error(ctx, "nestbox.json", '[{"text": "T", "box": ' + "[" * 500 + "1" + "]" * 500 + "}]")


@case("text", "UnsupportedInputError naming the keys for a line object without 'text'")
def no_text_key(ctx: Ctx) -> None:
    text_error(ctx, "notext.json", '[{"label": "TOTAL", "box": [0, 0, 10, 10]}]', contains="no 'text' key")


@case("text", "UnsupportedInputError for a confidence that is not a number")
def bad_confidence(ctx: Ctx) -> None:
    text_error(
        ctx, "conf.json", '[{"text": "TOTAL", "box": [0, 0, 10, 10], "confidence": "high"}]', contains="confidence"
    )


@case("text", "UnsupportedInputError for a NaN confidence")
def nan_confidence(ctx: Ctx) -> None:
    text_error(ctx, "nanconf.json", '[{"text": "TOTAL", "box": [0, 0, 10, 10], "score": NaN}]', contains="finite")


@case("text", "UnsupportedInputError for a PaddleOCR 2.x pair with a malformed second part")
def bad_paddle_pair(ctx: Ctx) -> None:
    text_error(ctx, "pair.json", '[[[0, 0, 10, 10], ["TOTAL", 0.9, "extra"]]]')


@case("text", "UnsupportedInputError for a chatocr OCR document with a NaN page width")
def bad_ocr_document(ctx: Ctx) -> None:
    text_error(
        ctx,
        "doc.json",
        json.dumps({"engine": "rapid", "pages": [{"index": 0, "width": "NaN", "height": 10, "lines": []}]}).replace(
            '"NaN"', "NaN"
        ),
    )


@case("text", "UnsupportedInputError for a chatocr OCR document whose pages are not a list")
def ocr_document_pages_text(ctx: Ctx) -> None:
    text_error(ctx, "doc2.json", '{"engine": "rapid", "pages": "three"}', contains="not a valid chatocr")


@case("text", "UnsupportedInputError for a chatocr OCR document with a NaN box")
def ocr_document_nan_box(ctx: Ctx) -> None:
    line = {"id": "p0-l0", "text": "T", "box": [[0, 0], [1, 0], [1, 1], [0, 1]], "confidence": 1}
    data = json.dumps({"engine": "rapid", "pages": [{"index": 0, "width": 10, "height": 10, "lines": [line]}]})
    text_error(ctx, "doc3.json", data.replace("[0, 0]", "[NaN, 0]", 1), contains="finite")


@case("text", "UnsupportedInputError for PaddleOCR 3.x rec_texts that is not a list")
def rec_texts_not_list(ctx: Ctx) -> None:
    text_error(ctx, "p3.json", '{"rec_texts": 5}', contains="rec_texts")


@case("text", "UnsupportedInputError for a JSON Lines file with one broken line")
def broken_jsonl(ctx: Ctx) -> None:
    text_error(ctx, "lines.jsonl", '{"text": "A", "box": [0,0,1,1]}\n{"text": "B", "box": [0,0\n')


@case("text", "UnsupportedInputError for a JSON list of numbers")
def list_of_numbers(ctx: Ctx) -> None:
    text_error(ctx, "numbers.json", "[1, 2, 3]", contains="cannot read a line")


@case("text", "UnsupportedInputError for a FIFO, at once")
def fifo_text(ctx: Ctx) -> None:
    path = ctx.tmp / "pipe.txt"
    os.mkfifo(path)
    raises(UnsupportedInputError, lambda: TEXT.read(path), contains="not a regular file")


@case("text", "UnsupportedInputError: the text engine does not read images")
def text_engine_image(ctx: Ctx) -> None:
    raises(UnsupportedInputError, lambda: TEXT.read(Image.new("RGB", (5, 5))), hint_has="image engine")


@case("text", f"DocumentTooLargeError for more than {MAX_LINES_PER_PAGE} lines, before any layout work")
def too_many_lines(ctx: Ctx) -> None:
    text_error(ctx, "many.txt", "x\n" * (MAX_LINES_PER_PAGE + 1), DocumentTooLargeError, contains="limit")


@case("text", f"DocumentTooLargeError for pre-OCR'd JSON of more than {MAX_LINES_PER_PAGE} lines")
def too_many_json_lines(ctx: Ctx) -> None:
    text_error(ctx, "many.json", json.dumps(["x"] * (MAX_LINES_PER_PAGE + 1)), DocumentTooLargeError)


@case("text", f"DocumentTooLargeError for a text file over {MAX_TEXT_BYTES} bytes, before it is parsed")
def too_many_bytes(ctx: Ctx) -> None:
    text_error(ctx, "huge.txt", b"a" * (MAX_TEXT_BYTES + 1), DocumentTooLargeError, contains="bytes")


@case("text", "20,000 lines (740 KB) are read and laid out (O(n log n) grouping), not refused")
def twenty_thousand_lines(ctx: Ctx) -> None:
    rows = [
        {"text": f"item {n} 9.00", "box": [10 + (n % 3) * 300, (n // 3) * 24, 200 + (n % 3) * 300, (n // 3) * 24 + 20]}
        for n in range(20_000)
    ]
    document = TEXT.read(ctx.file("twenty.json", json.dumps(rows)))
    assert len(document.lines) == 20_000 and document.text().count("\n") == 20_000 // 3 - 1 + (20_000 % 3 > 0)


@case("text", "mixed lines with and without boxes get synthetic boxes (has_boxes False), not an error")
def mixed_boxes(ctx: Ctx) -> None:
    document = TEXT.read(ctx.file("mixed.json", '[{"text": "A", "box": [0,0,5,5]}, "B"]'))
    assert not document.has_boxes and [line.text for line in document.lines] == ["A", "B"]


# ---- scenario YAML -----------------------------------------------------------------------------

SCENARIO = """\
name: shop
title: Shop receipt
language: en
description: A shop's receipt.
fields:
  - name: total
    type: amount
    description: the total paid
examples:
  - text: "TOTAL 9.00"
    answer: {total: "9.00"}
"""


def scenario_error(ctx: Ctx, text: str, *contains: str) -> None:
    path = ctx.file("scenario.yaml", text)
    error = raises(ScenarioError, lambda: load_scenario_file(path))
    for piece in contains:
        assert piece in str(error), str(error)


@case("yaml", "the reference scenario loads (the corpus's positive control)")
def good_scenario(ctx: Ctx) -> None:
    assert load_scenario_text(SCENARIO).name == "shop"


@case("yaml", "ScenarioError for a billion-laughs alias bomb, at once")
def alias_bomb(ctx: Ctx) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 9):
        ref = f"*{chr(96 + n)}"
        lines.append(f"{chr(97 + n)}: &{chr(97 + n)} [{','.join([ref] * 9)}]")
    scenario_error(ctx, SCENARIO + "\n".join(lines) + "\n", "expands to more than")


@case("yaml", "ScenarioError for a recursive alias")
def recursive_alias(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO + "loop: &loop [*loop]\n", "contains itself")


@case("yaml", "ScenarioError naming both lines for a duplicate top-level key")
def duplicate_top_key(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO + "title: Again\n", "duplicate key 'title'", "line 2", "line 12")


@case("yaml", "ScenarioError naming both lines for a field's description given twice")
def duplicate_field_key(ctx: Ctx) -> None:
    scenario_error(
        ctx,
        SCENARIO.replace(
            "    description: the total paid\n", "    description: the total paid\n    description: the sum\n"
        ),
        "duplicate key 'description'",
        "line 8",
        "line 9",
    )


@case("yaml", "ScenarioError for a duplicate key inside an example's answer")
def duplicate_answer_key(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO.replace('{total: "9.00"}', '{total: "9.00", total: "8.00"}'), "duplicate key 'total'")


@case("yaml", f"ScenarioError for a file over {MAX_SCENARIO_BYTES} bytes, before it is parsed")
def huge_scenario(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO + "# " + "x" * MAX_SCENARIO_BYTES + "\n", "over the limit")


@case("yaml", "ScenarioError (no RecursionError) for 10,000 nested flow sequences")
def deep_yaml(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n", "nest")


@case("yaml", "ScenarioError with a line number for a tab-indented (invalid) file")
def tab_indent(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO.replace("  - name: total", "\t- name: total"), "scenario.yaml:")


@case("yaml", "ScenarioError for a file that is a list, not a mapping")
def list_scenario(ctx: Ctx) -> None:
    scenario_error(ctx, "- name: shop\n- title: x\n", "must be a mapping")


@case("yaml", "ScenarioError for an empty file")
def empty_scenario(ctx: Ctx) -> None:
    scenario_error(ctx, "", "must be a mapping")


@case("yaml", "ScenarioError with 'did you mean' for a typo in a key")
def typo_key(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO.replace("description:", "descripton:"), "did you mean 'description'")


@case("yaml", "ScenarioError with the line for a wrong type (fields: a string)")
def wrong_type(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO.split("fields:")[0] + "fields: total\n", "scenario.yaml:5")


@case("yaml", "ScenarioError for an example whose answer misses a field")
def answer_misses_field(ctx: Ctx) -> None:
    text = SCENARIO.replace("examples:", "  - name: date\n    type: date\nexamples:")
    scenario_error(ctx, text, "date")


@case("yaml", "ScenarioError for a scenario that is not UTF-8")
def not_utf8_scenario(ctx: Ctx) -> None:
    path = ctx.file("latin.yaml", SCENARIO.replace("Shop receipt", "Caf\xe9").encode("latin-1"))
    raises(ScenarioError, lambda: load_scenario_file(path), contains="not UTF-8")


@case("yaml", "ScenarioError for a control character YAML refuses")
def control_character(ctx: Ctx) -> None:
    scenario_error(ctx, SCENARIO.replace("Shop receipt", "Shop\x07receipt"), "scenario.yaml")


@case("yaml", "ScenarioError (never code execution) for a !!python/object tag")
def python_tag(ctx: Ctx) -> None:
    marker = ctx.tmp / "pwned"
    scenario_error(ctx, SCENARIO + f'x: !!python/object/apply:os.system ["touch {marker}"]\n', "scenario.yaml")
    assert not marker.exists()


@case("yaml", "ScenarioError for a scenario path that is a directory")
def directory_scenario(ctx: Ctx) -> None:
    (ctx.tmp / "dir.yaml").mkdir()
    raises(ScenarioError, lambda: load_scenario_file(ctx.tmp / "dir.yaml"), contains="cannot read")


@case("yaml", "ScenarioError listing every broken file of a scenario folder at once")
def folder_of_broken(ctx: Ctx) -> None:
    ctx.file("scen/a.yaml", SCENARIO + "title: twice\n")
    ctx.file("scen/b.yaml", "- not a mapping\n")
    error = raises(ScenarioError, lambda: load_scenarios([ctx.tmp / "scen"], include_builtin=False, include_env=False))
    assert len(error.problems) == 2  # type: ignore[attr-defined]
