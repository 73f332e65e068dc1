"""A scenario from reviewed documents (`chatocr scenarios new NAME --from-reviewed REVIEW_FILE`).

The fields are the reviewed documents' fields, each typed from its reviewed values: `date` when
every value reads as one date (and is little more than it), `amount` when every value is a money
amount as printed (two decimals or a currency), `number` for short plain numbers (a long digit
string is an identifier: text), `enum` when at least four documents share at most a third as many
short values (two or more), `list` for lists, else `text`. Descriptions are left for the author to write (they
are shown to the model), with the values seen. The examples are the 2-4 reviewed documents most
different from each other by the text similarity that ranks examples (chatocr.similarity): the
first is the one least like the others, each next the one least like those already taken, so the
examples cover the layouts the documents come in. The YAML loads and validates like any scenario:
a value its inferred type would refuse turns that field to text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from chatocr.errors import ConfigError
from chatocr.extraction.validation import normalize_amount, normalize_date
from chatocr.scenarios.model import FieldSpec, check_answer
from chatocr.secrets import redact
from chatocr.similarity import SimilarityIndex

__all__ = ["ReviewedExample", "infer_field", "most_different", "scenario_yaml"]

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_CURRENCY = re.compile(r"[¥￥$€£]|\bRM\b|S\$|元|\b[A-Z]{3}\b")
_TWO_DECIMALS = re.compile(r"\d[.,]\d{2}(?!\d)")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:[1-9]\d{0,6}|0)(?:\.\d+)?$")


@dataclass(frozen=True)
class ReviewedExample:
    """A fully reviewed document: its OCR text and its reviewed values."""

    name: str
    text: str
    values: Mapping[str, Any]


def _is_date(text: str) -> bool:
    return normalize_date(text) is not None and len(text) <= 30 and sum(c.isalpha() for c in text) <= 9


def _is_amount(text: str) -> bool:
    letters = sum(c.isalpha() for c in text) - (3 if re.search(r"\b[A-Z]{3}\b", text) else 0)
    money = bool(_CURRENCY.search(text) or _TWO_DECIMALS.search(text))
    return normalize_amount(text) is not None and money and letters <= 2 and len(text) <= 24


def infer_field(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """A field's YAML mapping from its reviewed values (see the module docstring)."""
    present = [v for v in values if v is not None and v != "" and v != []]
    seen = ", ".join(repr(v) for v in list(dict.fromkeys(map(str, present)))[:3])
    field: dict[str, Any] = {
        "name": name,
        "type": "text",
        "description": f"TODO: what {name} is and where it sits" + (f" (reviewed values: {seen})" if seen else ""),
    }
    if not present:
        return field
    if any(isinstance(v, list) for v in present):
        field["type"] = "list"
        keys = list(
            dict.fromkeys(
                k for v in present if isinstance(v, list) for item in v if isinstance(item, dict) for k in item
            )
        )
        if keys:
            field["items"] = [{"name": key, "type": "text"} for key in keys]
        return field
    texts = [str(v) for v in present]
    if all(_is_date(t) for t in texts):
        field["type"] = "date"
    elif all(_is_amount(t) for t in texts):
        field["type"] = "amount"
    elif all(_PLAIN_NUMBER.match(t.strip()) for t in texts):
        field["type"] = "number"
    else:
        distinct = sorted(set(texts))
        few = 2 <= len(distinct) <= max(2, len(texts) // 3)  # one value alone says nothing of the others
        if len(texts) >= 4 and few and all(len(d) <= 24 for d in distinct):
            field["type"] = "enum"
            field["choices"] = distinct
    return field


def most_different(texts: Sequence[str], count: int) -> list[int]:
    """Indexes of `count` texts that differ most from each other (greedy farthest first), in
    the order taken."""
    if count <= 0 or not texts:
        return []
    index = SimilarityIndex(texts)
    similarity = [index.scores(text) for text in texts]
    total = [sum(row) - row[n] for n, row in enumerate(similarity)]
    chosen = [min(range(len(texts)), key=lambda n: (total[n], n))]
    while len(chosen) < min(count, len(texts)):
        rest = [n for n in range(len(texts)) if n not in chosen]
        chosen.append(min(rest, key=lambda n: (max(similarity[n][c] for c in chosen), n)))
    return chosen


def _answer(fields: Sequence[dict[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        value = values.get(field["name"])
        if field["type"] in ("text", "date", "enum") and value is not None and not isinstance(value, str):
            value = str(value)
        out[field["name"]] = value
    return out


def _typed_fields(fields: list[dict[str, Any]], reviewed: Sequence[ReviewedExample]) -> list[dict[str, Any]]:
    """The fields, any whose inferred type refuses a reviewed value turned to text."""
    while True:
        specs = tuple(FieldSpec.model_validate(f) for f in fields)
        answers = [_answer(fields, doc.values) for doc in reviewed]
        wrong = {path[0] for answer in answers for path, _ in check_answer(specs, answer) if path}
        if not wrong:
            return fields
        fields = [
            {"name": f["name"], "type": "text", "description": f["description"]} if f["name"] in wrong else f
            for f in fields
        ]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def scenario_yaml(
    name: str, reviewed: Sequence[ReviewedExample], source: str, *, language: str | None = None, examples: int = 4
) -> str:
    """The scenario YAML (a header of what to do next, then the scenario)."""
    if not _SLUG.match(name):
        raise ConfigError(
            f"Scenario name {name!r} is not valid.",
            hint="Use lower-case letters, digits and _, starting with a letter: my_receipt.",
        )
    if not reviewed:
        raise ConfigError(
            f"{source} has no fully reviewed document.",
            hint="Review every field of at least two documents (chatocr review RESULTS), then try again.",
        )
    names = list(dict.fromkeys(key for doc in reviewed for key in doc.values))
    fields = _typed_fields([infer_field(key, [doc.values.get(key) for doc in reviewed]) for key in names], reviewed)
    picked = most_different([doc.text for doc in reviewed], examples)
    text = "\n".join(doc.text for doc in reviewed)
    cjk, latin = len(_CJK.findall(text)), len(re.findall(r"[A-Za-z]", text))
    data = {
        "name": name,
        "title": name.replace("_", " ").capitalize(),
        "language": language or ("zh" if cjk > 0.3 * (cjk + latin) else "en"),
        "description": f"TODO: which documents this covers (used to route documents to it). "
        f"Made from {len(reviewed)} reviewed document(s) of {source}.",
        "instructions": "",
        "fields": fields,
        "examples": [
            {
                "id": f"{name}-{number}",
                "text": "\n".join(line.rstrip() for line in reviewed[i].text.strip().splitlines()),
                "answer": _answer(fields, reviewed[i].values),
            }
            for number, i in enumerate(picked, 1)
        ],
    }
    header = (
        f"# Scenario made by `chatocr scenarios new --from-reviewed` from {len(reviewed)} reviewed document(s)\n"
        f"# of {source}; the examples are the {len(picked)} most different of them.\n"
        "# 1. Replace the TODO descriptions (the model reads them); check each field's inferred type.\n"
        "# 2. Add `required: true` to fields every document carries, and instructions if the model needs rules.\n"
        "# 3. chatocr scenarios validate THIS_FILE, then chatocr scenarios test THIS_FILE --data DIR\n"
    )
    return header + redact(yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100))
