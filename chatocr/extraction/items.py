"""Ground nested and repeated values leaf by leaf: each line item on its own OCR row.

A list answer is not one value: `items[2].amount` is "4.50" on the ROTI CANAI row, not the first
"4.50" anywhere on the receipt. Each item (or an object field) is grounded from an anchor, its
first text value (the description); the item's other values prefer occurrences on the rendered row
that holds the anchor (the layout keeps a printed row on one line), so a receipt's repeated prices
are told apart. Every leaf gets its own result under a JSON path key (`items[2].amount`), and an
item none of whose values occurs in the text is flagged as such, so the re-ask can say which
items to drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import Evidence, FieldResult
from chatocr.scenarios.model import FieldSpec, FieldType, ItemField

__all__ = ["MATCH_WEIGHT", "GroundedParts", "ground_parts", "leaf_confidence"]

EvidenceOf = Callable[[int, int], list[Evidence]]


@dataclass
class GroundedParts:
    """The leaves of one list/object field and what they add up to for the field."""

    leaves: dict[str, FieldResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    kind: str | None = None  # the weakest leaf's match kind; None when some leaf is not in the text
    score: float | None = None
    confidence: float | None = None  # the lowest leaf confidence

    @property
    def grounded(self) -> bool:
        return self.kind is not None


# How much a match kind says about the value being the page's own text: an exact, numeric or date
# match is the value; a normalized one matched only after NFKC, case folding and removing
# whitespace. The match score adds the rest: 0.9 for a value found only inside a longer token,
# the similarity (>= 0.8) for a fuzzy match.
MATCH_WEIGHT = {"exact": 1.0, "numeric": 1.0, "date": 1.0, "normalized": 0.95, "fuzzy": 1.0}


def leaf_confidence(evidence: list[Evidence], score: float | None, kind: str | None = None) -> float | None:
    """The lowest OCR confidence of the value's lines x the match kind's weight x the match score."""
    weight = MATCH_WEIGHT.get(kind or "exact", 1.0) * (score or 1.0)
    confidences = [e.confidence for e in evidence]
    return round(min(confidences) * weight, 4) if confidences else round(weight, 4)


def _hints(name: str) -> list[str]:
    return [part for part in name.split("_") if len(part) >= 3 or not part.isascii()]


def _ground_object(
    field: FieldSpec,
    prefix: str,
    raw: dict[str, Any],
    normalized: dict[str, Any],
    index: TextIndex,
    evidence_of: EvidenceOf,
    out: GroundedParts,
) -> tuple[int, int, bool]:
    """Ground one object's leaves into `out`; (leaves with a value, leaves found, whether the
    anchor was answered but is not in the text: then the item as a whole is not on the page)."""
    subs: list[ItemField] = list(field.items)
    anchor = next((s for s in subs if s.type == "text" and raw.get(s.name) not in (None, "")), None)
    ordered = ([anchor] if anchor else []) + [s for s in subs if s is not anchor]
    row_hint: list[str] = []
    answered = found = 0
    anchor_missing = False
    for sub in ordered:
        value = raw.get(sub.name)
        path = f"{prefix}.{sub.name}"
        if value in (None, "") or normalized.get(sub.name) is None:
            out.leaves[path] = FieldResult(path, None, status="missing", required=sub.required)
            continue
        answered += 1
        leaf = FieldResult(path, value, normalized.get(sub.name), required=sub.required)
        kind = "text" if sub.type == "enum" else sub.type
        match = index.find(str(value), kind, [*row_hint, *_hints(sub.name), *_hints(field.name)])
        if match is None:
            leaf.status, leaf.problem = "ungrounded", "not found in the OCR text"
            anchor_missing = anchor_missing or sub is anchor
        else:
            found += 1
            leaf.status, leaf.match, leaf.match_score = "grounded", match.kind, match.score
            leaf.evidence = evidence_of(match.start, match.end)
            leaf.confidence = leaf_confidence(leaf.evidence, match.score, match.kind)
            seen = {e.line_id for e in out.evidence}
            out.evidence.extend(e for e in leaf.evidence if e.line_id not in seen)
            if sub is anchor:  # the rest of the item prefers the row the description is on
                row_hint = [str(value).strip()]
        out.leaves[path] = leaf
    return answered, found, anchor_missing


def ground_parts(
    field: FieldSpec, value: Any, normalized: Any, index: TextIndex, evidence_of: EvidenceOf
) -> GroundedParts:
    """Leaf results of a list-of-objects or object field; `value` is the answer as given and
    `normalized` its checked form (same shape)."""
    out = GroundedParts()
    if field.type is FieldType.object:
        pairs = [(field.name, value, normalized)]
    else:
        pairs = [
            (f"{field.name}[{i}]", item, norm) for i, (item, norm) in enumerate(zip(value, normalized, strict=False))
        ]
    for prefix, raw, norm in pairs:
        answered, found, anchor_missing = _ground_object(
            field, prefix, dict(raw), dict(norm or {}), index, evidence_of, out
        )
        if answered and (not found or anchor_missing):
            shown = ", ".join(str(v) for v in raw.values() if v not in (None, ""))
            out.problems.append(f"{prefix} ({shown}) does not occur in the OCR text: give only items on the document")
        elif found < answered:
            for path, leaf in out.leaves.items():
                if path.startswith(f"{prefix}.") and leaf.status == "ungrounded":
                    out.problems.append(f"{path}: {leaf.value!r} does not occur in the OCR text")
    grounded = [leaf for leaf in out.leaves.values() if leaf.status == "grounded"]
    if not out.problems and grounded:
        weakest = min(grounded, key=lambda leaf: (leaf.match_score or 1.0, leaf.match != "exact"))
        out.kind, out.score = weakest.match, min(leaf.match_score or 1.0 for leaf in grounded)
        known = [leaf.confidence for leaf in grounded if leaf.confidence is not None]
        out.confidence = min(known) if known else None
    return out
