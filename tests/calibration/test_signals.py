"""Label evidence on real pages (a SROIE receipt's OCR, the sample VAT invoice), and the
FieldSignals record."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatocr.calibration import FieldSignals, LabelEvidence, label_evidence
from chatocr.calibration.signals import meanings
from chatocr.checks import PageLine, PageRows
from chatocr.extraction.checking import page_rows
from chatocr.extraction.extractor import evaluate
from chatocr.extraction.grounding import TextIndex
from chatocr.ocr import get_ocr_engine
from chatocr.scenarios import load_scenarios
from chatocr.scenarios.model import FieldSpec, Scenario

REPO = Path(__file__).resolve().parents[2]
RECEIPT = REPO / "tests" / "fixtures" / "sroie" / "ocr" / "X00016469612.json"
INVOICE = REPO / "samples" / "invoice.txt"


@pytest.fixture(scope="module")
def library() -> dict[str, Scenario]:
    return {scenario.name: scenario for scenario in load_scenarios(include_env=False)}


def _labels(
    path: Path, scenario: Scenario, answer: dict[str, str]
) -> dict[str, tuple[float, str | None, float, str | None]]:
    document = get_ocr_engine("text").read(path)
    specs = tuple(spec for spec in scenario.fields if spec.name in answer)
    results, _ = evaluate(specs, answer, document, TextIndex(document.layout()))
    page = page_rows(document.layout())
    out = {}
    for name, result in results.items():
        spec = scenario.field(name)
        assert spec is not None
        evidence = label_evidence(spec, scenario.fields, page, [e.line_id for e in result.evidence], str(result.value))
        assert evidence is not None, name
        out[name] = (evidence.score, evidence.label, evidence.conflict_score, evidence.conflict)
    return out


def test_receipt_labels_and_what_rules_a_value_out(library: dict[str, Scenario]) -> None:
    retail = library["retail_receipt"]
    right = _labels(RECEIPT, retail, {"total": "9.00", "date": "25/12/2018", "receipt_number": "TD01167104"})
    assert right == {
        "total": (0.9, "total", 0.0, None),  # "TOTAL:" is the cell left of "9.00"
        "date": (0.9, "date", 0.0, None),
        "receipt_number": (1.0, "document no", 0.0, None),  # "DOCUMENT NO : TD01167104", one OCR line
    }
    wrong = _labels(RECEIPT, retail, {"total": "10.00", "company": "MANIS"})
    assert wrong == {"total": (0.0, None, 0.9, "cash"), "company": (0.0, None, 0.9, "cashier")}


def test_invoice_labels_on_lines_holding_two_pairs(library: dict[str, Scenario]) -> None:
    vat = library["vat_invoice"]
    labels = _labels(
        INVOICE,
        vat,
        {
            "invoice_code": "3300214130",
            "invoice_number": "05281746",  # on the same line as the code: its own label is the nearer one
            "buyer_name": "杭州云帆数据服务有限公司",  # "购买方  名    称：": letter-spaced
            "seller_tax_id": "91330201MA2AH1R86X",
            "amount": "23584.90",  # "合    计  ¥23584.90"
            "tax_amount": "1415.10",  # after the amount on the 合计 row: its label is the column header
            "total_amount_in_words": "贰万伍仟圆整",  # "价税合计（大写）  ⊗贰万伍仟圆整"
        },
    )
    assert labels == {
        "invoice_code": (1.0, "发票代码", 0.0, None),
        "invoice_number": (1.0, "发票号码", 0.0, None),
        "buyer_name": (1.0, "购买方名称", 0.0, None),
        "seller_tax_id": (1.0, "纳税人识别号", 0.0, None),
        "amount": (1.0, "合计", 0.0, None),
        "tax_amount": (0.0, None, 0.0, None),
        "total_amount_in_words": (1.0, "大写", 0.0, None),
    }


def test_a_label_above_counts_only_when_the_row_has_no_words_of_its_own() -> None:
    spec = FieldSpec(name="invoice_code", aliases=("发票代码",))
    page = PageRows(
        (
            (PageLine("a", "发票代码", 0, 8), PageLine("b", "发票号码", 20, 28)),
            (PageLine("c", "044002100111", 0, 12), PageLine("d", "73920564", 20, 28)),
            (PageLine("e", "TOTAL 9.00", 0, 10),),
            (PageLine("f", "044002100111", 0, 12),),
        )
    )
    above = label_evidence(spec, (), page, ["c"], "044002100111")
    assert above == LabelEvidence(0.7, "发票代码", "above", 0.0, None)
    # a line above that holds a value labels that value, not this one
    assert label_evidence(spec, (), page, ["f"], "044002100111") == LabelEvidence()
    assert label_evidence(spec, (), page, ["nowhere"], "044002100111") is None


def test_what_an_amount_includes_is_not_its_label(library: dict[str, Scenario]) -> None:
    retail = library["retail_receipt"]
    spec = retail.field("total")
    assert spec is not None
    page = PageRows(((PageLine("a", "Total Incl. of GST", 0, 18), PageLine("b", "15.90", 30, 35)),))
    assert label_evidence(spec, retail.fields, page, ["b"], "15.90") == LabelEvidence(0.9, "total", "left", 0.0, None)
    gst = PageRows(((PageLine("a", "GST", 0, 3), PageLine("b", "0.90", 30, 34)),))
    assert label_evidence(spec, retail.fields, gst, ["b"], "0.90") == LabelEvidence(0.0, None, None, 0.9, "gst")


def test_a_description_s_examples_are_no_labels(library: dict[str, Scenario]) -> None:
    """train_ticket's destination is described as 到达站，含“站”字，如“南京南站”: found on real tickets
    in a first look, "站" in the start station left of it read as the destination's label."""
    ticket = library["train_ticket"]
    spec = ticket.field("destination_station")
    assert spec is not None
    row = (PageLine("a", "麻城北站", 0, 8), PageLine("b", "汉口站", 30, 36))
    assert label_evidence(spec, ticket.fields, PageRows((row,)), ["b"], "汉口站") == LabelEvidence()


def test_meanings_are_read_from_names_and_aliases(library: dict[str, Scenario]) -> None:
    vat = {field.name: meanings(field) for field in library["vat_invoice"].fields}
    assert vat["seller_tax_id"] == ["tax_id"]  # not the seller's name, not a tax amount
    assert vat["total_amount_in_words"] == ["in_words"]
    assert vat["issue_date"] == ["date"]
    retail = {field.name: meanings(field) for field in library["retail_receipt"].fields}
    assert retail["address"] == ["address"] and retail["total"] == ["total"]


def test_field_signals_say_which_signals_they_hold() -> None:
    bare = FieldSignals(status="ungrounded")
    assert bare.available == ()
    full = FieldSignals(
        status="grounded",
        ocr_confidence=0.97,
        match="exact",
        match_score=1.0,
        label_score=0.9,
        label="total",
        value_probability=0.92,
        checks_passed=("final_amount",),
        checked=True,
        second_look=True,
    )
    assert full.available == ("ocr_confidence", "match", "label", "value_probability", "checks", "second_look")
    assert FieldSignals.from_dict(full.to_dict()) == full
