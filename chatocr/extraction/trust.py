"""After the checked loop: which values to trust (docs/trust.md).

The scenario's document checks run on the result's values (`run_checks`), each field's signals of
correctness are built (`field_signals`: the model's own probability for the value from the step
whose answer was kept, label evidence, OCR confidence, match, checks, a second look), the
scenario's calibration (`<scenario>.calibration.json` beside its YAML) turns them into the
probability that the value is right, and the accept rule turns each field into `accepted` or
`review`:

    assessor = TrustAssessor(library)                         # one per pipeline: reads each file once
    assessor.assess(result, scenario, page, probabilities, accept=AcceptOptions(precision=0.99))
    result.fields["total"].confidence, .calibrated, .signals_used, .decision
    result.checks, result.acceptance, result.needs_review, result.to_review

The rule (`AcceptOptions.rule_for`): the call's threshold, else the threshold the calibration held
out at the call's precision; else the scenario's own default (`accept_threshold` /
`accept_precision` in its YAML); else the config's (`accept_precision`, 0.99). Without a usable
calibration no field is accepted at a precision (the confidence then says the value is on the
page, not that it is right: promising 99 % with it would be a silently wrong probability); a
threshold given as a number is applied to whatever confidence the field shows, and the result's
acceptance note says which.

A failed check lowers the confidence of the fields it names: the calibration weighs the failure
as fitted, and is never allowed to raise a field's confidence for it (the lower of the probability
with and without the failure is taken); an uncalibrated confidence is halved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from chatocr.calibration import (
    Calibration,
    CalibrationStore,
    FieldSignals,
    LoadedCalibration,
    ValueProbability,
    calibration_path,
    decide,
)
from chatocr.checks import CheckResult, PageRows
from chatocr.config import ChatOCRConfig, check_accept
from chatocr.extraction.checking import run_checks
from chatocr.extraction.result import Acceptance, Extraction, FieldResult
from chatocr.extraction.signals import field_signals
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import Scenario

__all__ = ["FAILED_CHECK_FACTOR", "AcceptOptions", "TrustAssessor"]

# An uncalibrated confidence of a field a failed check names is multiplied by this.
FAILED_CHECK_FACTOR = 0.5


@dataclass(frozen=True)
class AcceptOptions:
    """How a call decides accepted/review: its own threshold or precision (None: not given), and
    the config's defaults for scenarios that name none."""

    threshold: float | None = None
    precision: float | None = None
    default_threshold: float | None = None
    default_precision: float | None = 0.99

    def __post_init__(self) -> None:
        check_accept(self.threshold, self.precision)
        check_accept(self.default_threshold, self.default_precision)

    @classmethod
    def of(cls, config: ChatOCRConfig, threshold: float | None = None, precision: float | None = None) -> AcceptOptions:
        return cls(threshold, precision, config.accept_threshold, config.accept_precision)

    def rule_for(
        self, scenario: Scenario | None, calibration: Calibration | None, unused: str | None = None
    ) -> Acceptance | None:
        """The rule for one document's fields (see the module's docstring); None: no decision.
        unused: why the scenario's calibration is not used (LoadedCalibration.unused)."""
        threshold, precision, source = self.threshold, self.precision, "given"
        if threshold is None and precision is None and scenario is not None:
            threshold, precision = scenario.accept_threshold, scenario.accept_precision
            source = f"scenario {scenario.name}"
        if threshold is None and precision is None:
            threshold, precision, source = self.default_threshold, self.default_precision, "config"
        if threshold is not None:
            note = "" if calibration is not None else "the threshold is applied to the uncalibrated confidence"
            return Acceptance(float(threshold), f"threshold {threshold:g} ({source})", note=note)
        if precision is None:
            return None
        where = f"precision {precision:g} ({source})"
        if calibration is None:
            what = f"scenario {scenario.name!r}" if scenario is not None else "a document no scenario matched"
            why = unused or f"no calibration for {what}"
            return Acceptance(None, where, note=f"{why}: no field can be accepted at {precision:.0%} precision")
        chosen = calibration.accept_threshold(precision)
        if chosen is None:
            note = f"no threshold held out {precision:.0%} precision: every field to review"
            return Acceptance(None, where, note=note)
        return Acceptance(chosen, f"{where}, held out")


class TrustAssessor:
    """Calibrations by scenario (read once per file version) and the assessment of a result."""

    def __init__(self, library: ScenarioLibrary, model: str = "") -> None:
        """model: `provider:model` of the chat model whose answers are assessed (ChatModel.label);
        a calibration fitted with another model is not used for them."""
        self.library = library
        self.model = model
        self.store = CalibrationStore()

    def calibration(self, scenario: Scenario | None) -> LoadedCalibration:
        """The scenario's calibration beside its YAML; none for a scenario with no file of its own."""
        source = self.library.sources.get(scenario.name) if scenario is not None else None
        if scenario is None or source is None or scenario.name not in self.library:
            return LoadedCalibration(None)
        if self.library.get(scenario.name) is not scenario:  # a scenario object of the caller's own
            return LoadedCalibration(None)
        path = calibration_path(source)
        loaded = self.store.get(path, scenario.name)
        fitted = loaded.calibration
        if fitted is not None and not fitted.fits_model(self.model):
            return LoadedCalibration(
                None,
                unused=f"the calibration of scenario {scenario.name!r} was fitted with {fitted.model}, not "
                f"{self.model} (fit one with this model: chatocr calibrate DATA_DIR --scenario {scenario.name} "
                "--llm ...)",
            )
        return loaded

    def assess(
        self,
        result: Extraction,
        scenario: Scenario | None,
        page: PageRows | None,
        probabilities: Mapping[str, ValueProbability] | None = None,
        second_looks: Mapping[str, bool] | None = None,
        *,
        accept: AcceptOptions | None = None,
        checks: Sequence[CheckResult] | None = None,
    ) -> None:
        """Fill the result's checks, each field's signals, confidence and decision, and the rule."""
        if checks is None:
            checks = run_checks(scenario, result.fields, page) if scenario is not None else []
        result.checks = list(checks)
        signals = field_signals(scenario, result.fields, page, checks, probabilities, second_looks)
        loaded = self.calibration(scenario)
        if loaded.warning and loaded.warning not in result.warnings:
            result.warnings.append(loaded.warning)
        calibration = loaded.calibration
        rule = (accept or AcceptOptions()).rule_for(scenario, calibration, loaded.unused)
        if rule is not None and calibration is not None:
            source = self.library.sources.get(scenario.name) if scenario is not None else None
            rule.calibration = str(calibration_path(source)) if source is not None else None
        result.acceptance = rule
        for name, field in result.fields.items():
            spec = scenario.field(name) if scenario is not None else None
            _apply(field, signals[name], calibration, spec.name if spec is not None else name)
            if rule is not None:
                threshold = math.inf if rule.threshold is None else rule.threshold
                field.decision = decide(field.confidence, threshold)


def _apply(field: FieldResult, signals: FieldSignals, calibration: Calibration | None, name: str) -> None:
    """One field's signals and confidence: calibrated when a model has the signals it needs."""
    field.grounding_confidence = field.confidence
    field.signals = signals
    model = calibration.model_for(signals) if calibration is not None else None
    if model is None:
        field.calibrated, field.signals_used = False, []
        if signals.checks_failed and field.confidence is not None:
            field.confidence = round(field.confidence * FAILED_CHECK_FACTOR, 4)
        return
    probability = model.predict(signals, name)
    if signals.checks_failed:  # a failure never raises it, whatever the fitted weight
        probability = min(probability, model.predict(replace(signals, checks_failed=()), name))
    field.confidence = probability
    field.calibrated = True
    field.signals_used = model.signals_used(signals)
