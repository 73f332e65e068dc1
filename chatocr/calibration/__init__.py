"""Trust in a value: signals of whether each field is right, a calibrated confidence fitted per
scenario, its metrics (reliability, ECE, coverage at a precision), and the review decision.

    signals = FieldSignals(status="grounded", ocr_confidence=0.98, match="exact", match_score=1.0,
                           label_score=1.0, label="total", value_probability=0.97)
    calibration = fit_calibration(samples, "retail_receipt")      # labelled outcomes -> a model
    save_calibration(calibration, calibration_path("scenarios/retail_receipt.yaml"))
    calibration.confidence(signals, "total")                       # the probability it is right
    rule = accept_rule(calibration, precision=0.99)                # the threshold held out at 99 %
    review_queue({"total": 0.995, "company": 0.71}, rule).summary()  # "1 of 2 fields accepted, 1 to review"

This part sits below `extraction` (which fills the signals and applies the calibration) and knows
no result type: it reads `FieldSignals`, the page as `PageRows` and the scenario's `FieldSpec`s.
"""

from chatocr.calibration.crossval import cross_validate, document_folds
from chatocr.calibration.diagram import draw_reliability, reliability_png
from chatocr.calibration.files import (
    CalibrationStore,
    LoadedCalibration,
    calibration_path,
    parse_calibration,
    read_calibration,
    save_calibration,
)
from chatocr.calibration.metrics import (
    Bin,
    CalibrationReport,
    Coverage,
    Scored,
    calibration_report,
    coverage_at_precision,
    expected_calibration_error,
    precision_curve,
    reliability_table,
)
from chatocr.calibration.model import (
    FEATURES,
    VERSION,
    Calibration,
    HeldOut,
    LogisticModel,
    Sample,
    fit_calibration,
    held_out_confidences,
)
from chatocr.calibration.probability import ValueProbability, value_probabilities, value_spans
from chatocr.calibration.review import AcceptRule, ReviewQueue, accept_rule, decide, review_queue
from chatocr.calibration.signals import SIGNAL_NAMES, FieldSignals, LabelEvidence, label_evidence, label_words

__all__ = [
    "FEATURES",
    "SIGNAL_NAMES",
    "VERSION",
    "AcceptRule",
    "Bin",
    "Calibration",
    "CalibrationReport",
    "CalibrationStore",
    "Coverage",
    "FieldSignals",
    "HeldOut",
    "LabelEvidence",
    "LoadedCalibration",
    "LogisticModel",
    "ReviewQueue",
    "Sample",
    "Scored",
    "ValueProbability",
    "accept_rule",
    "calibration_path",
    "calibration_report",
    "coverage_at_precision",
    "cross_validate",
    "decide",
    "document_folds",
    "draw_reliability",
    "expected_calibration_error",
    "fit_calibration",
    "held_out_confidences",
    "label_evidence",
    "label_words",
    "parse_calibration",
    "precision_curve",
    "read_calibration",
    "reliability_png",
    "reliability_table",
    "review_queue",
    "save_calibration",
    "value_probabilities",
    "value_spans",
]
