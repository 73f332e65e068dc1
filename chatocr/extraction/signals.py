"""Each field's signals of correctness (chatocr.calibration.FieldSignals), from what one
extraction produced: its field results (status, match, evidence), the page's rows, the scenario's
check results, and, where the backend gave token log-probabilities, each value's probability.

    page = page_rows(index.layout)
    checks = run_checks(scenario, result.fields, page)
    answer = value_probabilities(reply.text, reply.token_logprobs or ())
    signals = field_signals(scenario, result.fields, page, checks, answer)
    confidence = calibration.confidence(signals["total"], "total")

Keys are the result's (a user may ask by an alias); labels, checks and offsets use the scenario's
field for the key. A field the scenario does not have (fallback extraction with the user's keys)
gets its labels from its key alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chatocr.calibration import FieldSignals, ValueProbability, label_evidence
from chatocr.checks import CheckResult, PageRows
from chatocr.extraction.checking import checks_by_field
from chatocr.extraction.result import FieldResult
from chatocr.scenarios.model import FieldSpec, Scenario

__all__ = ["field_signals"]


def _spec(scenario: Scenario | None, key: str) -> FieldSpec:
    found = scenario.field(key) if scenario is not None else None
    return found if found is not None else FieldSpec(name=key)


def field_signals(
    scenario: Scenario | None,
    fields: Mapping[str, FieldResult],
    page: PageRows | None = None,
    checks: Sequence[CheckResult] = (),
    probabilities: Mapping[str, ValueProbability] | None = None,
    second_looks: Mapping[str, bool] | None = None,
) -> dict[str, FieldSignals]:
    """Signals per result key. `probabilities` are keyed as the model's answer named the keys
    (compared case-insensitively); `second_looks` say per key whether a second look agreed."""
    verdicts = checks_by_field(checks)
    ran = {name for check in checks for name in check.fields}
    answered = {key.strip().casefold(): value for key, value in (probabilities or {}).items()}
    specs = tuple(_spec(scenario, key) for key in fields)
    others = scenario.fields if scenario is not None else specs
    out: dict[str, FieldSignals] = {}
    for (key, result), spec in zip(fields.items(), specs, strict=True):
        passed, failed = verdicts.get(spec.name, ([], []))
        label = None
        if page is not None and result.evidence:
            label = label_evidence(spec, others, page, [e.line_id for e in result.evidence], str(result.value))
        probability = answered.get(key.strip().casefold())
        out[key] = FieldSignals(
            status=result.status,
            ocr_confidence=min((e.confidence for e in result.evidence), default=None),
            match=result.match,
            match_score=result.match_score,
            label_score=None if page is None else (label.score if label else 0.0),
            label=label.label if label else None,
            conflict_score=None if page is None else (label.conflict_score if label else 0.0),
            conflict=label.conflict if label else None,
            value_probability=probability.probability if probability else None,
            checks_passed=tuple(passed),
            checks_failed=tuple(failed),
            checked=spec.name in ran,
            second_look=(second_looks or {}).get(key),
        )
    return out
