"""Receipts of countries SROIE lacks, for real: written here (invented), read by RapidOCR and
answered by the local Qwen model. What they check is what a Malaysian receipt never asks: an
American month-first date with its time right after it, and a German total with a decimal comma.
Slow (about 10-30 s each on 2 cores); CI runs them.

benchmarks/make_receipt_set.py makes sets of such receipts for `chatocr eval` (docs/evaluation.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageFilter

from chatocr import ChatOCR
from chatocr.extraction.result import Extraction
from tests.ocr.helpers import render

AMERICAN = [
    (40, 30, "COPPER KETTLE BAKERY"),
    (40, 80, "2300 Pacific Hwy, Suite 4"),
    (40, 130, "San Diego, CA 92101"),
    (40, 180, "9/11/26  11:43 AM"),
    (380, 180, "Trans #97984"),
    (40, 240, "Blueberry Muffin"),
    (420, 240, "$2.95"),
    (40, 290, "2 x Coffee 12oz"),
    (420, 290, "$7.50"),
    (40, 340, "Subtotal"),
    (420, 340, "$10.45"),
    (40, 390, "Sales Tax"),
    (420, 390, "$0.84"),
    (40, 440, "TOTAL"),
    (420, 440, "$11.29"),
    (40, 490, "VISA ****4417"),
    (420, 490, "$11.29"),
]

GERMAN = [
    (40, 30, "Getränkemarkt Nord GmbH"),
    (40, 80, "Königsallee 27"),
    (40, 130, "40212 Düsseldorf"),
    (40, 180, "Datum: 05.03.2026"),
    (360, 180, "Zeit: 17:20"),
    (40, 240, "Mineralwasser 12x1,0l"),
    (400, 240, "1.180,00 €"),
    (40, 290, "Pfand"),
    (400, 290, "54,56 €"),
    (40, 340, "SUMME"),
    (400, 340, "1.234,56 €"),
    (40, 390, "MwSt 19% enth."),
    (400, 390, "197,11 €"),
    (40, 440, "BAR"),
    (400, 440, "1.250,00 €"),
    (40, 490, "Rückgeld"),
    (400, 490, "15,44 €"),
]


def _extract(lines: list[tuple[int, int, str]], tmp_path: Path) -> Extraction:
    """A slightly tilted, softened photo of the lines, read with the receipt scenario's company, date and total."""
    image = render(lines, size=(600, 550), text_size=26).rotate(0.8, expand=True, fillcolor="white")
    path = tmp_path / "receipt.jpg"
    image.filter(ImageFilter.GaussianBlur(0.5)).save(path, quality=85)
    ocr = ChatOCR(llm="local", ocr="rapid", ocr_cache_dir=str(tmp_path / "ocr"))
    result = ocr.extract(path, keys=["company", "date", "total"], scenario="retail_receipt")
    assert result.ok, result.error
    return result


@pytest.mark.slow
def test_an_american_receipt_date_is_the_pages_own_text_without_its_time(tmp_path: Path) -> None:
    result = _extract(AMERICAN, tmp_path)
    date = result.fields["date"]
    # The page's `9/11/26`, whatever the model wrote (an ISO date, the OCR's glued time), and read
    # as one of its two meanings; never a year 2611.
    assert (date.value, date.status) == ("9/11/26", "grounded")
    assert date.normalized in ("2026-09-11", "2026-11-09")
    assert result.fields["total"].normalized == "11.29"


@pytest.mark.slow
def test_a_german_total_with_a_decimal_comma_is_read_as_printed(tmp_path: Path) -> None:
    result = _extract(GERMAN, tmp_path)
    total = result.fields["total"]
    # The page's own number, read with its decimal comma (before: only the model's `1234.56`, fuzzily grounded).
    assert (total.normalized, total.status) == ("1234.56", "grounded")
    assert total.value in ("1.234,56", "1.234,56 €")
    assert (result.fields["date"].value, result.fields["date"].normalized) == ("05.03.2026", "2026-03-05")
