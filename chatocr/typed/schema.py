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

Anything else (bytes, dict[str, Any], unions of several types, recursive models, models nested
more than one level) is a SchemaError naming the field, raised before any OCR or model call. One
level of nesting is what the field specs (and the prompts, the grounding and the scenario YAML)
can carry; it covers headers, parties and line items.

A JSON Schema is first checked with the jsonschema library (its message and path on error), then
mapped the same way (string, format date/date-time, number, integer, enum, array, object, local
`$ref`s); a pydantic model is built from the resulting fields so that `result.data` is typed either
way, and the JSON Schema's own constraints are checked on the answer too.
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

from chatocr.errors import MissingDependencyError, SchemaError
from chatocr.scenarios.model import FieldSpec, FieldType, ItemField

__all__ = ["SUPPORTED_TYPES", "TypedSchema", "typed_schema"]

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
    if isinstance(schema, TypedSchema):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        cached = _MODELS.get(schema)
        if cached is None:
            cached = _MODELS[schema] = _from_model(schema)
        return cached
    if isinstance(schema, dict):
        try:
            key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):
            return _from_json_schema(schema)
        if key not in _JSON_SCHEMAS:
            if len(_JSON_SCHEMAS) > 256:
                _JSON_SCHEMAS.clear()
            _JSON_SCHEMAS[key] = _from_json_schema(schema)
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
    return TypedSchema(model.__name__, model, fields, json_schema, keys, defaulted=_defaulted(model))


def _defaulted(model: type[BaseModel]) -> frozenset[str]:
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
    if leaf is not None:
        return FieldSpec(type=FieldType(leaf[0]), choices=leaf[1], **common)
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


# -- JSON Schema ----------------------------------------------------------------------------------


def _check_json_schema(schema: dict[str, Any]) -> None:
    try:
        from jsonschema import exceptions, validators
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise MissingDependencyError("A JSON Schema request", "typed", package="jsonschema") from exc
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(the root)"
        raise SchemaError(
            f"The JSON Schema is invalid at {path}: {exc.message}",
            hint="Fix the schema (check it with the jsonschema library), or pass a pydantic model.",
        ) from None


def _from_json_schema(schema: dict[str, Any]) -> TypedSchema:
    from chatocr.typed.export import model_from_fields

    _check_json_schema(schema)
    root = _resolve(schema, schema)
    properties = root.get("properties")
    if root.get("type") not in ("object", None) or not isinstance(properties, dict) or not properties:
        raise SchemaError(
            "The JSON Schema must describe an object with `properties` (the fields to extract).",
            hint='e.g. {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}',
        )
    required = set(root.get("required", []))
    fields = tuple(_json_field(schema, name, prop, name in required) for name, prop in properties.items())
    name = str(root.get("title") or "Document").replace(" ", "")
    model = model_from_fields(name if name.isidentifier() else "Document", fields)
    keys = {f.name: f.name for f in fields}
    from jsonschema import validators

    # Validated against a copy with the local $refs inlined: resolving a $ref per line item is
    # most of jsonschema's time (recursion was refused above, so inlining ends).
    validator = validators.validator_for(schema)(_inlined(schema, schema))
    return TypedSchema(
        name, model, fields, schema, keys, from_json_schema=True, defaulted=_defaulted(model), validator=validator
    )


def _inlined(root: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """`node` with every local `$ref` replaced by what it points at ($defs kept, unused)."""
    if depth > 20:
        return node
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target = _resolve(root, {"$ref": node["$ref"]})
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return _inlined(root, {**target, **siblings}, depth + 1)
        return {k: v if k in ("$defs", "definitions") else _inlined(root, v, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(root, item, depth) for item in node]
    return node


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    """Follow a local `$ref` (#/$defs/X, #/definitions/X); other refs are not fetched."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or seen > 20:
            raise SchemaError(f"Unsupported $ref {ref!r}.", hint="Only local references (#/$defs/...) are followed.")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            raise SchemaError(f"$ref {ref!r} points at nothing in the schema.")
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def _json_kind(root: dict[str, Any], node: dict[str, Any], where: str) -> tuple[dict[str, Any], bool]:
    """(the non-null alternative of the node, whether null is allowed)."""
    node = _resolve(root, node)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        options = [_resolve(root, o) for o in options]
        real = [o for o in options if o.get("type") != "null"]
        if len(real) == 1:
            merged = {**{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}, **real[0]}
            return merged, len(real) < len(options)
        numbers = {o.get("type") for o in real}
        if numbers <= {"number", "string"} and "number" in numbers:  # pydantic's Decimal
            return {**node, "type": "number", "x-decimal": True}, len(real) < len(options)
        raise SchemaError(
            f"Field {where!r} is a union of several types, which chatocr cannot extract into.",
            hint=f"Types that work: {SUPPORTED_TYPES}.",
        )
    kind = node.get("type")
    if isinstance(kind, list):
        real_types = [k for k in kind if k != "null"]
        if len(real_types) != 1:
            raise SchemaError(f"Field {where!r} has types {kind}: choose one (plus null).")
        return {**node, "type": real_types[0]}, "null" in kind
    return node, False


def _json_leaf(node: dict[str, Any], where: str) -> tuple[str, tuple[str, ...]]:
    if "enum" in node or "const" in node:
        choices = node.get("enum") or [node.get("const")]
        choices = [c for c in choices if c is not None]
        if not choices or not all(isinstance(c, str) for c in choices):
            raise SchemaError(f"Field {where!r}: enum choices must be strings, got {choices!r}.")
        return "enum", tuple(choices)
    kind = node.get("type")
    if kind == "string":
        return ("date" if node.get("format") in ("date", "date-time") else "text"), ()
    if kind == "number":
        return ("amount" if node.get("x-decimal") else "number"), ()
    if kind == "integer":
        return "number", ()
    raise SchemaError(
        f"Field {where!r} has JSON type {kind!r}, which chatocr cannot extract into.",
        hint="Types that work: string (format date), number, integer, enum, array, object.",
    )


def _json_field(root: dict[str, Any], name: str, prop: Any, required: bool) -> FieldSpec:
    node, nullable = _json_kind(root, prop, name)
    common: dict[str, Any] = {
        "name": name,
        "description": node.get("description", ""),
        "required": required and not nullable,
    }
    if node.get("type") == "object":
        return FieldSpec(type=FieldType.object, items=_json_sub_fields(root, node, name), **common)
    if node.get("type") == "array":
        item, _ = _json_kind(root, node.get("items", {}), f"{name}[]")
        if item.get("type") == "object":
            return FieldSpec(type=FieldType.list, items=_json_sub_fields(root, item, f"{name}[]"), **common)
        _json_leaf(item, f"{name}[]")
        return FieldSpec(type=FieldType.list, **common)
    kind, choices = _json_leaf(node, name)
    return FieldSpec(type=FieldType(kind), choices=choices, **common)


def _json_sub_fields(root: dict[str, Any], node: dict[str, Any], where: str) -> tuple[ItemField, ...]:
    properties = node.get("properties") or {}
    if not properties:
        raise SchemaError(
            f"Field {where!r} is an object without `properties`.",
            hint="List its keys; free-form objects (dict[str, Any]) cannot be extracted.",
        )
    required = set(node.get("required", []))
    out = []
    for name, prop in properties.items():
        sub, nullable = _json_kind(root, prop, f"{where}.{name}")
        if sub.get("type") in ("object", "array"):
            raise SchemaError(
                f"Field {where}.{name!r} nests {sub['type']}s more than one level deep.",
                hint=f"Types that work: {SUPPORTED_TYPES}.",
            )
        kind, choices = _json_leaf(sub, f"{where}.{name}")
        out.append(
            ItemField(
                name=name,
                description=sub.get("description", ""),
                type=kind,
                required=name in required and not nullable,
                choices=choices,
            )
        )
    return tuple(out)
