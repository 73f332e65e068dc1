"""Typed extraction: a pydantic model or JSON Schema in, a validated instance with provenance out.

    from chatocr.typed import typed_schema, build_instance
    schema = typed_schema(Receipt)          # SchemaError now if Receipt has a type chatocr cannot map
    ocr.extract("receipt.jpg", schema=Receipt).data   # Receipt(total=Decimal("9.00"), ...)

See docs/typed.md for the type mapping.
"""

from chatocr.typed.export import model_from_fields, model_source, scenario_from_model
from chatocr.typed.instance import SchemaProblem, build_instance, json_path
from chatocr.typed.schema import SUPPORTED_TYPES, TypedSchema, typed_schema

__all__ = [
    "SUPPORTED_TYPES",
    "SchemaProblem",
    "TypedSchema",
    "build_instance",
    "json_path",
    "model_from_fields",
    "model_source",
    "scenario_from_model",
    "typed_schema",
]
