"""Extractive decoding: text fields constrained to strings built from the document's lines.

Where the backend enforces a JSON schema by grammar (the local llama.cpp model), a text field's
schema can list what the page holds instead of "any string": every OCR line, the part of a line
after its label ("名称：北京某某公司" -> "北京某某公司"), and each line joined with the next one
or two (a company name over two lines, an address over three), plus null ("not present", always
allowed: a document of noise must not force a value). Every answer is then grounded by
construction. Dates, amounts and numbers keep free generation (their form is checked and
normalised anyway); enums and lists keep their own schema.

The model may still choose the wrong line; what it cannot do is rewrite one. Measured against
snapping in docs/evaluation.md (`--strategy extractive`).
"""

from __future__ import annotations

import re
from typing import Any

from chatocr.extraction.extractor import json_schema_for
from chatocr.ocr.layout import LayoutText
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["MAX_CHOICES", "extractive_schema", "page_strings"]

# The grammar grows with the choices; a long document keeps its first lines' choices.
MAX_CHOICES = 600
_LABEL = re.compile(r"^[^:：]{1,20}[:：]\s*(.+)$")


def page_strings(layout: LayoutText, max_join: int = 3) -> list[str]:
    """The strings a text field may take on this page, in reading order, without repeats."""
    lines = [layout.text[s.start : s.end].strip() for s in layout.spans]
    lines = [line for line in lines if line]
    out: dict[str, None] = {}
    for i, line in enumerate(lines):
        out.setdefault(line, None)
        labelled = _LABEL.match(line)
        if labelled and labelled.group(1).strip():
            out.setdefault(labelled.group(1).strip(), None)
        for width in range(2, max_join + 1):
            if i + width <= len(lines):
                out.setdefault(" ".join(lines[i : i + width]), None)
        if len(out) >= MAX_CHOICES:
            break
    return list(out)[:MAX_CHOICES]


def extractive_schema(fields: tuple[FieldSpec, ...], layout: LayoutText) -> dict[str, Any]:
    """json_schema_for(fields) with every text field restricted to the page's strings or null."""
    schema = json_schema_for(fields)
    choices = page_strings(layout)
    for field in fields:
        if field.type is FieldType.text:
            allowed = [c for c in choices if not field.ruled_out(c)]  # never "TAX INVOICE" for a company
            schema["properties"][field.name] = {"enum": [*allowed, None]}
    return schema
