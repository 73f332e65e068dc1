"""A scenario's checks run on field results (chatocr/extraction/checking.py), on a real SROIE
receipt's OCR: the page's rows come from the layout the model saw, values as the extraction
normalised them, evidence from grounding."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from chatocr.extraction.checking import checks_by_field, page_rows, run_checks
from chatocr.extraction.extractor import evaluate
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import FieldResult
from chatocr.ocr import get_ocr_engine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios import load_scenarios
from chatocr.scenarios.model import Scenario

RECEIPT = Path(__file__).resolve().parent.parent / "fixtures" / "sroie" / "ocr" / "X00016469612.json"
TODAY = date(2026, 12, 7)


@pytest.fixture(scope="module")
def receipt() -> OCRDocument:
    return get_ocr_engine("text").read(RECEIPT)


@pytest.fixture(scope="module")
def retail() -> Scenario:
    return load_scenarios(include_env=False).get("retail_receipt")


def _fields(scenario: Scenario, answer: dict[str, object], document: OCRDocument) -> dict[str, FieldResult]:
    specs = tuple(spec for spec in scenario.fields if spec.name in answer)
    results, _ = evaluate(specs, answer, document, TextIndex(document.layout()))
    return results


def test_page_rows_keep_a_label_and_its_value_on_one_row(receipt: OCRDocument) -> None:
    page = page_rows(receipt.layout())
    row, _ = page.locate("p0-l29")  # "9.00" after "TOTAL:"
    assert [line.text for line in page.rows[row]] == ["TOTAL:", "9.00"]
    left, right = page.rows[row]
    assert left.end <= right.start  # columns in the row's own display width


def test_the_right_total_passes_and_the_cash_fails(receipt: OCRDocument, retail: Scenario) -> None:
    page = page_rows(receipt.layout())
    right = _fields(retail, {"total": "9.00", "date": "25/12/2018"}, receipt)
    results = run_checks(retail, right, page, today=TODAY)
    assert [(r.name, r.passed) for r in results] == [("final_amount", True), ("date", True)]
    wrong = _fields(retail, {"total": "10.00", "date": "25/12/2018"}, receipt)
    cash = run_checks(retail, wrong, page, today=TODAY)[0]
    assert cash.passed is False
    assert cash.message == "total 10.00 is the CASH line; the final amount is ROUND D TOTAL (RM) 9.00"
    assert checks_by_field(run_checks(retail, wrong, page, today=TODAY)) == {
        "total": ([], ["final_amount"]),
        "date": (["date"], []),
    }


def test_keys_asked_by_alias_reach_their_checks(receipt: OCRDocument, retail: Scenario) -> None:
    page = page_rows(receipt.layout())
    results = _fields(retail, {"total": "10.00"}, receipt)
    by_alias = {"grand_total": results["total"]}
    (result,) = run_checks(retail, by_alias, page, today=TODAY)
    assert result.name == "final_amount" and result.passed is False


def test_checks_of_fields_not_asked_are_left_out_and_missing_values_skip(receipt: OCRDocument) -> None:
    vat = load_scenarios(include_env=False).get("vat_invoice")
    fields = {
        "amount": FieldResult("amount", "8490.57", "8490.57", status="grounded"),
        "tax_amount": FieldResult("tax_amount", None, status="missing"),
        "total_amount": FieldResult("total_amount", "9000.00", "9000.00", status="ungrounded"),
    }
    results = run_checks(vat, fields, None, today=TODAY)
    by_name = {r.name: r for r in results}
    assert set(by_name) == {"sum", "amount_in_words", "items_sum"}  # no code, number, tax id or date asked
    assert by_name["sum"].passed is None and "tax_amount" in by_name["sum"].message
    assert by_name["amount_in_words"].passed is None
    assert by_name["amount_in_words"].message == "total_amount_in_words not asked for"
    fields["tax_amount"] = FieldResult("tax_amount", "509.43", "509.43", status="grounded")
    assert {r.name: r.passed for r in run_checks(vat, fields, None, today=TODAY)}["sum"] is True


def test_signals_join_grounding_labels_checks_and_token_probabilities(receipt: OCRDocument, retail: Scenario) -> None:
    from chatocr.calibration import value_probabilities
    from chatocr.extraction.signals import field_signals

    answer = '{"total": "10.00", "date": "25/12/2018", "company": "MANIS"}'
    tokens = [(char, -1.5 if char == "1" else -0.01) for char in answer]
    fields = _fields(retail, {"total": "10.00", "date": "25/12/2018", "company": "MANIS"}, receipt)
    page = page_rows(receipt.layout())
    checks = run_checks(retail, fields, page, today=TODAY)
    signals = field_signals(retail, fields, page, checks, value_probabilities(answer, tokens))
    total = signals["total"]
    assert (total.status, total.match, total.label_score, total.conflict) == ("grounded", "exact", 0.0, "cash")
    assert total.checks_failed == ("final_amount",) and total.checked
    assert total.value_probability is not None and abs(total.value_probability - 0.2231) < 1e-3  # exp(-1.5)
    assert total.ocr_confidence is not None
    assert signals["date"].checks_passed == ("date",) and signals["date"].label == "date"
    assert signals["company"].conflict == "cashier" and not signals["company"].checked  # no check names it
    assert signals["company"].available == ("ocr_confidence", "match", "label", "value_probability")
    # without a page or token probabilities, those signals are unavailable, not zero
    bare = field_signals(retail, fields)
    assert bare["total"].available == ("ocr_confidence", "match")
