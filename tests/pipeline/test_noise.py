"""A page whose OCR text is noise (a photo of a wall) gets missing fields and a warning, and no
model call: shown noise, the local model copies some of it as values, which grounding then finds
on the page. Short crops of real documents are no noise."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from chatocr import ChatOCR
from chatocr.extraction.noise import page_words
from chatocr.llm import RetryPolicy, ScriptedChatModel
from tests.ocr.helpers import font

# What RapidOCR read from a textured wall with scribbles on it (a session's photo-like image).
WALL_OCR = "=~v/xwz\n-x1xV        #Mz/=[z\\\n1=qvll\n##-q~q-x\nz/q|#x#=\n-1-1-1\nAZ /X#11\n*-z=_~\nx=#-_\n"
# What the local model answered for it, asked for a retail receipt's fields.
JUNK = '{"company": "v/xwz", "date": "1=qvll", "total": "-1-1-1"}'
KEYS = ["company", "date", "total"]


@pytest.mark.parametrize(
    "text",
    [WALL_OCR, "l\nII\n1\n一", "xwz\nqvll", "—\n|\n口\n~~"],
    ids=["scribbles", "strokes", "consonants", "cjk-strokes"],
)
def test_noise_is_told_from_text(text: str) -> None:
    assert page_words(text).noise


@pytest.mark.parametrize(
    "text",
    [
        "TOTAL 9.00",
        "8.20",
        "合计 ￥12.00",
        "Итого 120",
        "ST-LINK USB",
        "Tel: 03-5612 8804",
        "発行日 2024年3月15日",
        "A03050\nUNIHAKKA INTERNATIONAL SDN BHD",
        # a blurry photo: few words among OCR junk is still a document
        "~~ /// TOTAL ~~ #\n=- RM 12.50 -=\n|| DATE 01/02/2024 ||",
    ],
)
def test_short_crops_are_no_noise(text: str) -> None:
    assert not page_words(text).noise, page_words(text)


def make(script: list[str]) -> tuple[ChatOCR, ScriptedChatModel]:
    model = ScriptedChatModel(script, retry_policy=RetryPolicy(max_attempts=1))
    return ChatOCR(llm=model, ocr="text", ocr_cache=False), model


@pytest.mark.parametrize("scenario", ["retail_receipt", None])
def test_a_noise_page_asks_nothing_and_returns_missing_fields(scenario: str | None) -> None:
    ocr, model = make([JUNK, JUNK, JUNK])
    result = ocr.extract(WALL_OCR.encode(), keys=KEYS, scenario=scenario)
    assert result.ok and result.error is None
    assert model.calls == []  # neither the classifier nor the extraction was asked
    assert result.values == {}
    assert [f.status for f in result.fields.values()] == ["missing"] * 3
    assert all(f.problem == "the page holds no words" for f in result.fields.values())
    assert any("no words" in w for w in result.warnings)


def test_a_short_crop_is_still_asked() -> None:
    ocr, model = make(['{"total": "9.00"}'])
    result = ocr.extract(b"TOTAL        RM 9.00\n", keys=["total"], scenario="retail_receipt")
    assert len(model.calls) == 1
    assert result.values == {"total": "9.00"} and result.fields["total"].status == "grounded"


def _wall_with_scribbles() -> bytes:
    """A grey, blurred brick wall with strings of symbols and consonants drawn on it."""
    rng = random.Random(3)
    grain = np.random.default_rng(7).normal(128, 40, (900, 700, 3)).clip(0, 255).astype("uint8")
    image = Image.fromarray(grain).filter(ImageFilter.GaussianBlur(2))  # the same wall every run
    draw = ImageDraw.Draw(image)
    for y in range(0, 900, 60):
        draw.line([(0, y), (700, y)], fill=(90, 80, 70), width=6)
        for x in range(60 if (y // 60) % 2 == 0 else 0, 700, 120):
            draw.line([(x, y), (x, y + 60)], fill=(90, 80, 70), width=6)
    for _ in range(14):
        scribble = "".join(rng.choice("xvwzqkj~=/\\|-_*#") for _ in range(rng.randint(3, 9)))
        position = (rng.randint(0, 600), rng.randint(0, 850))
        draw.text(position, scribble, fill=(20, 20, 20), font=font(rng.randint(18, 34)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_photo_of_a_scribbled_wall_through_rapidocr() -> None:
    model = ScriptedChatModel([JUNK, JUNK, JUNK], retry_policy=RetryPolicy(max_attempts=1))
    ocr = ChatOCR(llm=model, ocr="rapid", ocr_cache=False)
    result = ocr.extract(_wall_with_scribbles(), keys=KEYS, scenario="retail_receipt")
    assert result.ocr is not None and result.ocr["lines"] > 0  # the OCR did read something
    assert model.calls == [] and result.values == {}
    assert all(f.status == "missing" for f in result.fields.values())
