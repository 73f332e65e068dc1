"""Calibration from labelled documents, and how well each confidence tells right from wrong
(`chatocr eval --calibrate`, `chatocr calibrate`; docs/trust.md, docs/evaluation.md).

Each outcome of a chatocr strategy keeps, per field, its signals of correctness, today's confidence
(the grounding confidence: OCR confidence x match) and the run's calibrated one (`trust_record`,
cached with the outcome). Here every field becomes a labelled sample (right = the prediction
equals the label under the evaluation's normalisation, the `exact` metric), per scenario:

- the calibration is fitted on all of a scenario's samples (what is written beside the scenario);
- the report scores it by document-level cross-validation (each document's fields get the
  confidence of a calibration fitted on the other documents), beside today's confidence on the
  same fields: reliability table, expected calibration error, coverage at 99 % precision, per
  field, per set and over all sets;
- each check's precision: of the documents where it failed, how many had a named field wrong;
  and what the re-asks after failed checks did (answers changed from wrong to right and back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chatocr.calibration import (
    Calibration,
    CalibrationReport,
    FieldSignals,
    Sample,
    Scored,
    calibration_report,
    draw_reliability,
    fit_calibration,
    held_out_confidences,
)
from chatocr.errors import CalibrationError
from chatocr.evaluation.datasets import Dataset
from chatocr.evaluation.metrics import get_normalizer
from chatocr.evaluation.outcome import DocOutcome
from chatocr.extraction.result import Extraction
from chatocr.scenarios.loader import ScenarioLibrary

__all__ = [
    "FieldOutcome",
    "TrustEvaluation",
    "evaluate_trust",
    "field_outcomes",
    "report_dict",
    "trust_record",
]

TARGET = 0.99


def trust_record(result: Extraction) -> dict[str, Any]:
    """What an evaluation outcome keeps of a result's trust (DocOutcome's members of that name)."""
    fields = result.fields
    looks = [c for c in result.calls if c.purpose == "second_look"]
    looked = [name for name, f in fields.items() if f.signals is not None and f.signals.second_look is not None]
    return {
        "signals": {name: f.signals.to_dict() for name, f in fields.items() if f.signals is not None},
        "confidences": {
            name: f.grounding_confidence if f.signals is not None else f.confidence for name, f in fields.items()
        },
        "calibrated": {name: f.confidence for name, f in fields.items() if f.calibrated},
        "decisions": {name: f.decision for name, f in fields.items() if f.decision is not None},
        "checks": [check.to_dict() for check in result.checks],
        "rechecks": [
            {"check": r.check, "step": r.step, "message": r.message, "values": dict(r.values)} for r in result.rechecks
        ],
        "second_look": {
            "calls": len(looks),
            "prompt_tokens": sum(c.prompt_tokens or 0 for c in looks),
            "completion_tokens": sum(c.completion_tokens or 0 for c in looks),
            "seconds": round(sum(c.latency_s for c in looks), 3),
            "fields": looked,
        }
        if looks
        else {},
    }


@dataclass(frozen=True)
class FieldOutcome:
    """One labelled field of one document: its signals, today's confidence, and whether it was right."""

    dataset: str
    document: str  # dataset/document: unique across sets, the unit of cross-validation
    field: str  # the scenario's field name
    scenario: str
    signals: FieldSignals
    today: float | None
    correct: bool

    @property
    def sample(self) -> Sample:
        return Sample(self.document, self.field, self.signals, self.correct)


def _right(dataset: Dataset, name: str, predicted: Any, label: Any) -> bool:
    norm = get_normalizer(dataset.normalizers.get(name, "text"))
    return bool(norm(predicted) == norm(label))


def field_outcomes(
    datasets: Sequence[Dataset], outcomes: Sequence[DocOutcome], strategy: str, library: ScenarioLibrary
) -> list[FieldOutcome]:
    """Every evaluated field of `strategy`'s outcomes that recorded its signals (failed documents
    and outcomes cached before signals were recorded are left out)."""
    by_key = {(o.dataset, o.document): o for o in outcomes if o.strategy == strategy and o.error is None}
    out: list[FieldOutcome] = []
    for dataset in datasets:
        scenario = library.get(dataset.scenario)
        for doc in dataset.documents:
            outcome = by_key.get((dataset.name, doc.id))
            if outcome is None or not outcome.signals:
                continue
            for name in dataset.fields:
                signals = outcome.signals.get(name)
                if signals is None:
                    continue
                spec = scenario.field(name)
                out.append(
                    FieldOutcome(
                        dataset.name,
                        f"{dataset.name}/{doc.id}",
                        spec.name if spec is not None else name,
                        scenario.name,
                        FieldSignals.from_dict(signals),
                        outcome.confidences.get(name),
                        _right(dataset, name, outcome.values.get(name), doc.labels.get(name)),
                    )
                )
    return out


def _without_second_look(fields: Sequence[FieldOutcome]) -> list[FieldOutcome]:
    return [replace(f, signals=replace(f.signals, second_look=None)) for f in fields]


@dataclass
class TrustEvaluation:
    """What `evaluate_trust` found: per scenario the calibration fitted on all its documents (None
    with the reason when it cannot be fitted), and every field's held-out confidence beside today's."""

    fields: list[FieldOutcome]
    held_out: list[float | None]  # in `fields`' order
    calibrations: dict[str, Calibration]
    unfitted: dict[str, str]  # scenario -> why no calibration
    checks: dict[str, dict[str, Any]]
    rechecks: dict[str, Any]
    second_look: dict[str, Any] | None = None  # when the run took second looks: what they cost and bought


def evaluate_trust(
    datasets: Sequence[Dataset],
    outcomes: Sequence[DocOutcome],
    strategy: str,
    library: ScenarioLibrary,
    *,
    folds: int = 5,
    seed: int = 0,
) -> TrustEvaluation:
    """Fit each scenario's calibration and score it by cross-validation over documents."""
    fields = field_outcomes(datasets, outcomes, strategy, library)
    held, calibrations, unfitted = _fit_all(fields, folds, seed)
    mine = [o for o in outcomes if o.strategy == strategy and o.error is None]
    looks = None
    if any(f.signals.second_look is not None for f in fields):
        without, _, _ = _fit_all(_without_second_look(fields), folds, seed)
        looks = _second_look_effect(fields, held, without, mine)
    return TrustEvaluation(
        fields,
        held,
        calibrations,
        unfitted,
        _check_precision(datasets, mine),
        _recheck_effects(datasets, mine),
        looks,
    )


def _fit_all(
    fields: Sequence[FieldOutcome], folds: int, seed: int
) -> tuple[list[float | None], dict[str, Calibration], dict[str, str]]:
    """Per scenario: the calibration on all its fields, and each field's held-out confidence."""
    held: dict[int, float | None] = {}
    calibrations: dict[str, Calibration] = {}
    unfitted: dict[str, str] = {}
    for scenario in dict.fromkeys(f.scenario for f in fields):
        members = [i for i, f in enumerate(fields) if f.scenario == scenario]
        samples = [fields[i].sample for i in members]
        try:
            calibrations[scenario] = fit_calibration(samples, scenario, folds=folds, seed=seed)
        except CalibrationError as error:
            unfitted[scenario] = error.message
            held.update(dict.fromkeys(members))
            continue
        for i, confidence in zip(members, held_out_confidences(samples, scenario, folds=folds, seed=seed), strict=True):
            held[i] = confidence
    return [held.get(i) for i in range(len(fields))], calibrations, unfitted


def _second_look_effect(
    fields: Sequence[FieldOutcome],
    held: Sequence[float | None],
    without: Sequence[float | None],
    outcomes: Sequence[DocOutcome],
) -> dict[str, Any]:
    """How often the second look ran, what it cost, how often it agreed (and how right the agreed
    and the disagreed values were), and the coverage at 99 % with and without it (held out)."""
    looked = [f for f in fields if f.signals.second_look is not None]
    agreed = [f for f in looked if f.signals.second_look]
    disagreed = [f for f in looked if not f.signals.second_look]
    costs = [o.second_look for o in outcomes if o.second_look]
    correct = [f.correct for f in fields]
    with_look = calibration_report(
        [Scored(f.document, f.field, c, f.correct) for f, c in zip(fields, held, strict=True)], per_field=False
    )
    without_look = calibration_report(
        [Scored(f.document, f.field, c, f.correct) for f, c in zip(fields, without, strict=True)], per_field=False
    )
    n = max(1, len(outcomes))
    return {
        "documents": len(outcomes),
        "documents_looked": len(costs),
        "fields_looked": len(looked),
        "fields": len(fields),
        "agreed": len(agreed),
        "agreed_right": sum(f.correct for f in agreed),
        "disagreed": len(disagreed),
        "disagreed_right": sum(f.correct for f in disagreed),
        "tokens_per_document": round(sum(c["prompt_tokens"] + c["completion_tokens"] for c in costs) / n, 1),
        "seconds_per_document": round(sum(c["seconds"] for c in costs) / n, 3),
        "coverage_at_99_with": round(with_look.coverage.coverage, 4),
        "coverage_at_99_without": round(without_look.coverage.coverage, 4),
        "ece_with": round(with_look.ece, 4),
        "ece_without": round(without_look.ece, 4),
        "right": sum(correct),
    }


def _labels(datasets: Sequence[Dataset]) -> dict[tuple[str, str], tuple[Dataset, dict[str, Any]]]:
    return {(d.name, doc.id): (d, doc.labels) for d in datasets for doc in d.documents}


def _check_precision(datasets: Sequence[Dataset], outcomes: Sequence[DocOutcome]) -> dict[str, dict[str, Any]]:
    """Per check (on the final values): how often it ran, passed, failed, and of the failures how
    many named a wrong field (its precision); of the passes, how many still had one wrong."""
    labels = _labels(datasets)
    table: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        dataset, truth = labels[(outcome.dataset, outcome.document)]
        for check in outcome.checks:
            row = table.setdefault(
                check["name"], {"ran": 0, "skipped": 0, "passed": 0, "failed": 0, "failed_wrong": 0, "passed_wrong": 0}
            )
            row["ran"] += 1
            if check["passed"] is None:
                row["skipped"] += 1
                continue
            named = [n for n in dataset.fields if n in check["fields"]]
            if not named:  # its fields are not among the labelled ones
                continue
            wrong = any(not _right(dataset, n, outcome.values.get(n), truth.get(n)) for n in named)
            key = "passed" if check["passed"] else "failed"
            row[key] += 1
            row[f"{key}_wrong"] += wrong
    for row in table.values():
        row["precision"] = round(row["failed_wrong"] / row["failed"], 4) if row["failed"] else None
    return table


def _recheck_effects(datasets: Sequence[Dataset], outcomes: Sequence[DocOutcome]) -> dict[str, Any]:
    """The re-asks after failed checks: how many, and per named field whether the model's answer
    went from wrong to right (won) or right to wrong (lost) by the end."""
    labels = _labels(datasets)
    documents = won = lost = same_right = same_wrong = 0
    for outcome in outcomes:
        if not outcome.rechecks:
            continue
        documents += 1
        dataset, truth = labels[(outcome.dataset, outcome.document)]
        for recheck in outcome.rechecks:
            for name, before in recheck["values"].items():
                if name not in dataset.fields:
                    continue
                after = outcome.answers.get(name, outcome.values.get(name))
                was, now = _right(dataset, name, before, truth.get(name)), _right(dataset, name, after, truth.get(name))
                won += not was and now
                lost += was and not now
                same_right += was and now
                same_wrong += not was and not now
    return {"documents": documents, "won": won, "lost": lost, "right_kept": same_right, "wrong_kept": same_wrong}


def _report(scored: Sequence[Scored]) -> dict[str, Any]:
    report = calibration_report(scored, target=TARGET)
    return _report_dict(report, per_field=True)


def _report_dict(report: CalibrationReport, *, per_field: bool) -> dict[str, Any]:
    coverage = report.coverage
    out: dict[str, Any] = {
        "fields": report.count,
        "accuracy": round(report.accuracy, 4),
        "ece": round(report.ece, 4),
        "coverage_at_99": round(coverage.coverage, 4),
        "threshold_at_99": coverage.threshold,
        "accepted_at_99": coverage.accepted,
        "errors_accepted_at_99": coverage.errors,
        "reliability": [
            {
                "bin": f"{b.low:.1f}-{b.high:.1f}",
                "count": b.count,
                "confidence": None if b.mean_confidence is None else round(b.mean_confidence, 4),
                "accuracy": None if b.accuracy is None else round(b.accuracy, 4),
            }
            for b in report.table
        ],
    }
    if per_field:
        out["per_field"] = {name: _report_dict(sub, per_field=False) for name, sub in report.fields.items()}
    return out


def report_dict(evaluation: TrustEvaluation, *, png: Path | None = None) -> dict[str, Any]:
    """The report's `trust` section: per set and over all sets, today's and the calibrated (held
    out) confidence's metrics; the calibrations; the checks; the re-asks. `png`: the reliability
    diagram of both over all sets, drawn there."""
    fields, held = evaluation.fields, evaluation.held_out
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(fields):
        groups.setdefault(f.dataset, []).append(i)
    if len(groups) > 1:
        groups["ALL"] = list(range(len(fields)))
    by_group: dict[str, Any] = {}
    for group, members in groups.items():
        today = [Scored(fields[i].document, fields[i].field, fields[i].today, fields[i].correct) for i in members]
        calibrated = [Scored(fields[i].document, fields[i].field, held[i], fields[i].correct) for i in members]
        by_group[group] = {"today": _report(today), "calibrated": _report(calibrated)}
    if png is not None and fields:
        correct = [f.correct for f in fields]
        draw_reliability({"today": ([f.today for f in fields], correct), "calibrated": (list(held), correct)}, png)
    return {
        "target_precision": TARGET,
        "cross_validation": "5-fold by document, per scenario (a document's fields never split)",
        "confidence_today": "grounding confidence: the lowest OCR confidence of the value's lines x its match score",
        "sets": by_group,
        "calibrations": {name: _calibration_summary(c) for name, c in evaluation.calibrations.items()},
        "unfitted": dict(evaluation.unfitted),
        "checks": evaluation.checks,
        "rechecks": evaluation.rechecks,
        "second_look": evaluation.second_look,
        "reliability_png": str(png) if png is not None and fields else None,
    }


def _calibration_summary(calibration: Calibration) -> dict[str, Any]:
    held = calibration.held_out
    models = {
        model.name: dict(zip(model.features, (round(w, 3) for w in model.weights), strict=True))
        for model in calibration.models
    }
    return {
        "fitted_on": calibration.fitted_on,
        "held_out_ece": None if held is None else round(held.ece, 4),
        "accept_threshold_at_99": calibration.accept_threshold(TARGET),
        "held_out_coverage_at_99": None if held is None else round(held.coverage(TARGET), 4),
        "weights": models,
    }


def scenario_files(
    calibrations: Mapping[str, Calibration], library: ScenarioLibrary, directory: Path | None = None
) -> dict[str, Path]:
    """Where each calibration is written: `directory`/<scenario>.calibration.json, else beside
    the scenario's YAML (a scenario without a file, e.g. given as an object, needs a directory)."""
    from chatocr.calibration import calibration_path

    out: dict[str, Path] = {}
    for name in calibrations:
        source = library.sources.get(name)
        if directory is not None:
            out[name] = directory / f"{name}.calibration.json"
        elif source is not None:
            out[name] = calibration_path(source)
        else:
            raise CalibrationError(
                f"Scenario {name!r} has no YAML file to write its calibration beside.",
                hint="Give a directory for the calibration files.",
            )
    return out
