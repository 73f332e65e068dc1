"""Instance out: the checked, grounded values of one extraction as an instance of the caller's model.

The values given are the normalised ones (ISO dates, plain decimals, enum choices), so pydantic
turns "2018-12-25" into date(2018, 12, 25) and "9.00" into Decimal("9.00"). What does not validate
becomes `SchemaProblem`s with a JSON path (`items[2].amount`) and pydantic's message: the re-ask
loop sends them to the model, and after the budget they are `result.errors`. A validator of the
caller's that raises something other than ValueError (pydantic lets those through) is caught here
too: its message is a problem, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from chatocr.errors import SchemaError
from chatocr.scenarios.model import FieldSpec, FieldType
from chatocr.typed.references import no_retrieval_registry
from chatocr.typed.schema import TypedSchema

__all__ = ["SchemaProblem", "build_instance", "json_path"]


@dataclass(frozen=True)
class SchemaProblem:
    path: str  # a JSON path: "total", "items[2].amount"; "" for the whole object
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def json_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _typed(kind: str, value: Any) -> Any:
    """Numbers as Decimal (exact, and pydantic takes an integral Decimal for an int field)."""
    if value is not None and kind in ("amount", "number"):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return value
    return value


def _object_input(kinds: Mapping[str, str], item: Mapping[str, Any], defaulted: set[str]) -> dict[str, Any]:
    return {k: _typed(kinds.get(k, "text"), v) for k, v in item.items() if not (v is None and k in defaulted)}


def _input(schema: TypedSchema, field: FieldSpec, value: Any) -> Any:
    kinds = {s.name: s.type for s in field.items}
    defaulted = {path.split(".", 1)[1] for path in schema.defaulted if path.startswith(f"{field.name}.")}
    if field.type is FieldType.list and field.items and isinstance(value, list):
        return [_object_input(kinds, item, defaulted) if isinstance(item, Mapping) else item for item in value]
    if field.type is FieldType.object and isinstance(value, Mapping):
        return _object_input(kinds, value, defaulted)
    return _typed(field.type.value, value)


def _jsonable(value: Any) -> Any:
    """JSON values as the caller's JSON Schema expects them: numbers, ISO date strings."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def build_instance(schema: TypedSchema, values: Mapping[str, Any]) -> tuple[BaseModel | None, list[SchemaProblem]]:
    """The model instance for `values` (field name -> normalised value, None when absent), or None
    and the problems that stop it from validating."""
    data = {
        schema.keys.get(f.name, f.name): _input(schema, f, values.get(f.name))
        for f in schema.fields
        if not (values.get(f.name) is None and f.name in schema.defaulted)
    }
    back = {key: name for name, key in schema.keys.items()}
    try:
        instance = schema.model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = list(error["loc"])
            if loc and isinstance(loc[0], str):
                loc[0] = back.get(loc[0], loc[0])
            problems.append(SchemaProblem(json_path(loc), error["msg"]))
        return None, problems
    except Exception as exc:  # a validator that raised TypeError, KeyError...: pydantic does not wrap those
        return None, [SchemaProblem("", f"the model's validation failed: {type(exc).__name__}: {exc}")]
    if schema.from_json_schema:
        dumped = instance.model_dump(mode="python", by_alias=True, exclude_none=True)
        problems = _json_schema_problems(schema, _jsonable(dumped))
        if problems:
            return None, problems
    return instance, []


def _json_schema_problems(schema: TypedSchema, data: Any) -> list[SchemaProblem]:
    """The JSON Schema's own constraints (minimum, pattern, maxItems...) on the answer. The check
    is the dear part (~0.5 ms for 20 fields and 10 items) and the loop's review and the result
    check the same values: the schema remembers the last few answers' problems."""
    key = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    memo = schema.checked
    cached = memo.get(key)
    if cached is None:
        if len(memo) > 64:
            memo.clear()
        cached = memo[key] = _check_json_schema(schema, data)
    return list(cached)


def _check_json_schema(schema: TypedSchema, data: Any) -> list[SchemaProblem]:
    from referencing.exceptions import Unresolvable

    validator = schema.validator
    if validator is None:
        from jsonschema import validators

        validator = validators.validator_for(schema.json_schema)(schema.json_schema, registry=no_retrieval_registry())
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    except Unresolvable as exc:  # the registry retrieves nothing: a reference the checks let through
        raise SchemaError(
            f"The JSON Schema's reference {getattr(exc, 'ref', '')!r} cannot be resolved inside the schema; "
            "chatocr never fetches or reads a reference.",
            hint="Keep every definition in the schema document (under $defs) and refer to it as #/$defs/Name.",
        ) from None
    return [SchemaProblem(json_path(list(error.absolute_path)), error.message) for error in errors]
