"""Loading a schema named by a string (`--schema`, the evaluation's typed runs): a pydantic model
by `module:Class` or `file.py:Class`, or a JSON Schema file (read bounded: MAX_SCHEMA_BYTES, then
chatocr.fileio's depth and number limits; a broken file is a SchemaError naming it)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from chatocr.errors import ConfigError, DataFileError, SchemaError
from chatocr.fileio import read_json
from chatocr.typed.references import MAX_SCHEMA_BYTES
from chatocr.typed.schema import TypedSchema, typed_schema

__all__ = ["load_schema"]


def load_schema(spec: str | None) -> TypedSchema | None:
    """A schema named as on the command line (`--schema`) or in a config or eval file:
    `module:Class` or `path/to/file.py:Class` (a pydantic model; modules are imported from the
    current directory too) or `schema.json` (a JSON Schema). SchemaError/ConfigError before any
    OCR or model call."""
    if not spec:
        return None
    path = Path(spec)
    if path.suffix.lower() == ".json" or (path.is_file() and path.suffix.lower() != ".py"):
        try:  # bounded: size first, then depth and number length (chatocr.fileio)
            data = read_json(path, max_bytes=MAX_SCHEMA_BYTES)
        except DataFileError as exc:
            raise SchemaError(
                f"--schema {spec}: cannot read a JSON Schema: {exc.message}",
                hint="Give a JSON file holding a JSON Schema, or module:Class.",
            ) from None
        if not isinstance(data, dict):
            raise SchemaError(f"--schema {spec}: a JSON Schema is an object, this file holds a {type(data).__name__}.")
        return typed_schema(data)
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ConfigError(
            f"--schema {spec!r} is neither a .json file nor module:Class.",
            hint="e.g. --schema receipt_model:Receipt (receipt_model.py in this directory).",
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):  # a file: path/to/models.py:Receipt
            spec_ = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if spec_ is None or spec_.loader is None or not Path(module_name).is_file():
                raise FileNotFoundError(f"no such file {module_name}")
            module = importlib.util.module_from_spec(spec_)
            sys.modules[spec_.name] = module  # pydantic resolves the module's annotations through it
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failed to import: say so, no traceback
        raise ConfigError(
            f"--schema {spec}: cannot import {module_name!r}: {type(exc).__name__}: {exc}",
            hint="Run the command from the directory holding the module, or set PYTHONPATH.",
        ) from None
    model = getattr(module, class_name, None)
    if model is None:
        raise ConfigError(f"--schema {spec}: {module_name!r} has no {class_name!r}.")
    return typed_schema(model)
