"""JSON Schema in: its size, depth and references checked first (chatocr/typed/references.py:
nothing outside the document is ever fetched or read), then checked with the jsonschema library
(its message and path on error), then mapped like a pydantic model (string, format
date/date-time, number, integer, enum, array, object, local `$ref`s). A pydantic model is built
from the resulting fields so that `result.data` is typed either way and keyed by the schema's own
property names (`model_config`, `a b`, `1st` included: aliases on the generated model), and the
JSON Schema's own constraints (minimum, pattern...) are checked on the answer too.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chatocr.errors import MissingDependencyError, SchemaError
from chatocr.scenarios.model import FieldSpec, FieldType, ItemField
from chatocr.typed.references import check_references, check_schema_size, no_retrieval_registry, resolve_pointer
from chatocr.typed.schema import PATTERN_KEYS, SUPPORTED_TYPES, TypedSchema, defaulted_fields, text_patterns

__all__ = ["from_json_schema"]


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


def from_json_schema(schema: dict[str, Any]) -> TypedSchema:
    """A JSON Schema dict as a TypedSchema (SchemaError when it is too large, refers outside itself,
    is invalid or cannot be mapped)."""
    from chatocr.typed.export import model_from_fields

    if not isinstance(schema, dict):
        raise SchemaError(f"A JSON Schema is an object, got a JSON {type(schema).__name__}.")
    check_schema_size(schema)
    check_references(schema)
    _check_json_schema(schema)
    root = _resolve(schema, schema)
    properties = root.get("properties")
    if root.get("type") not in ("object", None) or not isinstance(properties, dict) or not properties:
        raise SchemaError(
            "The JSON Schema must describe an object with `properties` (the fields to extract).",
            hint='e.g. {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}',
        )
    required = set(_names(root.get("required")))
    fields = tuple(_json_field(schema, name, prop, name in required) for name, prop in properties.items())
    name = str(root.get("title") or "Document").replace(" ", "")
    model = model_from_fields(name if name.isidentifier() else "Document", fields)
    keys = {f.name: f.name for f in fields}
    from jsonschema import validators

    # Validated against a copy with the local $refs inlined: resolving a $ref per line item is
    # most of jsonschema's time (the expansion was bounded above, a cycle is left as a $ref). The
    # registry retrieves nothing: no reference outside the document is ever followed.
    validator = validators.validator_for(schema)(_inlined(schema, schema), registry=no_retrieval_registry())
    return TypedSchema(
        name, model, fields, schema, keys, from_json_schema=True, defaulted=defaulted_fields(model), validator=validator
    )


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _inlined(root: dict[str, Any], node: Any, path: tuple[str, ...] = ()) -> Any:
    """`node` with every local `$ref` replaced by what it points at ($defs kept, unused); a
    reference back into the definitions being inlined (a cycle) is kept as a `$ref`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and ref not in path:
            target = resolve_pointer(root, ref)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            merged = {**target, **siblings} if isinstance(target, dict) else siblings
            return _inlined(root, merged, (*path, ref))
        return {k: v if k in ("$defs", "definitions") else _inlined(root, v, path) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(root, item, path) for item in node]
    return node


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    """Follow a local `$ref` (#/$defs/X, #/definitions/X; every reference was checked to be local)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or seen > 20:
            raise SchemaError(f"Unsupported $ref {ref!r}.", hint="Only local references (#/$defs/...) are followed.")
        node, seen = resolve_pointer(root, ref), seen + 1
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


def _property_name(name: str, where: str) -> None:
    """A property name chatocr can ask for: not empty, not only spaces."""
    if not name.strip():
        raise SchemaError(
            f"The JSON Schema has a property named {where!r}: a field needs a name to be asked for.",
            hint="Give the property a name (it is the key the model answers with and the key in result.data).",
        )


def _json_field(root: dict[str, Any], name: str, prop: Any, required: bool) -> FieldSpec:
    _property_name(name, name)
    try:
        return _json_field_spec(root, name, prop, required)
    except ValidationError as exc:  # a value FieldSpec refuses (a description that is not text...)
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise SchemaError(f"Field {name!r} cannot be extracted: {problem}.") from None


def _json_field_spec(root: dict[str, Any], name: str, prop: Any, required: bool) -> FieldSpec:
    if not isinstance(prop, dict):
        raise SchemaError(f"Field {name!r}: its schema is a JSON {type(prop).__name__}, not an object.")
    node, nullable = _json_kind(root, prop, name)
    common: dict[str, Any] = {
        "name": name,
        "description": node.get("description", ""),
        "required": required and not nullable,
    }
    if node.get("type") in ("object", "array"):
        for key, _ in PATTERN_KEYS:  # a SchemaError when given: text only
            text_patterns(name, node if key in node else prop, None, key)
    if node.get("type") == "object":
        return FieldSpec(type=FieldType.object, items=_json_sub_fields(root, node, name), **common)
    if node.get("type") == "array":
        item, _ = _json_kind(root, node.get("items", {}), f"{name}[]")
        if item.get("type") == "object":
            return FieldSpec(type=FieldType.list, items=_json_sub_fields(root, item, f"{name}[]"), **common)
        _json_leaf(item, f"{name}[]")
        return FieldSpec(type=FieldType.list, **common)
    kind, choices = _json_leaf(node, name)
    patterns = {attr: text_patterns(name, node if key in node else prop, kind, key) for key, attr in PATTERN_KEYS}
    return FieldSpec(type=FieldType(kind), choices=choices, **patterns, **common)


def _json_sub_fields(root: dict[str, Any], node: dict[str, Any], where: str) -> tuple[ItemField, ...]:
    properties = node.get("properties") or {}
    if not properties:
        raise SchemaError(
            f"Field {where!r} is an object without `properties`.",
            hint="List its keys; free-form objects (dict[str, Any]) cannot be extracted.",
        )
    required = set(_names(node.get("required")))
    out = []
    for name, prop in properties.items():
        _property_name(name, f"{where}.{name}")
        if not isinstance(prop, dict):
            raise SchemaError(f"Field {where}.{name!r}: its schema is a JSON {type(prop).__name__}, not an object.")
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
