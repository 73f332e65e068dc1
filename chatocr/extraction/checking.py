"""Apply a scenario's document checks (chatocr.checks) to an extraction's field results.

The checks are pure functions of values; this module gives them the values as the extraction
normalised them (ISO dates, plain decimals, an item list's normalised rows), the page as rows of
lines (`page_rows`, from the reading-order layout the model saw) and each field's evidence. A field
that is missing or invalid reaches its checks as None: they skip. The results say per field which
checks passed and which failed (`checks_by_field`), what the confidence signals record.

    page = page_rows(index.layout)
    results = run_checks(scenario, result.fields, page)       # [CheckResult(name, fields, passed, message)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from chatocr.checks import CheckContext, CheckResult, PageLine, PageRows, check_definition, parse_arguments, run_check
from chatocr.extraction.result import FieldResult
from chatocr.ocr.layout import LayoutText, display_width
from chatocr.scenarios.model import Scenario

__all__ = ["checks_by_field", "page_rows", "run_checks"]

# The statuses whose value a check reads; a missing or invalid field is None to its checks.
_VALUED = ("grounded", "low_confidence", "ungrounded")


def page_rows(layout: LayoutText) -> PageRows:
    """The layout text's rows of OCR lines, each line with the display columns it spans in its
    row (the layout spaces cells by their gaps, so columns stand for horizontal place whatever
    the page's rotation). Page separators and empty rows are left out."""
    rows: list[tuple[PageLine, ...]] = []
    spans = list(layout.spans)
    at = 0
    row_start = 0
    for row_text in layout.text.split("\n"):
        row_end = row_start + len(row_text)
        lines: list[PageLine] = []
        while at < len(spans) and spans[at].start < row_end:
            span = spans[at]
            start = display_width(row_text[: span.start - row_start])
            text = layout.text[span.start : span.end]
            lines.append(PageLine(span.line_id, text, start, start + display_width(text)))
            at += 1
        if lines:
            rows.append(tuple(lines))
        row_start = row_end + 1
    return PageRows(tuple(rows))


def _canonical(scenario: Scenario, fields: Mapping[str, FieldResult]) -> dict[str, FieldResult]:
    """The results by the scenario's own field names (a user may have asked by an alias)."""
    out: dict[str, FieldResult] = {}
    for key, result in fields.items():
        spec = scenario.field(key)
        out.setdefault(spec.name if spec is not None else key, result)
    return out


def _value(result: FieldResult | None) -> Any:
    if result is None or result.status not in _VALUED:
        return None
    return result.normalized if result.normalized is not None else result.value


def run_checks(
    scenario: Scenario,
    fields: Mapping[str, FieldResult],
    page: PageRows | None = None,
    *,
    today: date | None = None,
) -> list[CheckResult]:
    """Every check the scenario declares whose fields were asked for, in declaration order. A
    check none of whose fields was asked is left out; one with some fields not asked is skipped
    (its result says which). Never raises for a check: see `chatocr.checks.run_check`."""
    results = _canonical(scenario, fields)
    evidence = {name: tuple(e.line_id for e in result.evidence) for name, result in results.items()}
    context = CheckContext(page=page, evidence=evidence, today=today)
    out: list[CheckResult] = []
    for declaration in scenario.checks:
        definition = check_definition(declaration.check)
        if definition is None:  # the scenario validated its checks when it loaded; a registry changed since
            continue
        asked = [name for name in declaration.fields if name in results]
        if not asked:
            continue
        if len(asked) < len(declaration.fields):
            absent = ", ".join(name for name in declaration.fields if name not in results)
            out.append(CheckResult(declaration.label, declaration.fields, None, f"{absent} not asked for"))
            continue
        values = [_value(results[name]) for name in declaration.fields]
        args = parse_arguments(definition, declaration.model_dump())
        out.append(run_check(definition, declaration.fields, values, args, context, name=declaration.label))
    return out


def checks_by_field(results: Sequence[CheckResult]) -> dict[str, tuple[list[str], list[str]]]:
    """Per field, the names of the checks naming it that passed and that failed (skips are neither)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for result in results:
        if result.passed is None:
            continue
        for name in result.fields:
            passed, failed = out.setdefault(name, ([], []))
            (passed if result.passed else failed).append(result.name)
    return out
