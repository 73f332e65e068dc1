"""A calibrated confidence: the signals of a field combined into the probability that its value is
right, fitted per scenario on labelled outcomes, kept in a small versioned JSON file beside the
scenario (`<scenario>.calibration.json`).

The model is L2-regularised logistic regression, fitted by Newton's method in numpy, on
standardised features (`FEATURES`) plus one offset per field (fields differ in how often they are
right whatever the signals: a date more often than a shop's name). Why logistic and not isotonic
regression: there are several signals to combine, not one score to re-map, and a scenario has
tens to hundreds of labelled fields; isotonic regression on that little data fits steps to noise.
Why not scikit-learn: it would add a 40 MB dependency for twenty lines of Newton steps.

A signal may be unavailable at run time (a backend without token probabilities). The file holds
one model per set of signals it was fitted with, tried in order: a field is scored by the first
whose required signals it has, so a probability is never computed from a signal that is not there.

Reading a file is checked (`load_calibration`): a file that is not JSON, from another format
version, for another scenario, or whose numbers do not fit its features gives ONE warning and no
calibration (the uncalibrated confidence is used), never an exception and never a wrong probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from chatocr.calibration.crossval import cross_validate
from chatocr.calibration.metrics import expected_calibration_error, precision_curve
from chatocr.calibration.signals import FieldSignals
from chatocr.errors import CalibrationError

__all__ = [
    "FEATURES",
    "FORMAT",
    "VERSION",
    "Calibration",
    "HeldOut",
    "LogisticModel",
    "Sample",
    "field_features",
    "fit_calibration",
    "held_out_confidences",
    "summary",
]

FORMAT = "chatocr.calibration"
# bumped whenever FEATURES or the file's layout change: an old file then warns, never misleads.
# 2: value_logit beside value_logprob.
VERSION = 2
FIELD_PREFIX = "field="
MIN_FIELD_SAMPLES = 5  # a field seen fewer times in the training set gets no offset of its own
PROBABILITY_SHARE = 0.9  # fit a model with the value's probability when this share of fields has one
ACCEPT_TARGETS = (0.9, 0.95, 0.98, 0.99)


def _logprob(signals: FieldSignals) -> float:
    """log(p) of the value, floored at e^-10 and scaled to [-1, 0]."""
    probability = signals.value_probability or 0.0
    return max(math.log(probability), -10.0) / 10.0 if probability > 0 else -1.0


def _logit(signals: FieldSignals) -> float:
    """The value's log-odds, clipped to +-12 (p within 6e-6 of 0 or 1) and scaled to [-1.2, 1.2].

    What tells a 99 %-right value from a 99.99 %-right one is the chance of being wrong, 1 - p:
    log p hardly moves between them (-0.01 and -0.0001) while the log-odds do (4.6 and 9.2). A
    logistic model on the log-odds with weight 1 returns a calibrated p unchanged; on log p alone
    it could not reach above ~0.97 on a world whose values were right 99.99 % of the time
    (tests/pipeline/test_trust.py's)."""
    probability = min(max(signals.value_probability or 0.0, 6e-6), 1 - 6e-6)
    return math.log(probability / (1 - probability)) / 10.0


VALUED = ("grounded", "low_confidence", "ungrounded")
FEATURES: dict[str, Callable[[FieldSignals], float]] = {
    "has_value": lambda s: float(s.status in VALUED),
    "grounded": lambda s: float(s.status in ("grounded", "low_confidence")),
    "ocr_confidence": lambda s: s.ocr_confidence or 0.0,
    "match_score": lambda s: s.match_score or 0.0,
    "fuzzy": lambda s: float(s.match == "fuzzy"),
    "label": lambda s: s.label_score or 0.0,
    "conflict": lambda s: s.conflict_score or 0.0,
    "checks_passed": lambda s: float(min(len(s.checks_passed), 2)),
    "checks_failed": lambda s: float(min(len(s.checks_failed), 2)),
    "second_agreed": lambda s: float(s.second_look is True),
    "second_disagreed": lambda s: float(s.second_look is False),
    "value_logprob": _logprob,
    "value_logit": _logit,
}
VALUE_FEATURES = ("value_logprob", "value_logit")
BASE_FEATURES = tuple(name for name in FEATURES if name not in VALUE_FEATURES)
# The signal each optional feature needs; a model using it applies only to fields that have it.
REQUIRES = {"value_logprob": "value_probability", "value_logit": "value_probability"}
# The signal (calibration.signals.SIGNAL_NAMES) each feature reads; has_value and grounded read the
# status, which every field has.
FEATURE_SIGNALS = {
    "ocr_confidence": "ocr_confidence",
    "match_score": "match",
    "fuzzy": "match",
    "label": "label",
    "conflict": "label",
    "checks_passed": "checks",
    "checks_failed": "checks",
    "second_agreed": "second_look",
    "second_disagreed": "second_look",
    "value_logprob": "value_probability",
    "value_logit": "value_probability",
}


@dataclass(frozen=True)
class Sample:
    """One labelled field: which document, which field, its signals, and whether it was right."""

    document: str
    field: str
    signals: FieldSignals
    correct: bool


def field_features(signals: FieldSignals, field_name: str, names: Sequence[str]) -> list[float]:
    """The feature vector `names` describes for one field."""
    return [
        float(field_name == name[len(FIELD_PREFIX) :]) if name.startswith(FIELD_PREFIX) else FEATURES[name](signals)
        for name in names
    ]


def _newton(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 100) -> np.ndarray:
    """Weights (bias first) minimising the logistic loss + l2/2 |w|^2 (the bias not penalised)."""
    design = np.hstack([np.ones((len(x), 1)), x])
    weights = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 1e-6  # keeps the Hessian invertible when every outcome is the same
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30)))
        gradient = design.T @ (probability - y) + penalty * weights
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return weights


@dataclass(frozen=True)
class LogisticModel:
    """One fitted model: its features (standardised by `mean` and `scale`), weights and bias."""

    name: str
    requires: tuple[str, ...]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    fitted_on: dict[str, int] = field(default_factory=dict)

    def applies(self, signals: FieldSignals) -> bool:
        return all(name in signals.available for name in self.requires)

    def signals_used(self, signals: FieldSignals) -> list[str]:
        """The signals of `signals` this model's features read (for the result's "signals used")."""
        read = {FEATURE_SIGNALS[name] for name in self.features if name in FEATURE_SIGNALS}
        return [name for name in signals.available if name in read]

    def predict(self, signals: FieldSignals, field_name: str) -> float:
        x = (np.array(field_features(signals, field_name, self.features)) - np.array(self.mean)) / np.array(self.scale)
        logit = float(np.clip(self.bias + x @ np.array(self.weights), -30, 30))
        return 1.0 / (1.0 + math.exp(-logit))

    @classmethod
    def fit(cls, samples: Sequence[Sample], name: str, features: Sequence[str], l2: float) -> LogisticModel:
        counts: dict[str, int] = {}
        for sample in samples:
            counts[sample.field] = counts.get(sample.field, 0) + 1
        offsets = [FIELD_PREFIX + f for f, n in sorted(counts.items()) if n >= MIN_FIELD_SAMPLES and len(counts) > 1]
        names = (*features, *offsets)
        x = np.array([field_features(s.signals, s.field, names) for s in samples], dtype=float)
        y = np.array([s.correct for s in samples], dtype=float)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        one_hot = np.array([n.startswith(FIELD_PREFIX) for n in names])
        mean[one_hot], scale[one_hot] = 0.0, 1.0  # an unknown field then gets no offset at all
        scale[scale < 1e-9] = 1.0
        weights = _newton((x - mean) / scale, y, l2)
        requires = tuple(sorted({REQUIRES[n] for n in names if n in REQUIRES}))
        fitted = {"fields": len(samples), "right": int(y.sum()), "documents": len({s.document for s in samples})}
        return cls(name, requires, names, tuple(mean), tuple(scale), tuple(weights[1:]), float(weights[0]), fitted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requires": list(self.requires),
            "features": list(self.features),
            "mean": [round(v, 10) for v in self.mean],
            "scale": [round(v, 10) for v in self.scale],
            "weights": [round(v, 10) for v in self.weights],
            "bias": round(self.bias, 10),
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LogisticModel:
        """Raises ValueError saying what does not fit (read by `load_calibration`)."""
        if not isinstance(data, dict):
            raise ValueError("a model is not an object")
        features = _strings(data.get("features"), "features")
        for name in features:
            if name not in FEATURES and not name.startswith(FIELD_PREFIX):
                raise ValueError(f"unknown feature {name!r}")
        numbers = {key: _numbers(data.get(key), key, len(features)) for key in ("mean", "scale", "weights")}
        if any(value <= 0 for value in numbers["scale"]):
            raise ValueError("a feature's scale is not positive")
        requires = _strings(data.get("requires", []), "requires")
        needed = {REQUIRES[n] for n in features if n in REQUIRES}
        if not needed <= set(requires):
            raise ValueError(f"its features need {sorted(needed)} but it requires {requires}")
        fitted = data.get("fitted_on", {})
        if not isinstance(fitted, dict) or not all(isinstance(v, int) for v in fitted.values()):
            raise ValueError("fitted_on is not a set of counts")
        bias = _numbers([data.get("bias")], "bias", 1)[0]
        return cls(
            str(data.get("name", "")),
            tuple(requires),
            tuple(features),
            numbers["mean"],
            numbers["scale"],
            numbers["weights"],
            bias,
            dict(fitted),
        )


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} is not a list of names")
    return value


def _numbers(value: Any, what: str, length: int) -> tuple[float, ...]:
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ValueError(f"{what} is not {length} finite numbers")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class HeldOut:
    """The calibrated confidence scored on documents it was not fitted on (cross-validation).

    `curve` has one point per distinct held-out confidence, highest first: accepting every field
    at or above `threshold`, the share of them right (`precision`), the share of all fields
    accepted (`coverage`), and the mean held-out confidence of the accepted (`expected`: the
    precision the calibrated confidences promise)."""

    folds: int
    fields: int
    ece: float
    curve: tuple[tuple[float, float, float, float], ...]  # (threshold, precision, coverage, expected)

    def accept_threshold(self, precision: float) -> float | None:
        """The lowest threshold at which the held-out precision stays >= `precision`, measured by
        the held-out confidences' mean (`expected`), which only falls as the threshold drops, so
        "stays" holds by construction and one error more or less does not move the threshold.
        The counted precision jumps with every error: the largest coverage it allows is a lucky
        bump as often as not, and walking down until it first dips stops at the first unlucky
        one. On a synthetic world of known truth (benchmarks/calibration_synthetic.py, 3 seeds,
        95 % target) the expected rule and the largest counted coverage gave about the same
        precision on fresh documents (0.93-0.96 each); the first dip accepted 1-2 % of fields
        where 13-21 % could be. None when even the most confident fields do not reach it."""
        chosen: float | None = None
        for threshold, _, _, expected in self.curve:
            if threshold <= 0 or expected < precision:
                break
            chosen = threshold
        return chosen

    def at(self, threshold: float | None) -> tuple[float, float]:
        """(counted held-out precision, coverage) when accepting at `threshold`; (1, 0) for None."""
        point = next((p for p in self.curve if p[0] == threshold), None) if threshold is not None else None
        return (point[1], point[2]) if point else (1.0, 0.0)

    def coverage(self, precision: float) -> float:
        return self.at(self.accept_threshold(precision))[1]


@dataclass(frozen=True)
class Calibration:
    scenario: str
    models: tuple[LogisticModel, ...]
    fitted_on: dict[str, int]
    held_out: HeldOut | None = None
    created: str = ""
    # The chat model whose answers it was fitted on (`provider:model`, ChatModel.label): token
    # probabilities and error rates are a model's own, so another model's fields are not scored by
    # it. "" (files that do not say): any model.
    model: str = ""

    def fits_model(self, label: str) -> bool:
        return not self.model or not label or self.model == label

    def model_for(self, signals: FieldSignals) -> LogisticModel | None:
        return next((model for model in self.models if model.applies(signals)), None)

    def confidence(self, signals: FieldSignals, field_name: str) -> float | None:
        """The probability that the value is right; None when no model has the signals it needs."""
        model = self.model_for(signals)
        return None if model is None else model.predict(signals, field_name)

    def accept_threshold(self, precision: float) -> float | None:
        return None if self.held_out is None else self.held_out.accept_threshold(precision)

    def to_dict(self) -> dict[str, Any]:
        held = self.held_out
        return {
            "format": FORMAT,
            "version": VERSION,
            "scenario": self.scenario,
            "method": "logistic",
            "created": self.created,
            "model": self.model,
            "fitted_on": dict(self.fitted_on),
            "models": [model.to_dict() for model in self.models],
            "held_out": None
            if held is None
            else {
                "folds": held.folds,
                "fields": held.fields,
                "ece": round(held.ece, 6),
                "accept": {f"{p:g}": _accept_entry(held, p) for p in ACCEPT_TARGETS},
                "curve": [[t, round(p, 6), round(c, 6), round(e, 6)] for t, p, c, e in held.curve],
            },
        }

    @classmethod
    def from_dict(cls, data: Any, scenario: str) -> Calibration:
        """Raises ValueError naming what is wrong (another version, another scenario, a corrupt part)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a chatocr calibration file")
        version = data.get("version")
        if version != VERSION:
            raise ValueError(f"written in calibration format version {version!r}; this chatocr reads version {VERSION}")
        if data.get("scenario") != scenario:
            raise ValueError(f"fitted for scenario {data.get('scenario')!r}, not {scenario!r}")
        models = data.get("models")
        if not isinstance(models, list) or not models:
            raise ValueError("it holds no model")
        fitted = data.get("fitted_on", {})
        if not isinstance(fitted, dict):
            raise ValueError("fitted_on is not a set of counts")
        fitted_with = data.get("model", "")
        if not isinstance(fitted_with, str):
            raise ValueError("model is not the name of a chat model")
        return cls(
            scenario,
            tuple(LogisticModel.from_dict(model) for model in models),
            dict(fitted),
            _held_out(data.get("held_out")),
            str(data.get("created", "")),
            fitted_with,
        )


def _accept_entry(held: HeldOut, precision: float) -> dict[str, float] | None:
    """What the file says of one accept precision: the threshold and what it gave held out."""
    threshold = held.accept_threshold(precision)
    if threshold is None:
        return None
    counted, coverage = held.at(threshold)
    return {"threshold": threshold, "held_out_precision": round(counted, 6), "coverage": round(coverage, 6)}


def _held_out(data: Any) -> HeldOut | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("curve"), list):
        raise ValueError("held_out is not a held-out score")
    points = [_numbers(point, "a curve point", 4) for point in data["curve"]]
    ece = _numbers([data.get("ece")], "ece", 1)[0]
    folds, fields = data.get("folds"), data.get("fields")
    if not isinstance(folds, int) or not isinstance(fields, int):
        raise ValueError("held_out's folds and fields are not counts")
    return HeldOut(folds, fields, ece, tuple((t, p, c, e) for t, p, c, e in points))


def _fit_models(samples: Sequence[Sample], l2: float) -> tuple[LogisticModel, ...]:
    models = []
    with_probability = [s for s in samples if s.signals.value_probability is not None]
    if samples and len(with_probability) >= PROBABILITY_SHARE * len(samples) and len(with_probability) >= 2:
        models.append(LogisticModel.fit(with_probability, "with_probability", (*BASE_FEATURES, *VALUE_FEATURES), l2))
    models.append(LogisticModel.fit(samples, "base", BASE_FEATURES, l2))
    return tuple(models)


def fit_calibration(
    samples: Sequence[Sample], scenario: str, *, folds: int = 5, seed: int = 0, l2: float = 1.0
) -> Calibration:
    """Fit on every sample, and score the same procedure by cross-validation over documents (the
    held-out curve gives the accept thresholds). CalibrationError when the samples cannot give a
    calibration: too few documents, or every value right (or every one wrong)."""
    documents = {s.document for s in samples}
    right = sum(s.correct for s in samples)
    if len(documents) < 2:
        raise CalibrationError(
            f"{len(samples)} labelled fields from {len(documents)} document(s): too few to fit a calibration.",
            hint="Label more documents (tens per scenario) and fit again.",
        )
    if right in (0, len(samples)):
        state = "right" if right else "wrong"
        raise CalibrationError(
            f"All {len(samples)} labelled fields were {state}: nothing tells a right value from a wrong one.",
            hint="Fit on more documents, including some the extraction gets wrong.",
        )
    models = _fit_models(samples, l2)
    count = min(folds, len(documents))
    held = held_out_confidences(samples, scenario, folds=count, seed=seed, l2=l2)
    correct = [s.correct for s in samples]
    held_out = HeldOut(count, len(samples), expected_calibration_error(held, correct), _thin(_curve(held, correct)))
    fitted = {"documents": len(documents), "fields": len(samples), "right": right}
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return Calibration(scenario, models, fitted, held_out, created)


def held_out_confidences(
    samples: Sequence[Sample], scenario: str, *, folds: int = 5, seed: int = 0, l2: float = 1.0
) -> list[float | None]:
    """Each sample's calibrated confidence from a calibration fitted without its document (k-fold
    by document), in the samples' order: what `fit_calibration` scores itself by, and what the
    evaluation reports (chatocr eval --calibrate). A fold whose training documents are all right
    (or all wrong) cannot be fitted: its fields get None (counted as never accepted)."""

    def fit(training: Sequence[Sample]) -> Calibration | None:
        outcomes = {s.correct for s in training}
        return Calibration(scenario, _fit_models(training, l2), {}) if len(outcomes) == 2 else None

    return cross_validate(
        samples,
        lambda s: s.document,
        fit,
        lambda calibration, s: None if calibration is None else calibration.confidence(s.signals, s.field),
        k=min(folds, len({s.document for s in samples})),
        seed=seed,
    )


def _curve(held: Sequence[float | None], correct: Sequence[bool]) -> tuple[tuple[float, float, float, float], ...]:
    """The held-out curve, with the mean held-out confidence of the accepted at each point."""
    ordered = sorted((0.0 if c is None else c for c in held), reverse=True)
    running = np.cumsum(ordered)
    return tuple(
        (threshold, precision, coverage, float(running[accepted - 1] / accepted))
        for threshold, precision, coverage, accepted in precision_curve(held, correct)
    )


def _thin(
    curve: tuple[tuple[float, float, float, float], ...], most: int = 400
) -> tuple[tuple[float, float, float, float], ...]:
    """At most `most` points, always keeping the ones that set an accept threshold."""
    if len(curve) <= most:
        return curve
    keep = {round(i * (len(curve) - 1) / (most - 1)) for i in range(most)}
    for target in ACCEPT_TARGETS:  # expected precision falls along the curve: the last point that reaches it
        points = [i for i, (t, _, _, e) in enumerate(curve) if t > 0 and e >= target]
        if points:
            keep.add(points[-1])
    return tuple(curve[i] for i in sorted(keep))


def summary(calibration: Calibration) -> Mapping[str, Any]:
    """What a person wants to know of a calibration file: fitted on what, how good held out."""
    held = calibration.held_out
    return {
        "scenario": calibration.scenario,
        "fitted_on": calibration.fitted_on,
        "models": [model.name for model in calibration.models],
        "held_out_ece": None if held is None else round(held.ece, 4),
        "held_out_coverage_at_99": None if held is None else round(held.coverage(0.99), 4),
        "accept_at_99": calibration.accept_threshold(0.99),
    }
