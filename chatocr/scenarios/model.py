"""The scenario format: a document type's fields, task instructions and few-shot examples.

A scenario is plain data, validated by pydantic with `extra="forbid"` so that a typo in a key is
an error rather than a silently ignored setting. Example answers are checked against the fields
when the scenario is built: every field present (null where the example has no value), no field
that does not exist, values of the declared type. `AnswerProblem`s carry a path so that the YAML
loader can point at the exact line.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from enum import Enum
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chatocr.checks import declaration_problems
from chatocr.textnorm import fold

__all__ = [
    "PATTERN_FIELD_TYPES",
    "AnswerProblem",
    "CheckDeclaration",
    "Example",
    "ExampleAnswerError",
    "FieldSpec",
    "FieldType",
    "ItemField",
    "Scenario",
    "ScenarioProblems",
    "check_answer",
    "check_patterns",
    "flat_text",
    "ungrounded_example_values",
]

_SLUG = r"^[a-z][a-z0-9_]*$"
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$")


class FieldType(str, Enum):
    text = "text"
    date = "date"
    amount = "amount"
    number = "number"
    enum = "enum"
    list = "list"
    object = "object"  # one nested object; its keys are in `items` (e.g. a typed model's sub-model)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class ItemField(_Strict):
    """A sub-field of a list-of-objects or an object field (e.g. an invoice line's amount). No nesting."""

    name: str = Field(min_length=1)
    description: str = ""
    type: Literal["text", "date", "amount", "number", "enum"] = "text"
    required: bool = Field(False, description="Every item carries this key (a typed model's non-Optional field).")
    choices: tuple[str, ...] = Field((), description="The allowed values of an enum sub-field.")

    @model_validator(mode="after")
    def _enum_has_choices(self) -> ItemField:
        if (self.type == "enum") != bool(self.choices):
            raise ValueError(f"item key {self.name!r}: `choices` go with type enum, and type enum needs them")
        return self


# The field types each kind of pattern applies to: a date's `trim` is a piece printed after the
# date (a receipt's time); the rest are text's. Read by FieldSpec and by typed models' x- keys.
PATTERN_FIELD_TYPES: dict[str, tuple[FieldType, ...]] = {
    "never": (FieldType.text,),
    "trim": (FieldType.text, FieldType.date),
    "complete": (FieldType.text,),
}


def check_patterns(patterns: Iterable[str], kind: str = "never") -> None:
    """ValueError naming the first of a field's `never` (or `trim`, `complete`) patterns that is not
    a regular expression."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"`{kind}` pattern {pattern!r} is not a regular expression: {exc}") from None


def _fullmatch(patterns: Iterable[str], value: str) -> str | None:
    """The first pattern matching the whole text (NFKC, spaces collapsed, case-insensitive)."""
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    return next((p for p in patterns if re.fullmatch(p, text, re.IGNORECASE)), None)


# Digits the OCR reads for the letters they resemble. Undone only in a word that has letters (a
# digit among letters is the misreading; a word of digits is a number): "5/B" -> "S/B", "8HD" -> "BHD".
_LETTER_FOR_DIGIT = str.maketrans("0158", "OISB")


def _read_as_letters(text: str) -> str:
    return " ".join(w.translate(_LETTER_FOR_DIGIT) if any(c.isalpha() for c in w) else w for w in text.split())


class FieldSpec(_Strict):
    """One key to extract."""

    name: str = Field(min_length=1, description="The key the model answers with.")
    description: str = Field("", description="What to look for; shown to the model.")
    type: FieldType = FieldType.text
    required: bool = Field(False, description="The document type always carries this field.")
    aliases: tuple[str, ...] = Field((), description="Other names a user may ask for this field by.")
    choices: tuple[str, ...] = Field((), description="The allowed values of an enum field.")
    items: tuple[ItemField, ...] = Field(
        (), description="Sub-fields when a list holds objects, or the keys of an object field."
    )
    never: tuple[str, ...] = Field(
        (),
        description="Regular expressions of answers that are never this text field's value (the whole answer, "
        "case-insensitive, spaces collapsed), e.g. the document's title for a company name, or a name's second "
        "line on its own. Such an answer is invalid: re-asked, and never the page text an answer snaps to.",
    )
    trim: tuple[str, ...] = Field(
        (),
        description="Regular expressions of OCR lines that are never part of this text field's value at its start "
        "or end (each line whole, case-insensitive, spaces collapsed), e.g. a registration number printed above an "
        "address or a telephone line below it. A grounded answer that spans such lines and more loses them; "
        "such a line alone is ruled out as `never` would rule it out. On a date field: a piece after the date, "
        "glued on by the OCR or after a space (a receipt's time), cut when the rest means the same date.",
    )
    complete: tuple[str, ...] = Field(
        (),
        description="Regular expressions of a piece that completes this text field's value when the page prints it "
        "right after the value, on the same row or as the next line, and the answer left it out (the piece whole, "
        "case-insensitive, spaces collapsed), e.g. a company's legal form ('SDN BHD', 'LTD') under its name. Also "
        "matched with the OCR's digit-for-letter misreadings undone ('5/B' is 'S/B'), which then also mends such a "
        "piece at the value's end. Applied to grounded answers when snapping is on.",
    )
    before: str | None = Field(
        None,
        description="A field this one always precedes on the page (left of it on the same row, else above it): "
        "starting_station before destination_station, buyer before seller. Swapped answers are put back by "
        "where they sit (config `positions`).",
    )

    @field_validator("never", "trim", "complete")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        check_patterns(patterns, info.field_name or "never")
        return patterns

    def ruled_out(self, value: object) -> str | None:
        """The `never` (or `trim`) pattern a text answer matches as a whole, if any: a line that is
        never part of the value at its edges ("TEL: 03-..." for an address) is not the value alone."""
        if not (self.never or self.trim) or not isinstance(value, str):
            return None
        return _fullmatch(self.never, value) or _fullmatch(self.trim, value)

    def trims(self, line: str) -> bool:
        """Whether an OCR line at the start or end of an answer is never part of it (`trim`)."""
        return bool(self.trim) and _fullmatch(self.trim, line) is not None

    def completion(self, piece: str) -> str | None:
        """How `piece` reads as what completes this field's value (`complete`): itself (spaces
        collapsed), or read with the OCR's digit-for-letter misreadings undone ("5/B" -> "S/B");
        None when it is no such piece."""
        if not self.complete:
            return None
        text = " ".join(piece.split())
        if _fullmatch(self.complete, text):
            return text
        read = _read_as_letters(text)
        return read if read != text and _fullmatch(self.complete, read) else None

    @model_validator(mode="after")
    def _type_specific(self) -> FieldSpec:
        for kind, types in PATTERN_FIELD_TYPES.items():
            if getattr(self, kind) and self.type not in types:
                where = " and ".join(t.value for t in types)
                raise ValueError(f"field {self.name!r} has `{kind}` patterns, which apply to {where} fields only")
        if self.type is FieldType.enum and not self.choices:
            raise ValueError(f"field {self.name!r} has type enum but no `choices`")
        if self.choices and self.type is not FieldType.enum:
            raise ValueError(f"field {self.name!r} has `choices` but its type is {self.type.value}, not enum")
        if self.items and self.type not in (FieldType.list, FieldType.object):
            raise ValueError(f"field {self.name!r} has `items` but its type is {self.type.value}, not list or object")
        if self.type is FieldType.object and not self.items:
            raise ValueError(f"field {self.name!r} has type object but no `items` (its keys)")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Example(_Strict):
    """A worked example: OCR text in reading order and the answer we want for it."""

    id: str = Field("", description="Unique within the scenario; derived from the text when omitted.")
    text: str = Field(min_length=1)
    answer: dict[str, Any]

    @property
    def uid(self) -> str:
        """A content hash: stable across runs, changes whenever the example changes."""
        payload = json.dumps([self.text, self.answer], ensure_ascii=False, sort_keys=True)
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:12]


class AnswerProblem:
    """A problem in one example answer; `path` is relative to the scenario (for line numbers)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{_format_path(self.path)}: {self.message}"


class ScenarioProblems(ValueError):
    """Problems found by Scenario validation, each with its path in the scenario; pydantic keeps
    the error in its ctx and the loader reads `.problems` to name each one's line."""

    def __init__(self, problems: list[AnswerProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ExampleAnswerError(ScenarioProblems):
    """Example answers that do not match the fields."""


class CheckDeclaration(BaseModel):
    """A document check the scenario declares (chatocr.checks): which check, on which fields, with
    which arguments (the check's own keys, beside `check`, `fields` and `name`). Checked against
    the check's definition and the scenario's fields when the scenario loads."""

    model_config = ConfigDict(extra="allow", frozen=True)

    check: str = Field(min_length=1, description="The check: uscc, id_number, invoice_code, sum, date, ...")
    fields: tuple[str, ...] = Field(
        min_length=1, description="The scenario's fields it checks, in the order the check names them."
    )
    name: str | None = Field(None, description="The name its result carries (default: the check's).")

    @property
    def arguments(self) -> dict[str, Any]:
        """The check's own arguments as declared (tolerance, allow_legacy, ...)."""
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return self.name or self.check


def _format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _scalar_problem(value: Any, kind: str, choices: tuple[str, ...] = ()) -> str | None:
    if kind in ("text", "date"):
        return None if isinstance(value, str) else f"expected a string, got {type(value).__name__}"
    if kind in ("amount", "number"):
        if isinstance(value, bool):
            return "expected a number or a numeric string, got a boolean"
        if isinstance(value, (int, float)):
            return None
        if isinstance(value, str):
            cleaned = re.sub(r"[\s¥￥$€£]|RM|S\$|元", "", value)
            return None if _NUMBER.match(cleaned) else f"{value!r} is not a number"
        return f"expected a number, got {type(value).__name__}"
    if kind == "enum":
        return None if value in choices else f"{value!r} is not one of the choices {list(choices)}"
    return None


def check_answer(fields: tuple[FieldSpec, ...], answer: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of one answer against the fields, as (path inside the answer, message)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    by_name = {field.name: field for field in fields}
    for key in answer:
        if key not in by_name:
            problems.append(((key,), f"unknown field {key!r}; the fields are {list(by_name)}"))
    for field in fields:
        if field.name not in answer:
            problems.append(((), f"missing field {field.name!r} (give every field; use null when absent)"))
            continue
        value = answer[field.name]
        if value is None:
            if field.required:
                problems.append(((field.name,), f"field {field.name!r} is required but the answer is null"))
            continue
        if field.type is FieldType.list:
            if not isinstance(value, list):
                problems.append(((field.name,), f"expected a list, got {type(value).__name__}"))
                continue
            for index, item in enumerate(value):
                problems.extend(_item_problems(field, (field.name, index), item))
            continue
        if field.type is FieldType.object:
            problems.extend(_item_problems(field, (field.name,), value))
            continue
        message = _scalar_problem(value, field.type.value, field.choices)
        if not message and (pattern := field.ruled_out(value)):
            kind = "never" if pattern in field.never else "trim"
            message = f"{value!r} matches the field's own `{kind}` pattern {pattern!r}"
        if message:
            problems.append(((field.name,), message))
    return problems


def _item_problems(field: FieldSpec, path: tuple[str | int, ...], item: Any) -> list[tuple[tuple[str | int, ...], str]]:
    if not field.items:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            return []
        return [(path, f"list items must be strings or numbers, got {type(item).__name__}")]
    if not isinstance(item, dict):
        what = "the value" if field.type is FieldType.object else "list items"
        return [(path, f"{what} must be objects with keys {[f.name for f in field.items]}")]
    out: list[tuple[tuple[str | int, ...], str]] = []
    known = {sub.name: sub for sub in field.items}
    for key in item:
        if key not in known:
            out.append(((*path, key), f"unknown item key {key!r}; the item keys are {list(known)}"))
    for sub in field.items:
        if sub.name not in item:
            out.append((path, f"item is missing {sub.name!r} (use null when absent)"))
        elif item[sub.name] is not None:
            message = _scalar_problem(item[sub.name], sub.type, sub.choices)
            if message:
                out.append(((*path, sub.name), message))
    return out


class Scenario(_Strict):
    """A document type: what to extract, how, and worked examples."""

    name: str = Field(pattern=_SLUG, description="Identifier, e.g. vat_invoice.")
    title: str = Field(min_length=1, description="Human title in the scenario's language.")
    language: Literal["zh", "en"] = Field(description="Chooses the prompt set.")
    description: str = Field(min_length=1, description="What documents this covers; used for routing.")
    instructions: str = Field("", description="Task-specific rules shown to the model.")
    fields: tuple[FieldSpec, ...] = Field(min_length=1)
    examples: tuple[Example, ...] = ()
    checks: tuple[CheckDeclaration, ...] = Field(
        (),
        description="Document checks on the extracted values (check digits, sums, amounts in words, dates, the final "
        "amount): a failed check lowers the confidence of the fields it names.",
    )
    accept_precision: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="The review queue's default for this scenario: accept a field unseen when its calibrated "
        "confidence is at the threshold held out at this precision (e.g. 0.99); the config's accept_precision "
        "when unset. A call's own accept_precision or accept_threshold wins.",
    )
    accept_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="The review queue's default for this scenario as a fixed confidence threshold (instead of "
        "accept_precision).",
    )

    @field_validator("fields")
    @classmethod
    def _unique_field_names(cls, fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
        seen: dict[str, str] = {}
        for field in fields:
            for name in field.names:
                key = name.casefold()
                if key in seen:
                    raise ValueError(f"the name {name!r} is used by both {seen[key]!r} and {field.name!r}")
                seen[key] = field.name
        names = {field.name for field in fields}
        for field in fields:
            if field.before is not None and (field.before == field.name or field.before not in names):
                raise ValueError(f"field {field.name!r}: `before` must name another field, got {field.before!r}")
        return fields

    @model_validator(mode="after")
    def _one_accept_default(self) -> Scenario:
        if self.accept_precision is not None and self.accept_threshold is not None:
            raise ValueError("give accept_precision or accept_threshold, not both")
        return self

    @model_validator(mode="after")
    def _checks_are_valid(self) -> Scenario:
        types = {field.name: field.type.value for field in self.fields}
        problems = [
            AnswerProblem(("checks", index, *path), message)
            for index, declaration in enumerate(self.checks)
            for path, message in declaration_problems(declaration.model_dump(), types)
        ]
        if problems:
            raise ScenarioProblems(problems)
        return self

    @model_validator(mode="after")
    def _examples_match_fields(self) -> Scenario:
        problems: list[AnswerProblem] = []
        seen_ids: dict[str, int] = {}
        for index, example in enumerate(self.examples):
            if example.id:
                if example.id in seen_ids:
                    problems.append(
                        AnswerProblem(
                            ("examples", index, "id"),
                            f"duplicate example id {example.id!r} (also examples[{seen_ids[example.id]}])",
                        )
                    )
                seen_ids[example.id] = index
            for path, message in check_answer(self.fields, example.answer):
                problems.append(AnswerProblem(("examples", index, "answer", *path), message))
        if problems:
            raise ExampleAnswerError(problems)
        return self

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name` or having it as an alias (case-insensitive)."""
        key = name.strip().casefold()
        for field in self.fields:
            if any(candidate.casefold() == key for candidate in field.names):
                return field
        return None

    def instructions_for(self, names: Iterable[str]) -> str:
        """The instructions without the rules about fields that were not asked for.

        A rule is a bullet ("- ", "* ", "1. ") with its continuation lines. Its subjects are the
        fields that open one of its clauses ("tax is ...", "date and time are ...", "，invoice_code
        填 ..."). A rule is kept when a subject was asked for; a rule with no subject is kept when
        it names a requested field anywhere or names no field at all (a general rule such as
        "amounts without the currency"). Why: every dropped rule is prompt tokens saved on every
        call, and a small model told how to fill a field it must not output is tempted to output
        it. Instructions that are not bullets are kept whole."""
        wanted = {field.name for name in names if (field := self.field(name)) is not None}
        rules = _split_rules(self.instructions)
        if len(rules) < 2:
            return self.instructions
        field_names = [f.name for f in self.fields]
        kept = []
        for rule in rules:
            subjects = _subjects(rule, field_names)
            if subjects:
                keep = bool(subjects & wanted)
            else:
                mentioned = {name for name in field_names if _mentions(rule, name)}
                keep = not mentioned or bool(mentioned & wanted)
            if keep:
                kept.append(rule)
        return "\n".join(kept)

    def to_yaml(self) -> str:
        """This scenario as YAML that loads back to an equal scenario."""
        field_defaults = FieldSpec(name="x").model_dump(mode="json")
        item_defaults = ItemField(name="x").model_dump(mode="json")
        data = self.model_dump(mode="json")
        for field in data["fields"]:
            field["items"] = [_clean_field(item, item_defaults) for item in field["items"]]
            field.update(_clean_field(field, field_defaults))
            for key in [k for k in field if k != "name" and field[k] == field_defaults.get(k)]:
                del field[key]
        if not data["instructions"]:
            del data["instructions"]
        if not data["examples"]:
            del data["examples"]
        data["checks"] = [{k: v for k, v in check.items() if v is not None} for check in data["checks"]]
        if not data["checks"]:
            del data["checks"]
        for key in ("accept_precision", "accept_threshold"):
            if data[key] is None:
                del data[key]
        header = "# yaml-language-server: $schema=../schema/scenario.schema.json\n"
        return header + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)

    def example_id(self, index: int) -> str:
        """A readable, stable id for examples[index]: `scenario/id` or `scenario/uid`."""
        example = self.examples[index]
        return f"{self.name}/{example.id or example.uid}"


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)、])\s")


def _split_rules(instructions: str) -> list[str]:
    """Bullets with their continuation lines; [] when the text does not start with a bullet."""
    rules: list[str] = []
    for line in instructions.splitlines():
        if _BULLET.match(line):
            rules.append(line)
        elif not rules:
            return []
        else:
            rules[-1] += "\n" + line
    return rules


# Where a clause starts: the bullet, or after ; ； 。 ， , or a full stop followed by a space.
_CLAUSE_START = re.compile(r"^\s*(?:[-*•]|\d+[.)、])\s+|[;；。，]\s*|[,.]\s+")
_JOINERS = (" and ", " or ", "、", "和", "/", ", ")


def _subjects(rule: str, names: list[str]) -> set[str]:
    """Fields named at the start of one of the rule's clauses, with their "x and y" companions."""
    by_length = sorted(names, key=len, reverse=True)  # tax_amount before tax
    found: set[str] = set()
    for start in _CLAUSE_START.finditer(rule):
        position = start.end()
        while True:
            name = next((n for n in by_length if rule.startswith(n, position)), None)
            if name is None or re.match(r"[A-Za-z0-9_]", rule[position + len(name) : position + len(name) + 1]):
                break
            found.add(name)
            position += len(name)
            joiner = next((j for j in _JOINERS if rule.startswith(j, position)), None)
            if joiner is None:
                break
            position += len(joiner)
    return found


def _mentions(rule: str, name: str) -> bool:
    """Whether `rule` names the field `name` as a word ("tax" in "tax is", not in "taxi" or "tax_id";
    ASCII word boundaries only, so Chinese text around an identifier does not hide it)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", rule) is not None


def flat_text(text: str) -> str:
    """NFKC, case-folded, all whitespace removed: how an answer value is looked for in a text
    (here, and when examples are focused on their answers): the one normaliser, chatocr.textnorm."""
    return fold(text)


def ungrounded_example_values(scenario: Scenario) -> list[str]:
    """Example answer values that do not occur in the example's own text (NFKC, case and
    whitespace ignored, as runtime grounding does). Not an error: a value may legitimately span
    two columns; `chatocr scenarios validate` shows these as warnings."""
    out: list[str] = []
    for index, example in enumerate(scenario.examples):
        text = flat_text(example.text)
        for field in scenario.fields:
            values: list[tuple[str, Any]] = [(field.name, example.answer.get(field.name))]
            if field.type is FieldType.list and isinstance(values[0][1], list):
                values = []
                for i, item in enumerate(example.answer[field.name]):
                    if isinstance(item, dict):
                        values += [(f"{field.name}[{i}].{k}", v) for k, v in item.items()]
                    else:
                        values.append((f"{field.name}[{i}]", item))
            elif field.type is FieldType.object and isinstance(values[0][1], dict):
                values = [(f"{field.name}.{k}", v) for k, v in example.answer[field.name].items()]
            for where, value in values:
                grounded_kind = field.type is not FieldType.enum
                if isinstance(value, str) and value.strip() and grounded_kind and flat_text(value) not in text:
                    out.append(f"examples[{index}].answer.{where}: {value!r} does not occur in the example's text")
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so example texts stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _clean_field(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k == "name" or v != defaults.get(k)}
