"""How well a confidence predicts whether values are right.

- Reliability table: confidences cut into equal-width bins; per bin, how many fields, their mean
  confidence and the share that was right. A calibrated confidence has accuracy = confidence.
- Expected calibration error (ECE): the bins' |accuracy - mean confidence|, weighted by their
  share of the fields.
- Coverage at a target precision: accept fields from the highest confidence down, a threshold at
  a time (fields of equal confidence stand or fall together); the largest share accepted while at
  least `target` of the accepted are right, and the threshold that gives it. Precision is not
  monotone in the threshold, so every threshold is tried.

A field without a confidence (None) counts as confidence 0: never accepted, in the lowest bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Bin",
    "CalibrationReport",
    "Coverage",
    "Scored",
    "calibration_report",
    "coverage_at_precision",
    "expected_calibration_error",
    "precision_curve",
    "reliability_table",
]


@dataclass(frozen=True)
class Scored:
    """One field of one document: its confidence and whether its value was right."""

    document: str
    field: str
    confidence: float | None
    correct: bool


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None


@dataclass(frozen=True)
class Coverage:
    target: float
    coverage: float  # the share of fields accepted
    threshold: float | None  # accept at confidence >= threshold; None: no threshold reaches the target
    accepted: int
    errors: int  # wrong values among the accepted


def _arrays(confidences: Sequence[float | None], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences for {len(correct)} outcomes")
    scores = np.array([0.0 if c is None else float(c) for c in confidences], dtype=float)
    return np.clip(scores, 0.0, 1.0), np.array(correct, dtype=bool)


def reliability_table(confidences: Sequence[float | None], correct: Sequence[bool], bins: int = 10) -> list[Bin]:
    scores, right = _arrays(confidences, correct)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds [edges[i], edges[i+1]), the last one also 1.0
    index = np.minimum((scores * bins).astype(int), bins - 1)
    table = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        mean = float(scores[members].mean()) if count else None
        accuracy = float(right[members].mean()) if count else None
        table.append(Bin(float(edges[i]), float(edges[i + 1]), count, mean, accuracy))
    return table


def expected_calibration_error(confidences: Sequence[float | None], correct: Sequence[bool], bins: int = 10) -> float:
    total = len(confidences)
    if not total:
        return 0.0
    table = reliability_table(confidences, correct, bins)
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in table
            if b.count and b.accuracy is not None and b.mean_confidence is not None
        )
    )


def precision_curve(
    confidences: Sequence[float | None], correct: Sequence[bool]
) -> list[tuple[float, float, float, int]]:
    """(threshold, precision, coverage, accepted) for accepting every field at or above each
    distinct confidence, highest threshold first."""
    scores, right = _arrays(confidences, correct)
    if not len(scores):
        return []
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_right = scores[order], right[order]
    hits = np.cumsum(sorted_right)
    # the last index of each run of equal confidences: the threshold accepts the whole run
    ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    total = len(scores)
    return [
        (float(sorted_scores[end]), float(hits[end] / (end + 1)), float((end + 1) / total), int(end + 1))
        for end in ends
    ]


def coverage_at_precision(
    confidences: Sequence[float | None], correct: Sequence[bool], target: float = 0.99
) -> Coverage:
    """The largest share of fields that can be accepted while >= target of them are right. Fields
    without a confidence (or at 0) are never accepted."""
    best = Coverage(target, 0.0, None, 0, 0)
    for threshold, precision, coverage, accepted in precision_curve(confidences, correct):
        if threshold > 0.0 and precision >= target and coverage > best.coverage:
            errors = round(accepted * (1 - precision))
            best = Coverage(target, coverage, threshold, accepted, errors)
    return best


@dataclass(frozen=True)
class CalibrationReport:
    """One confidence's quality over a set of fields, overall and per field."""

    count: int
    accuracy: float
    ece: float
    coverage: Coverage
    table: list[Bin]
    fields: dict[str, CalibrationReport]


def calibration_report(
    scored: Sequence[Scored], *, bins: int = 10, target: float = 0.99, per_field: bool = True
) -> CalibrationReport:
    confidences = [s.confidence for s in scored]
    correct = [s.correct for s in scored]
    fields: dict[str, CalibrationReport] = {}
    if per_field:
        for name in dict.fromkeys(s.field for s in scored):
            fields[name] = calibration_report(
                [s for s in scored if s.field == name], bins=bins, target=target, per_field=False
            )
    return CalibrationReport(
        count=len(scored),
        accuracy=float(np.mean(correct)) if scored else 0.0,
        ece=expected_calibration_error(confidences, correct, bins),
        coverage=coverage_at_precision(confidences, correct, target),
        table=reliability_table(confidences, correct, bins),
        fields=fields,
    )
