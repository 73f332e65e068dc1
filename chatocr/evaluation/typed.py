"""`chatocr eval --schema`: do the typed values equal the labels, typed the same way?

For each evaluated field of a set run with a schema, the instance's value (result.data, as JSON)
is compared with the label: amounts as Decimal (`Decimal("9.00") == Decimal("9.0")`), dates as
ISO dates where the label is a date, other values with the set's normaliser (as field accuracy
does). A document whose values did not validate (data None) counts as wrong for every field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from chatocr.evaluation.datasets import Dataset
from chatocr.evaluation.metrics import get_normalizer
from chatocr.evaluation.runner import DocOutcome
from chatocr.extraction.validation import normalize_amount, normalize_date
from chatocr.scenarios.model import FieldType
from chatocr.typed.schema import TypedSchema

__all__ = ["typed_agreement"]


def _decimal(value: Any) -> Decimal | None:
    text = normalize_amount(value) if value is not None else None
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None


def _equal(kind: FieldType, normalizer: str, got: Any, label: Any) -> bool:
    if kind in (FieldType.amount, FieldType.number):
        expected = _decimal(label)
        return expected is not None and got is not None and Decimal(str(got)) == expected
    if kind is FieldType.date:
        expected_date = normalize_date(label)
        if expected_date is not None:  # the label is a date: compare as dates
            return got is not None and str(got)[:10] == expected_date
    norm = get_normalizer(normalizer)
    return norm(got) == norm(label)


def typed_agreement(
    datasets: Sequence[Dataset], outcomes: Sequence[DocOutcome], schemas: Mapping[str, TypedSchema]
) -> dict[str, dict[str, Any]]:
    """Per set and strategy: how many typed values equal the typed label (labelled fields only)."""
    report: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        schema = schemas.get(dataset.name)
        if schema is None:
            continue
        labels = {doc.id: doc.labels for doc in dataset.documents}
        mine = [o for o in outcomes if o.dataset == dataset.name and o.error is None and o.document in labels]
        for strategy in dict.fromkeys(o.strategy for o in mine):
            runs = [o for o in mine if o.strategy == strategy]
            report.setdefault(dataset.name, {})[strategy] = _agreement(dataset, schema, runs, labels)
    return report


def _agreement(
    dataset: Dataset, schema: TypedSchema, outcomes: Sequence[DocOutcome], labels: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    kinds = {f.name: f.type for f in schema.fields}
    per_field: dict[str, list[int]] = {name: [0, 0] for name in dataset.fields}
    for outcome in outcomes:
        for name in dataset.fields:
            label = labels[outcome.document].get(name)
            if label in (None, ""):
                continue
            got = (outcome.data or {}).get(name)
            per_field[name][1] += 1
            per_field[name][0] += _equal(
                kinds.get(name, FieldType.text), dataset.normalizers.get(name, "text"), got, label
            )
    return {
        "schema": schema.name,
        "documents": len(outcomes),
        "validated": sum(o.data is not None for o in outcomes),
        "equal": sum(v[0] for v in per_field.values()),
        "labelled": sum(v[1] for v in per_field.values()),
        "fields": {name: {"equal": e, "labelled": n} for name, (e, n) in per_field.items()},
    }
