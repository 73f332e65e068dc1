"""What several commands share: the --llm/--ocr/--config options, building a ChatOCR from them,
and showing an Extraction as a table."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from chatocr.api import ChatOCR
from chatocr.cli.credentials import load_keys_file
from chatocr.errors import ChatOCRError, ConfigError
from chatocr.extraction.result import Extraction
from chatocr.typed.schema import TypedSchema, typed_schema

__all__ = [
    "KEYS_HELP",
    "SCENARIO_HELP",
    "STATUS_STYLE",
    "add_backend_options",
    "field_table",
    "keys_option",
    "load_schema_option",
    "make_chatocr",
    "summary_line",
]

STATUS_STYLE = {
    "grounded": "green",
    "low_confidence": "yellow",
    "ungrounded": "yellow",
    "missing": "dim",
    "invalid": "red",
}
KEYS_HELP = (
    "keys to extract: NAME[:TYPE][=DESCRIPTION], comma-separated, e.g. \"company=the shop's name,date:date,"
    "total:amount\"; types text, date, amount, number, enum(A|B), list (default: the scenario's fields)"
)
SCENARIO_HELP = "scenario name or a scenario YAML file"


def keys_option(text: str) -> str:
    """argparse type for --keys: the text, checked now, so a bad type is a usage error (exit 2)
    before anything is read or sent."""
    from chatocr.scenarios.keys import parse_keys

    try:
        parse_keys(text)
    except ChatOCRError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} {exc.hint}") from None
    return text


def load_schema_option(spec: str | None) -> TypedSchema | None:
    """--schema module:Class or path/to/file.py:Class (a pydantic model; modules are imported from
    the current directory too) or --schema schema.json (a JSON Schema); SchemaError/ConfigError
    before any OCR or model call."""
    if not spec:
        return None
    path = Path(spec)
    if path.suffix.lower() == ".json" or (path.is_file() and path.suffix.lower() != ".py"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"--schema {spec}: cannot read a JSON Schema: {exc}",
                hint="Give a JSON file holding a JSON Schema, or module:Class.",
            ) from None
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


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--llm", metavar="PROVIDER[:MODEL]", help="chat backend (default: config, else local)")
    parser.add_argument("--ocr", metavar="ENGINE", help="OCR engine: rapid, paddle, text, vlm (default: config)")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")


def make_chatocr(args: argparse.Namespace, **overrides: Any) -> ChatOCR:
    """A ChatOCR from the command's options; keys from the keys file join the environment first."""
    load_keys_file()
    return ChatOCR(
        llm=getattr(args, "llm", None),
        ocr=getattr(args, "ocr", None),
        config=getattr(args, "config", None),
        **overrides,
    )


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


def field_table(result: Extraction) -> Table:
    table = Table("field", "value", "status", "confidence", title=Path(result.source).name, title_justify="left")
    for name, field in result.fields.items():
        style = STATUS_STYLE.get(field.status, "")
        confidence = "" if field.confidence is None else f"{field.confidence:.2f}"
        table.add_row(name, Text(_shown(field.value)), Text(field.status, style=style), confidence)
    return table


def summary_line(result: Extraction) -> str:
    """Route, usage and time in one line."""
    route = result.route
    how = "n/a"
    if route is not None:
        how = route.mode + (f" ({route.confidence:.2f})" if route.confidence is not None else "")
    usage = result.usage
    parts = [
        f"scenario {result.scenario or 'none'} via {how}",
        f"{usage['calls']} call(s), {usage['prompt_tokens']}+{usage['completion_tokens']} tokens",
        f"{result.timings.get('total_s', 0.0):.1f}s",
    ]
    if result.examples:
        parts.append(f"{len(result.examples)} example(s)")
    return " · ".join(parts)
