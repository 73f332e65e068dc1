"""The `text` engine: pre-OCR'd input in the formats other tools write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from chatocr.errors import InputError
from chatocr.ocr import EmptyImageError, UnsupportedInputError, get_ocr_engine
from chatocr.ocr.text import TextEngine

from ..conftest import shared_data
from .helpers import SROIE, document, rect


def read(content: str | bytes) -> object:
    return TextEngine().read(content.encode() if isinstance(content, str) else content)


def test_sroie_ground_truth_with_8_number_boxes() -> None:
    doc = TextEngine().read(SROIE / "ocr" / "X00016469612.json")
    assert doc.has_boxes and doc.engine == "text"
    first = doc.lines[0]
    assert first.id == "p0-l0" and first.text == "TAN WOON YANN"
    assert first.box == ((72.0, 25.0), (326.0, 25.0), (326.0, 64.0), (72.0, 64.0))
    assert "Total :" in doc.text() or "TOTAL" in doc.text().upper()
    assert doc.pages[0].width >= 326 and doc.sha256 is not None


def test_funsd_style_4_number_boxes_and_extra_keys() -> None:
    content = json.dumps([{"text": "DATE:", "box": [102, 406, 147, 423], "entity_label": "question"}])
    doc = TextEngine().read(content.encode())
    assert doc.lines[0].box == ((102.0, 406.0), (147.0, 406.0), (147.0, 423.0), (102.0, 423.0))


def test_shared_data_ocr_files_all_parse() -> None:
    for folder in ("sroie_train", "funsd"):
        for path in sorted(shared_data(folder, "ocr").glob("*.json"))[:10]:
            doc = TextEngine().read(path)
            assert doc.has_boxes and doc.lines, path


def test_json_lines_with_points_and_scores() -> None:
    content = (
        '{"text": "金额：", "points": [[0,0],[60,0],[60,20],[0,20]], "score": 0.8}\n'
        '{"text": "¥8,490.57", "points": [[200,0],[380,0],[380,20],[200,20]], "score": 0.95}\n'
    )
    doc = TextEngine().read(content.encode())
    assert [line.confidence for line in doc.lines] == [0.8, 0.95]
    assert doc.text().startswith("金额：") and doc.text().endswith("¥8,490.57")


def test_paddleocr_2_pairs_and_paddleocr_3_result() -> None:
    pairs = [[[[0, 0], [60, 0], [60, 20], [0, 20]], ["Total", 0.9]]]
    assert TextEngine().read(json.dumps(pairs).encode()).lines[0].text == "Total"
    result = {"rec_texts": ["a", "b"], "rec_scores": [0.5, 0.6], "rec_polys": [rect(0, 0, 9, 9), rect(0, 20, 9, 29)]}
    doc = TextEngine().read(json.dumps(result).encode())
    assert [line.text for line in doc.lines] == ["a", "b"] and doc.has_boxes


def test_plain_text_gets_synthetic_boxes_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "receipt.txt"
    path.write_text("\ufeffSHOP NAME\n\nTotal: 9.00\n", encoding="utf-8")
    doc = get_ocr_engine("text").read(path)
    assert not doc.has_boxes
    assert doc.text() == "SHOP NAME\nTotal: 9.00"
    assert [line.id for line in doc.lines] == ["p0-l0", "p0-l1"]


def test_chatocr_document_json_round_trips_through_the_text_engine() -> None:
    original = document(("x", rect(0, 0, 9, 9)), engine="rapid")
    again = TextEngine().read(json.dumps(original.to_dict()).encode())
    assert again == original


def test_an_ocr_document_passes_through() -> None:
    original = document(("x", rect(0, 0, 9, 9)))
    assert TextEngine().read(original) is original


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        (b"", EmptyImageError, "no text"),
        (b"   \n  ", EmptyImageError, "no text"),
        (b'[{"text": "a", "box": [1, 2', UnsupportedInputError, "does not parse"),
        (b'[{"txt": "a"}]', UnsupportedInputError, "no 'text' key"),
        (b'[{"text": "a", "box": [1, 2, 3]}]', UnsupportedInputError, "a box needs"),
        (b"\xff\xd8\xff\xe0 binary", UnsupportedInputError, "not UTF-8"),
        (b'{"pages": [], "engine": "x", "format": 99}', UnsupportedInputError, "not a valid chatocr"),
    ],
)
def test_bad_text_input(content: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words) as info:
        TextEngine().read(content)
    assert isinstance(info.value, InputError) and info.value.hint


def test_images_and_missing_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="not images"):
        TextEngine().read(Image.new("RGB", (4, 4)))
    with pytest.raises(InputError, match="Cannot read"):
        TextEngine().read(tmp_path / "missing.json")
