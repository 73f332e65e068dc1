"""Metrics: the stated normalisation and hand-computed values."""

from __future__ import annotations

import pytest

from chatocr.evaluation.metrics import (
    FieldCounts,
    anls,
    get_normalizer,
    levenshtein,
    normalize,
    normalize_amount,
    normalize_masked_id_name,
    ocr_contains,
    search_forms,
)


def test_normalize_nfkc_case_whitespace() -> None:
    assert normalize("  Book TA .K (Taman  Daya)\nSDN BHD ") == "bookta.k(tamandaya)sdnbhd"
    assert normalize("2019年03月10日14：50开") == "2019年03月10日14:50开"  # full-width colon
    assert normalize("ＡＢＣ１２３") == "abc123"
    assert normalize(None) == ""
    assert normalize("未知") == "" and normalize("None") == "" and normalize("null") == ""
    assert normalize(["a b", None, "C"]) == "abc"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("￥41.0元", "41"),
        ("41", "41"),
        ("RM 9.00", "9"),
        ("$8.20", "8.2"),
        ("1,234.50", "1234.5"),
        ("12,50", "12.5"),
        ("100.00", "100"),
        ("", ""),
        ("free", "free"),
        ("1.00 2.00", "1.002.00"),  # two numbers: no single reading, plain normalisation
    ],
)
def test_normalize_amount(value: str, expected: str) -> None:
    assert normalize_amount(value) == expected


def test_masked_id_name() -> None:
    assert normalize_masked_id_name("1101011990****1234张三") == "张三"
    assert normalize_masked_id_name("张三") == "张三"
    assert normalize_masked_id_name("3101151988****241X 王五") == "王五"
    assert get_normalizer("masked_id_name") is normalize_masked_id_name
    with pytest.raises(ValueError, match="unknown normaliser"):
        get_normalizer("nope")


def test_levenshtein_and_anls_hand_values() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert anls("abcd", "abcd") == 1.0
    assert anls("abcd", "abce") == pytest.approx(0.75)  # 1 - 1/4
    assert anls("ab", "abcd") == pytest.approx(0.5)  # 1 - 2/4, at the threshold: kept
    assert anls("a", "abcd") == 0.0  # 1 - 3/4 = 0.25 < 0.5
    assert anls("", "") == 1.0
    assert anls("x", "") == 0.0


def test_field_counts_hand_computed() -> None:
    counts = FieldCounts()
    # 4 pairs: right; wrong (both non-empty); missed (prediction empty); spurious (label empty).
    counts.add("abcd", "abcd", grounded=True, in_ocr=True)
    counts.add("abce", "abcd", grounded=False, in_ocr=True)
    counts.add("", "xyz", in_ocr=False)
    counts.add("qq", "", grounded=True)
    s = counts.summary()
    assert s["pairs"] == 4
    assert s["exact"] == 0.25
    assert s["anls"] == pytest.approx((1 + 0.75 + 0 + 0) / 4, abs=1e-4)
    assert s["precision"] == pytest.approx(1 / 3, abs=1e-4)  # 1 TP of 3 non-empty predictions
    assert s["recall"] == pytest.approx(1 / 3, abs=1e-4)  # 1 TP of 3 non-empty labels
    assert s["f1"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["ocr_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["grounding_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert len(counts.mismatches) == 3
    both = FieldCounts()
    both.merge(counts)
    both.merge(counts)
    assert both.summary()["exact"] == 0.25 and both.pairs == 8


def test_empty_counts_have_no_ratios() -> None:
    s = FieldCounts().summary()
    assert s["exact"] is None and s["f1"] is None and s["ocr_recall"] is None


def test_ocr_contains() -> None:
    text = [normalize("TOTAL RM 9.00\nNO.53 55,57 & 59, JALAN SAGU 18,\nTAMAN DAYA,")]
    assert ocr_contains(text, "9.00", "amount")
    assert ocr_contains(text, "9", "amount")  # canonical 9 -> tries 9.00
    assert not ocr_contains(text, "19.50", "amount")
    assert ocr_contains(text, "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA,", "text")
    assert ocr_contains([normalize("￥41.0元")], "￥41.0元", "amount")
    assert ocr_contains([normalize("1101011990****1234张三")], "1101011990****1234张三", "masked_id_name")
    assert not ocr_contains(text, "", "text")
    assert "41.0" in search_forms("￥41.0元", "amount")
    # An amount printed with a decimal comma is readable there too (a German receipt's total).
    german = [normalize("Zwischensumme 1.234,56 €\nGesamt 134,39 €")]
    assert ocr_contains(german, "134.39", "amount")
    assert ocr_contains(german, "1234.56", "amount")
    assert not ocr_contains(german, "134.30", "amount")
