"""Reliability, expected calibration error, coverage at a precision, cross-validation by document:
on data whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from chatocr.calibration import (
    Scored,
    calibration_report,
    coverage_at_precision,
    cross_validate,
    document_folds,
    expected_calibration_error,
    precision_curve,
    reliability_table,
)


def _calibrated(n: int, seed: int = 1) -> tuple[list[float | None], list[bool]]:
    """Scores drawn uniformly, each value right with exactly that probability."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    return [float(s) for s in scores], [bool(r) for r in rng.uniform(0, 1, n) < scores]


def test_perfectly_calibrated_scores_have_an_ece_near_zero() -> None:
    scores, right = _calibrated(20000)
    assert expected_calibration_error(scores, right) < 0.015


def test_overconfident_scores_have_the_ece_of_their_gap() -> None:
    # every value said to be certain, 80 % right: ECE is the gap, 0.2
    assert expected_calibration_error([1.0] * 100, [True] * 80 + [False] * 20) == pytest.approx(0.2)
    # a confidence that is the accuracy of its group is calibrated, however low
    scores = [0.3] * 10 + [0.9] * 10
    right = [True] * 3 + [False] * 7 + [True] * 9 + [False]
    assert expected_calibration_error(scores, right) == pytest.approx(0.0)


def test_reliability_table() -> None:
    table = reliability_table([0.05, 0.15, 0.18, 1.0, None], [True, False, True, True, False], bins=10)
    assert [b.count for b in table] == [2, 2, 0, 0, 0, 0, 0, 0, 0, 1]  # None counts as 0; 1.0 in the last bin
    assert table[1].accuracy == 0.5 and table[1].mean_confidence == pytest.approx(0.165)
    assert table[2].accuracy is None and table[9].accuracy == 1.0


def test_coverage_at_precision_accepts_from_the_top_while_precision_holds() -> None:
    scores = [0.99] * 100 + [0.95] * 10 + [0.5] * 10
    right = [True] * 100 + [True] * 8 + [False] * 2 + [False] * 10
    at_99 = coverage_at_precision(scores, right, 0.99)
    assert at_99.threshold == 0.99 and at_99.accepted == 100 and at_99.coverage == pytest.approx(100 / 120)
    at_98 = coverage_at_precision(scores, right, 0.98)  # 108 right of 110
    assert at_98.threshold == 0.95 and at_98.accepted == 110 and at_98.errors == 2


def test_a_wrong_value_at_the_top_blocks_every_threshold_at_99() -> None:
    """The issue's finding: ranked by today's confidence, a wrong value sits at 1.0."""
    scores = [1.0] * 50 + [0.9] * 50
    right = [True] * 49 + [False] + [True] * 50
    assert coverage_at_precision(scores, right, 0.99).threshold == 0.9  # 99 of 100: just enough
    right[60] = False
    blocked = coverage_at_precision(scores, right, 0.99)
    assert blocked.coverage == 0.0 and blocked.threshold is None


def test_equal_confidences_stand_or_fall_together() -> None:
    curve = precision_curve([0.9, 0.9, 0.9, 0.5], [True, False, True, True])
    assert [(t, round(p, 3), n) for t, p, _, n in curve] == [(0.9, 0.667, 3), (0.5, 0.75, 4)]


def test_a_report_per_field() -> None:
    scored = [Scored(f"d{i}", "total", 0.95, i % 20 != 0) for i in range(40)]
    scored += [Scored(f"d{i}", "company", 0.6, i % 2 == 0) for i in range(40)]
    report = calibration_report(scored)
    assert report.count == 80 and set(report.fields) == {"total", "company"}
    assert report.fields["total"].accuracy == pytest.approx(0.95)
    assert report.fields["company"].ece == pytest.approx(0.1)


def test_folds_never_split_a_document_and_do_not_depend_on_order() -> None:
    documents = [f"doc{i}" for i in range(23)]
    folds = document_folds(documents * 3, k=5, seed=7)
    assert len(folds) == 5 and set().union(*folds) == set(documents)
    assert sum(len(f) for f in folds) == 23  # each document in exactly one fold
    assert document_folds(list(reversed(documents)), k=5, seed=7) == folds
    assert len(document_folds(["a", "b"], k=5)) == 2


def test_cross_validation_scores_each_sample_with_a_model_that_never_saw_its_document() -> None:
    samples = [(f"doc{i // 3}", i) for i in range(30)]  # 10 documents of 3 fields

    def fit(training: list[tuple[str, int]]) -> set[str]:
        return {document for document, _ in training}

    def predict(seen: set[str], sample: tuple[str, int]) -> float:
        return 1.0 if sample[0] in seen else 0.0

    held = cross_validate(samples, lambda s: s[0], fit, predict, k=4)
    assert held == [0.0] * 30
