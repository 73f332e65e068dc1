"""Free-text answers grounded in the document (chatocr/extraction/answers.py), on a real SROIE
receipt's OCR: what an answer states is found, or flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatocr.extraction.answers import check_answer
from chatocr.ocr import get_ocr_engine
from chatocr.ocr.types import OCRDocument

RECEIPT = Path(__file__).resolve().parent.parent / "fixtures" / "sroie" / "ocr" / "X00016469612.json"


@pytest.fixture(scope="module")
def receipt() -> OCRDocument:
    return get_ocr_engine("text").read(RECEIPT)


def _verdicts(answer: str, document: OCRDocument) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.text, c.supported) for c in check_answer(answer, document).claims]


def test_a_number_tied_to_the_wrong_label_is_flagged(receipt: OCRDocument) -> None:
    check = check_answer("The total is RM9.00. The customer paid RM10.00 and received a change of RM9.00.", receipt)
    assert [(c.text, c.supported) for c in check.claims] == [("RM9.00", True), ("RM10.00", True), ("RM9.00", False)]
    wrong = check.unsupported[0]
    assert wrong.found and wrong.problem == "the document's CHANGE row says 1.00"
    assert [e.text for e in check.support] == ["9.00", "10.00"]  # the change's row is not support
    right = check_answer("The change was RM1.00.", receipt)
    assert right.unsupported == [] and right.support[0].text == "1.00"


def test_values_not_in_the_document_are_flagged(receipt: OCRDocument) -> None:
    assert _verdicts("The seller is SHOP XYZ SDN BHD and the total is RM12.50.", receipt) == [
        ("name", "SHOP XYZ SDN BHD", False),
        ("number", "RM12.50", False),
    ]
    # similar is not the same for numbers: 9.000 is on the receipt, 9.0001 and 25,000.00 are not
    assert _verdicts("It cost 9.0001, not 25,000.00", receipt) == [
        ("number", "9.0001", False),
        ("number", "25,000.00", False),
    ]


def test_names_codes_dates_times_and_quotes_are_found_with_their_lines(receipt: OCRDocument) -> None:
    answer = 'Sold by "TAN WOON YANN", document TD01167104, on 25/12/2018 at 8:13:39 PM, cashier MANIS; RM9 paid.'
    check = check_answer(answer, receipt)
    assert [(c.kind, c.text) for c in check.claims] == [
        ("quote", "TAN WOON YANN"),
        ("code", "TD01167104"),
        ("date", "25/12/2018"),
        ("time", "8:13:39 PM"),
        ("number", "RM9"),
    ]
    assert all(c.supported for c in check.claims), check.unsupported
    assert "DOCUMENT NO : TD01167104" in [e.text for e in check.support]
    assert check.claims[1].evidence[0].box  # the box of the line, to draw or show


def test_an_answer_with_nothing_to_check_has_no_claims(receipt: OCRDocument) -> None:
    check = check_answer("I cannot tell from this document.", receipt)
    assert check.claims == () and check.unsupported == [] and check.support == ()


def test_chinese_phrases_shared_with_the_document_are_support() -> None:
    text = "销售方：北京星辰科技有限公司\n价税合计 ¥1,130.00\n"
    document = get_ocr_engine("text").read(text.encode("utf-8"))
    check = check_answer("销售方是北京星辰科技有限公司，价税合计¥1,130.00，不是¥2,000.00。", document)
    assert [(c.text, c.supported) for c in check.claims] == [("¥1,130.00", True), ("¥2,000.00", False)]
    assert [e.text for e in check.support] == ["销售方：北京星辰科技有限公司", "价税合计 ¥1,130.00"]
