"""Schema in: a pydantic model or a JSON Schema becomes the field specs chatocr extracts.

    str                         -> text
    date, datetime              -> date
    Decimal                     -> amount
    float, int                  -> number
    Literal["a", "b"], Enum     -> enum (string choices)
    Optional[X], X | None       -> not required
    a nested model              -> object (its keys: scalars of the kinds above)
    list[X], list[Model]        -> list (of strings, or of objects: line items)
    Field(description, alias)   -> the field's description and aliases
    json_schema_extra={"x-never": [regex, ...]}
                                -> answers a text field never takes (FieldSpec.never)
    json_schema_extra={"x-trim": [regex, ...]}
                                -> edge lines never part of a text field (FieldSpec.trim)
    json_schema_extra={"x-complete": [regex, ...]}
                                -> a piece after a text field that completes it (FieldSpec.complete)

Anything else (bytes, dict[str, Any], unions of several types, recursive models, models nested
more than one level) is a SchemaError naming the field, raised before any OCR or model call. One
level of nesting is what the field specs (and the prompts, the grounding and the scenario YAML)
can carry; it covers headers, parties and line items.

A JSON Schema is mapped the same way by chatocr/typed/json_schema.py.
"""

from __future__ import annotations

import json
import types
import typing
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from chatocr.errors import SchemaError
from chatocr.scenarios.model import PATTERN_FIELD_TYPES, FieldSpec, FieldType, ItemField, check_patterns
from chatocr.typed.references import check_schema_size

__all__ = ["PATTERN_KEYS", "SUPPORTED_TYPES", "TypedSchema", "text_patterns", "typed_schema"]

# A text field's pattern keys in json_schema_extra (or a JSON Schema property) and the FieldSpec
# attribute each one fills: read from models and JSON Schemas, written back by the exporters.
PATTERN_KEYS = (("x-never", "never"), ("x-trim", "trim"), ("x-complete", "complete"))

SUPPORTED_TYPES = (
    "str, date, datetime, Decimal, float, int, Literal[...] or Enum of strings, Optional[...] of these, "
    "a nested model of these, list[...] of these or of such a model"
)

_SCALARS: dict[type, str] = {
    str: "text",
    date: "date",
    datetime: "date",
    Decimal: "amount",
    float: "number",
    int: "number",
}


@dataclass(frozen=True)
class TypedSchema:
    """What a typed request asks for: the fields to extract and the model their values must fit."""

    name: str
    model: type[BaseModel]  # the caller's model, or one built from the JSON Schema
    fields: tuple[FieldSpec, ...]
    json_schema: dict[str, Any]  # the caller's JSON Schema, or the model's
    keys: dict[str, str] = field(default_factory=dict)  # field name -> the key the model validates by
    from_json_schema: bool = False
    # "total", "items.quantity": fields with a default, left out of the input when absent so that
    # the default applies (`tags: list[str] = []` gets [], not None).
    defaulted: frozenset[str] = frozenset()
    validator: Any = None  # a JSON Schema's jsonschema validator (built once: it is dear)
    checked: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # see instance.py

    def describe(self) -> dict[str, Any]:
        """What the JSON form of a result carries about the schema."""
        return {"name": self.name, "json_schema": self.json_schema}


# Converted once per model class / JSON Schema text: an app extracts many documents with one schema.
_MODELS: weakref.WeakKeyDictionary[type[BaseModel], TypedSchema] = weakref.WeakKeyDictionary()
_JSON_SCHEMAS: dict[str, TypedSchema] = {}


def typed_schema(schema: type[BaseModel] | dict[str, Any] | TypedSchema) -> TypedSchema:
    """A pydantic BaseModel subclass or a JSON Schema dict as a TypedSchema (SchemaError if unmappable)."""
    from chatocr.typed.json_schema import from_json_schema  # it builds on this module

    if isinstance(schema, TypedSchema):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        cached = _MODELS.get(schema)
        if cached is None:
            cached = _MODELS[schema] = _from_model(schema)
        return cached
    if isinstance(schema, dict):
        check_schema_size(schema)  # before any work on it, the cache key's json.dumps included
        try:
            key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return from_json_schema(schema)
        if key not in _JSON_SCHEMAS:
            if len(_JSON_SCHEMAS) > 256:
                _JSON_SCHEMAS.clear()
            _JSON_SCHEMAS[key] = from_json_schema(schema)
        return _JSON_SCHEMAS[key]
    raise SchemaError(
        f"schema must be a pydantic BaseModel subclass or a JSON Schema dict, got {type(schema).__name__}.",
        hint="Pass the class itself (schema=Receipt), not an instance, or a dict such as Receipt.model_json_schema().",
    )


# -- pydantic models ------------------------------------------------------------------------------


def _from_model(model: type[BaseModel]) -> TypedSchema:
    if not model.__pydantic_complete__:
        try:
            model.model_rebuild()
        except Exception as exc:
            raise SchemaError(
                f"{model.__name__} has annotations pydantic cannot resolve: {exc}",
                hint=f"Define or import the types it names, then call {model.__name__}.model_rebuild().",
            ) from None
    fields = tuple(_model_field(model, name, info, (model,)) for name, info in model.model_fields.items())
    if not fields:
        raise SchemaError(f"{model.__name__} has no fields to extract.", hint="Declare at least one field.")
    keys = {name: _key(name, info) for name, info in model.model_fields.items()}
    try:
        json_schema = model.model_json_schema()
    except Exception as exc:  # pydantic cannot describe it (a custom type): still extractable
        json_schema = {"title": model.__name__, "description": f"no JSON Schema: {exc}"}
    return TypedSchema(model.__name__, model, fields, json_schema, keys, defaulted=defaulted_fields(model))


def defaulted_fields(model: type[BaseModel]) -> frozenset[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        if not info.is_required():
            out.add(name)
        annotation, _ = _optional(info.annotation)
        args = typing.get_args(annotation)
        inner = args[0] if typing.get_origin(annotation) in (list, tuple, typing.Sequence) and args else annotation
        inner, _ = _optional(inner)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            out.update(f"{name}.{sub}" for sub, sub_info in inner.model_fields.items() if not sub_info.is_required())
    return frozenset(out)


def _key(name: str, info: FieldInfo) -> str:
    """The key pydantic validates this field by (its alias when it has a string one)."""
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias or name


def _aliases(name: str, info: FieldInfo) -> tuple[str, ...]:
    found = [a for a in (info.alias, info.validation_alias, info.serialization_alias) if isinstance(a, str)]
    return tuple(dict.fromkeys(a for a in found if a.casefold() != name.casefold()))


def text_patterns(where: str, extra: Any, kind: str | None, key: str) -> tuple[str, ...]:
    """A text field's patterns under `key` of `Field(json_schema_extra=...)` (in a JSON Schema: the
    property's own key): "x-never", answers that are never its value (FieldSpec.never), or
    "x-trim", edge lines never part of it (FieldSpec.trim; on a date field, a piece printed after
    the date), or "x-complete", a piece printed after it that completes it (FieldSpec.complete)."""
    patterns = extra.get(key) if isinstance(extra, dict) else None
    if patterns is None:
        return ()
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) for p in patterns):
        raise SchemaError(
            f"Field {where!r}: {key} must be a list of regular expressions, got {patterns!r}.",
            hint=f'e.g. json_schema_extra={{"{key}": [r"tax\\s+invoice"]}}',
        )
    types = PATTERN_FIELD_TYPES[key.removeprefix("x-")]
    if kind not in {t.value for t in types}:
        fields = " and ".join("text (str)" if t is FieldType.text else t.value for t in types)
        raise SchemaError(
            f"Field {where!r}: {key} applies to {fields} fields only.",
            hint=f"Remove {key} from this field: amounts, enums and lists are checked by their type.",
        )
    try:
        check_patterns(patterns, key.removeprefix("x-"))
    except ValueError as exc:
        raise SchemaError(
            f"Field {where!r}: {key}: {exc}.",
            hint="Python `re` syntax; matched against the whole answer (x-trim: each edge line; x-complete: the "
            "piece after the value), case-insensitive.",
        ) from None
    return tuple(patterns)


def _optional(annotation: Any) -> tuple[Any, bool]:
    """(X, True) for Optional[X] / X | None; (annotation, False) otherwise. Unions of several
    non-None types are returned whole: the caller reports them."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _unsupported(where: str, annotation: Any, why: str = "") -> SchemaError:
    shown = getattr(annotation, "__name__", None) or repr(annotation)
    if typing.get_origin(annotation) is not None:
        shown = repr(annotation).replace("typing.", "")
    reason = f" ({why})" if why else ""
    return SchemaError(
        f"Field {where!r} has type {shown}, which chatocr cannot extract into{reason}.",
        hint=f"Types that work: {SUPPORTED_TYPES}. See docs/typed.md.",
    )


def _scalar_kind(annotation: Any) -> tuple[str, tuple[str, ...]] | None:
    """(kind, choices) of a leaf type, or None when it is not one."""
    if annotation is bool:
        return None  # an int subclass, but a yes/no is not a number on a page
    if annotation in _SCALARS:
        return _SCALARS[annotation], ()
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if choices and all(isinstance(c, str) for c in choices):
            return "enum", tuple(choices)
        return None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values = [member.value for member in annotation]
        if values and all(isinstance(v, str) for v in values):
            return "enum", tuple(values)
    return None


def _model_field(owner: type[BaseModel], name: str, info: FieldInfo, seen: tuple[type, ...]) -> FieldSpec:
    where = f"{owner.__name__}.{name}"
    annotation, optional = _optional(info.annotation)
    common: dict[str, Any] = {
        "name": name,
        "description": info.description or "",
        "required": info.is_required() and not optional,
        "aliases": _aliases(name, info),
    }
    leaf = _scalar_kind(annotation)
    kind = leaf[0] if leaf else None
    # Read for every field: patterns on a non-text field are a SchemaError.
    patterns = {attr: text_patterns(where, info.json_schema_extra, kind, key) for key, attr in PATTERN_KEYS}
    if leaf is not None:
        return FieldSpec(type=FieldType(leaf[0]), choices=leaf[1], **patterns, **common)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return FieldSpec(type=FieldType.object, items=_sub_fields(annotation, where, seen), **common)
    if typing.get_origin(annotation) in (list, tuple, typing.Sequence, set, frozenset):
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise _unsupported(where, info.annotation, "a fixed-length tuple; use list[...]")
        item, _ = _optional(args[0] if args else Any)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return FieldSpec(type=FieldType.list, items=_sub_fields(item, f"{where}[]", seen), **common)
        if _scalar_kind(item) is not None:
            return FieldSpec(type=FieldType.list, **common)
        raise _unsupported(f"{where}[]", item)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        raise _unsupported(where, info.annotation, "a union of several types; choose one")
    raise _unsupported(where, info.annotation)


def _sub_fields(model: type[BaseModel], where: str, seen: tuple[type, ...]) -> tuple[ItemField, ...]:
    if model in seen:
        raise _unsupported(where, model, "a recursive model")
    out = []
    for name, info in model.model_fields.items():
        annotation, optional = _optional(info.annotation)
        leaf = _scalar_kind(annotation)
        if leaf is None:
            nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            why = (
                "a recursive model"
                if annotation in (*seen, model)
                else ("models nested more than one level" if nested or typing.get_origin(annotation) else "")
            )
            raise _unsupported(f"{where}.{name}", info.annotation, why)
        kind, choices = leaf
        out.append(
            ItemField(
                name=name,
                description=info.description or "",
                type=kind,
                required=info.is_required() and not optional,
                choices=choices,
            )
        )
    if not out:
        raise SchemaError(f"{model.__name__} (in {where}) has no fields.", hint="Declare at least one field.")
    return tuple(out)
