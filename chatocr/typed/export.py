"""One definition for scenario authors and app developers: a scenario built from a pydantic model
(and written as YAML), and a scenario's fields exported as a pydantic model (a class at run time,
or Python source for type checkers).

    scenario = scenario_from_model(Receipt, name="my_receipt", title="Receipt", language="en",
                                   description="Shop receipts")
    Path("my_receipt.yaml").write_text(scenario.to_yaml())
    Receipt2 = model_from_fields(scenario.name, scenario.fields)   # typed values: Decimal, date, ...
    print(model_source(scenario))                        # `chatocr scenarios model NAME`
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model

from chatocr.scenarios.model import Example, FieldSpec, FieldType, Scenario
from chatocr.typed.schema import PATTERN_KEYS, typed_schema

__all__ = ["model_from_fields", "model_source", "scenario_from_model"]

_PYTHON: dict[str, Any] = {"text": str, "date": date, "amount": Decimal, "number": float}
# `dt.date`, not `date`: a field named date would shadow the type in its own class body.
_SOURCE = {"text": "str", "date": "dt.date", "amount": "Decimal", "number": "float"}


def _class_name(name: str) -> str:
    out = "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)
    return out if out.isidentifier() and not keyword.iskeyword(out) else "Document"


def _leaf_type(kind: str, choices: tuple[str, ...]) -> Any:
    if kind == "enum":
        return Literal[choices]  # Literal accepts a tuple of values at run time
    return _PYTHON[kind]


def _usable(name: str) -> bool:
    """Whether a key can be a model's attribute as it is: an identifier that is no keyword, does not
    start with `_` (pydantic's private attributes) and is no member of BaseModel (`model_dump`,
    `schema`, `copy`, `model_config`: a field of that name breaks the class or is dropped)."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith(("_", "model_"))
        and not hasattr(BaseModel, name)
    )


def _attrs(names: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Key -> (attribute name, alias) for the keys of one model: a key that cannot be an attribute
    (发票号码 can; tax-id, `a b`, `1st`, `_id`, `model_dump` cannot) becomes a safe attribute with the
    key as its alias, unique within the model, so the model reads and writes the key itself."""
    taken = {name for name in names if _usable(name)}
    out: dict[str, tuple[str, str | None]] = {}
    for name in names:
        if name in taken and name not in out:
            out[name] = (name, None)
            continue
        safe = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
        base = f"f_{safe}" if safe.isascii() and safe.isidentifier() else "field"
        attr, number = base, 2
        while attr in taken or not _usable(attr):
            attr, number = f"{base}_{number}", number + 1
        taken.add(attr)
        out[name] = (attr, name)
    return out


def _attr(name: str) -> tuple[str, str | None]:
    """(attribute name, alias) of a key on its own (see _attrs)."""
    return _attrs([name])[name]


def _patterns_extra(field: FieldSpec | None) -> dict[str, JsonValue] | None:
    """A text field's `never`, `trim` and `complete` patterns as its json_schema_extra, or None."""
    if field is None:
        return None
    extra: dict[str, JsonValue] = {
        key: list(getattr(field, attr)) for key, attr in PATTERN_KEYS if getattr(field, attr)
    }
    return extra or None


def _declared(
    annotation: Any,
    required: bool,
    description: str,
    alias: str | None,
    field: FieldSpec | None = None,
) -> tuple[Any, Any]:
    extra = _patterns_extra(field)
    if required:
        return annotation, Field(description=description, alias=alias, json_schema_extra=extra)
    return Optional[annotation], Field(None, description=description, alias=alias, json_schema_extra=extra)  # noqa: UP045 - runtime object


# Keys that are not attributes are aliases: validated by them and dumped by them, so `data` is keyed
# by the schema's own names (`a b`, `1st`, `model_config`), never renamed or dropped.
_CONFIG = ConfigDict(populate_by_name=True, serialize_by_alias=True, protected_namespaces=())


def _sub_model(owner: str, field: FieldSpec) -> type[BaseModel]:
    declared: dict[str, Any] = {}
    attrs = _attrs([sub.name for sub in field.items])
    for sub in field.items:
        attr, alias = attrs[sub.name]
        declared[attr] = _declared(_leaf_type(sub.type, sub.choices), sub.required, sub.description, alias)
    return create_model(f"{owner}{_class_name(field.name)}Item", __config__=_CONFIG, **declared)


def model_from_fields(name: str, fields: tuple[FieldSpec, ...]) -> type[BaseModel]:
    """A pydantic model whose instances hold these fields' typed values (amounts as Decimal,
    numbers as float, dates as date, enums as Literal, lists of objects as lists of sub-models),
    keyed by the fields' own names when dumped."""
    class_name = _class_name(name)
    declared: dict[str, Any] = {}
    attrs = _attrs([field.name for field in fields])
    for field in fields:
        annotation: Any
        if field.type is FieldType.list:
            annotation = list[_sub_model(class_name, field)] if field.items else list[str]  # type: ignore[misc]
        elif field.type is FieldType.object:
            annotation = _sub_model(class_name, field)
        else:
            annotation = _leaf_type(field.type.value, field.choices)
        attr, alias = attrs[field.name]
        declared[attr] = _declared(annotation, field.required, field.description, alias, field)
    return create_model(class_name, __config__=_CONFIG, **declared)


def _source_leaf(kind: str, choices: tuple[str, ...]) -> str:
    return f"Literal[{', '.join(repr(c) for c in choices)}]" if kind == "enum" else _SOURCE[kind]


def _source_line(
    name: str,
    annotation: str,
    required: bool,
    description: str,
    field: FieldSpec | None = None,
) -> str:
    attr, alias = _attr(name)
    args = [] if required else ["None"]
    if description:
        args.append(f"description={description!r}")
    if alias:
        args.append(f"alias={alias!r}")
    if extra := _patterns_extra(field):
        args.append(f"json_schema_extra={extra!r}")
    shown = annotation if required else f"{annotation} | None"
    return f"    {attr}: {shown} = Field({', '.join(args)})"


def model_source(scenario: Scenario) -> str:
    """Python source of the scenario's fields as pydantic models, for type checkers and IDEs."""
    class_name = _class_name(scenario.name)
    blocks: list[str] = []
    title = scenario.title if '"' not in scenario.title and "\\" not in scenario.title else class_name
    lines = [
        f"class {class_name}(BaseModel):",
        f'    """{title}"""',
        "",
        "    model_config = ConfigDict(populate_by_name=True)",
        "",
    ]
    for field in scenario.fields:
        if field.type in (FieldType.list, FieldType.object) and field.items:
            sub_name = f"{class_name}{_class_name(field.name)}Item"
            sub = [f"class {sub_name}(BaseModel):", "    model_config = ConfigDict(populate_by_name=True)", ""]
            sub += [
                _source_line(s.name, _source_leaf(s.type, s.choices), s.required, s.description) for s in field.items
            ]
            blocks.append("\n".join(sub))
            annotation = f"list[{sub_name}]" if field.type is FieldType.list else sub_name
        elif field.type is FieldType.list:
            annotation = "list[str]"
        else:
            annotation = _source_leaf(field.type.value, field.choices)
        lines.append(_source_line(field.name, annotation, field.required, field.description, field))
    header = [
        f'"""Typed fields of the chatocr scenario {scenario.name!r} (made by `chatocr scenarios model`)."""',
        "",
        "from __future__ import annotations",
        "",
        "import datetime as dt",
        "from decimal import Decimal",
        "from typing import Literal",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
    ]
    return "\n".join(header) + "\n\n\n" + "\n\n\n".join([*blocks, "\n".join(lines)]) + "\n"


def scenario_from_model(
    model: type[BaseModel] | dict[str, Any],
    *,
    name: str,
    title: str | None = None,
    language: Literal["zh", "en"] = "en",
    description: str | None = None,
    instructions: str = "",
    examples: tuple[Example, ...] | list[Example] | list[dict[str, Any]] = (),
) -> Scenario:
    """A scenario whose fields are the model's (or JSON Schema's); validated like a YAML one."""
    typed = typed_schema(model)
    doc = (model.__doc__ or "").strip() if isinstance(model, type) else str(model.get("description", ""))
    return Scenario.model_validate(
        {
            "name": name,
            "title": title or typed.name,
            "language": language,
            "description": description or doc or f"Documents described by {typed.name}.",
            "instructions": instructions,
            "fields": [f.model_dump() for f in typed.fields],
            "examples": list(examples),
        }
    )
