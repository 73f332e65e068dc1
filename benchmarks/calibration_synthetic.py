"""The calibration maths on a synthetic world whose truth is known (no model, no data set).

Fields of three kinds (company, total, date) on N documents; each value is right with a known
logistic probability of its label score, OCR confidence and a failed check. Prints, per seed:
how far the fitted calibration is from the truth on fresh documents, the held-out ECE beside
today's confidence (OCR x match), and for accept targets 90 % and 95 % the coverage and the
precision on fresh documents of three ways to choose the threshold from the held-out curve:

- expected: the lowest threshold whose held-out accepted fields' mean confidence >= target (chatocr's);
- counted-max: the largest coverage whose counted held-out precision >= target;
- counted-first: walking down, the last threshold before the counted precision falls below target.

    python benchmarks/calibration_synthetic.py --documents 800 --seeds 3 4 5
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from chatocr.calibration import FieldSignals, Sample, cross_validate, expected_calibration_error, fit_calibration
from chatocr.calibration.model import Calibration, _fit_models

OFFSET = {"company": -1.0, "total": 0.5, "date": 1.0}


def truth(label: float, ocr: float, failed: int, field: str) -> float:
    return 1 / (1 + math.exp(-(-6.0 + 3.0 * label + 6.0 * ocr - 2.5 * failed + OFFSET[field])))


def world(documents: int, seed: int) -> tuple[list[Sample], np.ndarray]:
    rng = np.random.default_rng(seed)
    samples, probabilities = [], []
    for d in range(documents):
        for field in OFFSET:
            label = float(rng.choice([0.0, 0.7, 0.9, 1.0]))
            ocr = float(rng.uniform(0.6, 1.0))
            failed = int(rng.uniform() < 0.15)
            p = truth(label, ocr, failed, field)
            signals = FieldSignals("grounded", ocr, "exact", 1.0, label, checks_failed=("sum",) * failed, checked=True)
            samples.append(Sample(f"doc{d}", field, signals, bool(rng.uniform() < p)))
            probabilities.append(p)
    return samples, np.array(probabilities)


def counted_thresholds(held: np.ndarray, right: np.ndarray, target: float) -> tuple[float | None, float | None]:
    """(counted-max, counted-first) thresholds on the held-out predictions."""
    order = np.argsort(-held, kind="stable")
    scores, hits = held[order], np.cumsum(right[order])
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    best: float | None = None
    first: float | None = None
    stopped = False
    for end in ends:
        precision = hits[end] / (end + 1)
        if precision >= target:
            best = float(scores[end])
        if not stopped:
            if end + 1 >= 1 / (1 - target) and precision < target:
                stopped = True
            elif precision >= target:
                first = float(scores[end])
    return best, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    args = parser.parse_args()
    for seed in args.seeds:
        samples, _ = world(args.documents, seed)
        fresh, fresh_truth = world(3000, seed + 100)
        calibration = fit_calibration(samples, "synthetic", folds=5)
        predicted = np.array([calibration.confidence(s.signals, s.field) for s in fresh])
        fresh_right = np.array([s.correct for s in fresh])
        held = np.array(
            cross_validate(
                samples,
                lambda s: s.document,
                lambda training: Calibration("synthetic", _fit_models(training, 1.0), {}),
                lambda c, s: c.confidence(s.signals, s.field),
            )
        )
        right = np.array([s.correct for s in samples])
        today = [(s.signals.ocr_confidence or 0) * (s.signals.match_score or 0) for s in samples]
        distance = float(np.mean(np.abs(predicted - fresh_truth)))
        held_ece = expected_calibration_error(list(held), list(right))
        today_ece = expected_calibration_error(today, list(right))
        print(
            f"seed {seed}: {len(samples)} fields; |calibrated - truth| on fresh documents {distance:.4f}; "
            f"held-out ECE {held_ece:.4f} (today's confidence {today_ece:.4f})"
        )
        for target in (0.9, 0.95):
            ordered = np.sort(fresh_truth)[::-1]
            reach = np.flatnonzero(np.cumsum(ordered) / np.arange(1, len(ordered) + 1) >= target)
            oracle = (reach[-1] + 1) / len(ordered) if len(reach) else 0.0
            rules = {
                "expected": calibration.accept_threshold(target),
                **dict(zip(("counted-max", "counted-first"), counted_thresholds(held, right, target), strict=True)),
            }
            shown = []
            for name, threshold in rules.items():
                if threshold is None:
                    shown.append(f"{name}: none")
                    continue
                accepted = fresh_right[predicted >= threshold]
                precision = accepted.mean() if len(accepted) else float("nan")
                shown.append(f"{name}: coverage {len(accepted) / len(fresh):.3f}, precision {precision:.3f}")
            print(f"  target {target:.2f} (oracle coverage {oracle:.3f}): " + "; ".join(shown))


if __name__ == "__main__":
    main()
