"""The product's main job for real: a SROIE receipt -> RapidOCR -> the local Qwen model -> grounded
JSON. Slow (about 20-60 s on 2 cores); CI runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatocr import ChatOCR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sroie"


@pytest.mark.slow
def test_real_receipt_real_ocr_real_local_model(tmp_path: Path) -> None:
    image = FIXTURES / "images" / "X00016469612.jpg"
    label = json.loads((FIXTURES / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    ocr = ChatOCR(llm="local", ocr="rapid", ocr_cache_dir=str(tmp_path / "ocr"))
    result = ocr.extract(image, keys=["company", "date", "total"])
    assert result.ok, result.error
    # Routed by the local pre-score, with the receipt scenario's own examples.
    assert result.route is not None and result.route.mode == "prescore"
    assert result.scenario == "retail_receipt"
    assert result.examples and result.ocr["engine"] == "rapid" and result.ocr["lines"] > 10
    # Every value checked against the OCR text and tied to a box on the image.
    for name in ("company", "date", "total"):
        field = result.fields[name]
        assert field.status == "grounded", (name, field)
        assert field.evidence and len(field.evidence[0].box) == 4
    assert result.fields["total"].normalized == label["total"]  # "9.00"
    assert result.fields["date"].normalized == "2018-12-25"  # label "25/12/2018"
    assert "TAMAN DAYA" in result.values["company"]
    assert result.usage["prompt_tokens"] > 0 and result.timings["llm_s"] > 0
    # The second run of the same image is served by the OCR cache.
    again = ocr.extract(image, keys=["total"], scenario="retail_receipt")
    assert again.ocr["cached"] is True and again.fields["total"].normalized == "9.00"
