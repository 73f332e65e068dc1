"""What a typed request adds to the extraction loop and its result.

    min_confidence   a grounded value whose confidence (OCR line confidence x match score, see
                     extraction/items.py) is below it gets status `low_confidence`: found, but not
                     trusted; left out of trusted_values() and result.data unless asked
    the model        the found values, leaf by leaf, must validate; what does not is sent back to
                     the model as concrete problems (`items[2].amount: Input should be ...`)
    result           result.data (the instance, or None), result.errors (the problems left after
                     the budget), result.schema (name and JSON Schema)

Only values found in the document go into result.data: an ungrounded (or, unless asked, low-
confidence) leaf is None there, and a line item none of whose values is on the page is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chatocr.extraction.result import Extraction, FieldResult
from chatocr.typed.instance import SchemaProblem, build_instance
from chatocr.typed.schema import TypedSchema

__all__ = [
    "MinConfidence",
    "TypedRequest",
    "finish_typed",
    "make_review",
    "mark_low_confidence",
    "typed_values",
]

MinConfidence = float | Mapping[str, float] | None


def _threshold(min_confidence: MinConfidence, name: str) -> float:
    if min_confidence is None:
        return 0.0
    if isinstance(min_confidence, Mapping):
        return float(min_confidence.get(name, 0.0))
    return float(min_confidence)


def _mark(result: FieldResult, threshold: float) -> None:
    if result.status == "grounded" and result.confidence is not None and result.confidence < threshold:
        result.status = "low_confidence"
        result.problem = f"confidence {result.confidence:.2f} is below min_confidence {threshold:.2f}"


def mark_low_confidence(fields: Mapping[str, FieldResult], min_confidence: MinConfidence) -> None:
    """Grounded values (and leaves) below their field's min_confidence become `low_confidence`."""
    for name, result in fields.items():
        threshold = _threshold(min_confidence, name)
        if threshold <= 0:
            continue
        _mark(result, threshold)
        for leaf in result.parts.values():
            _mark(leaf, threshold)


def typed_values(fields: Mapping[str, FieldResult], include_low_confidence: bool = False) -> dict[str, Any]:
    """Field name -> normalised value, only what was found in the document (None otherwise)."""
    usable = ("grounded", "low_confidence") if include_low_confidence else ("grounded",)
    out: dict[str, Any] = {}
    for name, result in fields.items():
        if not result.parts:
            out[name] = result.normalized if result.status in usable else None
        elif isinstance(result.normalized, list):
            items = []
            for index, item in enumerate(result.normalized):
                kept = {k: v if _usable(result, f"{name}[{index}].{k}", usable) else None for k, v in item.items()}
                if any(v is not None for v in kept.values()):  # an item not on the page is left out
                    items.append(kept)
            out[name] = items
        elif isinstance(result.normalized, dict):
            kept = {k: v if _usable(result, f"{name}.{k}", usable) else None for k, v in result.normalized.items()}
            out[name] = kept if any(v is not None for v in kept.values()) else None
        else:
            out[name] = None
    return out


def _usable(result: FieldResult, path: str, usable: tuple[str, ...]) -> bool:
    leaf = result.parts.get(path)
    return leaf is not None and leaf.status in usable


def _field_of(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _problems_to_ask(
    problems: list[SchemaProblem], fields: Mapping[str, FieldResult], usable: tuple[str, ...]
) -> list[str]:
    """The validation problems the model can fix: those about values it gave and we used (a
    missing or ungrounded value is already re-asked about by the loop)."""
    out = []
    for problem in problems:
        field = fields.get(_field_of(problem.path))
        if not problem.path or (field is not None and field.status in usable):
            out.append(f"{problem} (the answer must fit the requested types)")
    return out


def make_review(
    schema: TypedSchema | None, min_confidence: MinConfidence, include_low_confidence: bool = False
) -> Callable[[dict[str, FieldResult]], list[str]]:
    """The loop's review step (see extraction/extractor.py): marks low confidence, then checks the model."""
    usable = ("grounded", "low_confidence") if include_low_confidence else ("grounded",)

    def review(fields: dict[str, FieldResult]) -> list[str]:
        mark_low_confidence(fields, min_confidence)
        if schema is None:
            return []
        _, problems = build_instance(schema, typed_values(fields, include_low_confidence))
        return _problems_to_ask(problems, fields, usable)

    return review


def finish_typed(
    result: Extraction, schema: TypedSchema | None, min_confidence: MinConfidence, include_low_confidence: bool = False
) -> None:
    """Fill result.data / result.errors / result.schema from the final field results."""
    mark_low_confidence(result.fields, min_confidence)
    low = [name for name, f in result.fields.items() if f.status == "low_confidence"]
    if low:
        result.warnings.append(f"found below min_confidence (not trusted): {', '.join(low)}")
    if schema is None:
        return
    result.schema = schema.describe()
    instance, problems = build_instance(schema, typed_values(result.fields, include_low_confidence))
    result.data = instance
    result.errors = [p.to_dict() for p in problems]
    if problems:
        result.warnings.append(f"the values do not validate as {schema.name}: " + "; ".join(map(str, problems)))


@dataclass(frozen=True)
class TypedRequest:
    """The typed part of one extract call, resolved before any OCR or model call."""

    schema: TypedSchema | None = None
    min_confidence: MinConfidence = None
    include_low_confidence: bool = False
    question: str = ""  # ChatSession.ask(question, schema=...): added to the task's instructions

    def review(self) -> Callable[[dict[str, FieldResult]], list[str]] | None:
        if self.schema is None and not self.min_confidence:
            return None
        return make_review(self.schema, self.min_confidence, self.include_low_confidence)

    def finish(self, result: Extraction) -> None:
        finish_typed(result, self.schema, self.min_confidence, self.include_low_confidence)
