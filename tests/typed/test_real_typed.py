"""Typed extraction for real: the receipt of docs/typed.md (SROIE X00016469612) through RapidOCR and
the local Qwen model, as samples/typed_models.py's Receipt with its line items. Slow (one LLM call:
~10-30 s on an idle 2-core machine; 205 s when it was written, under a load average of 7.5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from chatocr import ChatOCR
from chatocr.typed.loading import load_schema

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "tests" / "fixtures" / "sroie" / "images" / "X00016469612.jpg"


@pytest.mark.slow
def test_a_real_receipt_as_a_typed_model_with_line_items(tmp_path: Path) -> None:
    schema = load_schema(f"{REPO / 'samples' / 'typed_models.py'}:Receipt")
    ocr = ChatOCR(llm="local", ocr="rapid", ocr_cache_dir=str(tmp_path / "ocr"))
    result = ocr.extract(IMAGE, schema=schema, scenario="retail_receipt")
    assert result.ok, result.error
    receipt = result.data
    assert receipt is not None, result.errors
    assert receipt.total == Decimal("9.00") and receipt.date == dt.date(2018, 12, 25)  # type: ignore[attr-defined]
    assert "TAMAN DAYA" in receipt.company  # type: ignore[attr-defined]
    items = receipt.items  # type: ignore[attr-defined]
    assert [i.amount for i in items] == [Decimal("9.00")] and "MODELLING CLAY" in items[0].description
    leaf = result.provenance["items[0].description"]
    assert leaf.status == "grounded" and leaf.evidence and len(leaf.evidence[0].box) == 4
    assert result.schema is not None and result.schema["name"] == "Receipt"
