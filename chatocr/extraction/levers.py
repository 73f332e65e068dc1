"""The accuracy levers as the pipeline applies them (each a config setting; docs/evaluation.md
measures each on and off):

    extractive     the answer's schema restricts text fields to the page's strings (extractive.py)
    field_reask    a bad required field is re-asked alone, as numbered choices (reask.py)
    snap           a grounded value becomes the page's own text, the answer kept beside (snapping.py)
    positions      fields told apart by position are put back by their boxes (positions.py)

Kept out of the checked loop (loop.py) so that it reads as the loop; each function here is one
decision, given the one small value it depends on (`Levers`), never the whole config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from chatocr.config import ChatOCRConfig
from chatocr.extraction.extractive import extractive_schema
from chatocr.extraction.extractor import _hints, evidence_at, json_schema_for
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.positions import put_back_by_position
from chatocr.extraction.reask import Question, questions_for
from chatocr.extraction.result import FieldResult
from chatocr.extraction.snapping import snap_result
from chatocr.ocr.layout import LayoutText
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.model import FieldSpec

__all__ = ["Levers", "answer_schema", "choice_questions", "finish_fields", "open_problems"]


@dataclass(frozen=True)
class Levers:
    """The accuracy levers the checked loop applies, as configured (see the module's docstring)."""

    snap: bool = True
    field_reask: bool = False
    extractive: bool = False
    positions: bool = False

    @classmethod
    def of(cls, config: ChatOCRConfig) -> Levers:
        return cls(config.snap, config.field_reask, config.extractive, config.positions)


def answer_schema(levers: Levers, fields: tuple[FieldSpec, ...], layout: LayoutText) -> dict[str, Any]:
    """The JSON schema the extraction answer must follow."""
    return extractive_schema(fields, layout) if levers.extractive else json_schema_for(fields)


def choice_questions(
    levers: Levers,
    fields: tuple[FieldSpec, ...],
    best: Mapping[str, FieldResult],
    index: TextIndex,
    asked: set[str],
) -> list[Question]:
    """The field-aware re-ask's questions, each field asked once. With the lever off, only fields
    whose answer the scenario rules out (`never`: "CO. (M) SDN BHD" for a company): asked the whole
    task again, the local model gave the same answer back on every receipt of the evaluation where
    this happened, while the choice offers the line before joined to it."""
    questions = [q for q in questions_for(fields, best, index) if q.field.name not in asked]
    if levers.field_reask:
        return questions
    return [q for q in questions if q.field.ruled_out(getattr(best.get(q.field.name), "value", None))]


def open_problems(fields: tuple[FieldSpec, ...], best: Mapping[str, FieldResult]) -> list[str]:
    """What is still wrong with the best answers, as re-ask problems (after a choice step, whose
    reply answers only some fields)."""
    problems: list[str] = []
    for field in fields:
        result = best.get(field.name)
        if result is None or (result.status == "missing" and field.required):
            problems.append(f"{field.name!r} is required: find it in the OCR text")
        elif result.status == "invalid":
            problems.append(f"{field.name}: {result.problem}")
        elif result.status == "ungrounded":
            problems.append(f"{field.name}: {result.value!r} does not occur in the OCR text")
    return problems


def finish_fields(
    levers: Levers,
    fields: tuple[FieldSpec, ...],
    results: dict[str, FieldResult],
    index: TextIndex,
    document: OCRDocument,
) -> tuple[dict[str, FieldResult], list[str]]:
    """The final results: snapped to the page's text, position pairs put back; with warnings."""
    warnings: list[str] = []
    if levers.snap:
        by_name = {f.name: f for f in fields}
        lines = partial(evidence_at, document, index)
        results = {
            name: snap_result(by_name[name], r, index, _hints(by_name[name]), lines) if name in by_name else r
            for name, r in results.items()
        }
    if levers.positions:
        results, warnings = put_back_by_position(fields, results)
    return results, warnings
