"""Schemas never fetch or read, never run without bound, and keep their own property names
(issue 34): a `$ref` outside the document is a SchemaError naming it on every path that takes a
schema (a dict in Python, a file on the command line), checked against a real HTTP server on
127.0.0.1 that would record any request; reference fan-out and size are refused before any work;
`result.data` is keyed by the schema's own names, pydantic's members included."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chatocr import ChatOCR
from chatocr.errors import SchemaError
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.typed.instance import _check_json_schema
from chatocr.typed.loading import load_schema
from chatocr.typed.references import (
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_EXPANDED_NODES,
    MAX_SCHEMA_NODES,
    no_retrieval_registry,
)
from chatocr.typed.schema import typed_schema

RECEIPT = "ACME TRADING\nTOTAL 9.00\nDATE 25/12/2018\n"


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.requests.append(self.path)
        body = json.dumps({"type": "string", "description": "SECRET FROM THE SERVER"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A schema server on 127.0.0.1 that answers every GET with a schema and records it."""
    _Recorder.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def schema_with(ref: str, where: str) -> dict[str, Any]:
    """A schema whose reference sits in a field, in an unused keyword, or in a definition nobody uses."""
    total: dict[str, Any] = {"type": "string"}
    schema: dict[str, Any] = {"type": "object", "properties": {"total": total}}
    if where == "field":
        schema["properties"]["total"] = {"$ref": ref}
    elif where == "not":
        total["not"] = {"$ref": ref}
    elif where == "unused keyword":
        schema["x-extra"] = {"$ref": ref}
    else:
        schema["$defs"] = {"unused": {"$ref": ref}}
    return schema


@pytest.mark.parametrize("where", ["field", "not", "unused keyword", "unused definition"])
@pytest.mark.parametrize("kind", ["http", "https", "file", "relative", "dangling"])
def test_a_reference_outside_the_document_is_refused_and_never_fetched(
    server: str, tmp_path: Path, kind: str, where: str
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "string", "description": "SECRET FROM A FILE"}', encoding="utf-8")
    ref = {
        "http": f"{server}/x.json",
        "https": "https://127.0.0.1:9/x.json",
        "file": secret.as_uri(),
        "relative": "secret.json#/type",
        "dangling": "#/$defs/nowhere",
    }[kind]
    with pytest.raises(SchemaError) as info:
        typed_schema(schema_with(ref, where))
    assert ref in str(info.value) and "SECRET" not in str(info.value) and info.value.hint
    file = tmp_path / "s.json"
    file.write_text(json.dumps(schema_with(ref, where)), encoding="utf-8")
    with pytest.raises(SchemaError, match="reference"):
        load_schema(str(file))  # the --schema path of every command
    assert _Recorder.requests == []


def test_the_validator_registry_retrieves_nothing(server: str) -> None:
    """The second line of defence: even a reference the static check were to miss is not fetched."""
    from jsonschema import validators
    from referencing.exceptions import Unresolvable

    schema = {"type": "string", "not": {"$ref": f"{server}/x.json"}}
    validator = validators.validator_for(schema)(schema, registry=no_retrieval_registry())
    with pytest.raises(Unresolvable):
        list(validator.iter_errors("x"))
    assert _Recorder.requests == []


def test_local_references_and_a_root_id_still_work() -> None:
    schema = {
        "$id": "https://example.com/receipt.schema.json",
        "type": "object",
        "properties": {"total": {"$ref": "#/$defs/money"}, "note": {"type": "string", "not": {"$ref": "#empty"}}},
        "$defs": {"money": {"type": "number"}, "empty": {"$anchor": "empty", "const": ""}},
    }
    typed = typed_schema(schema)
    assert [(f.name, f.type.value) for f in typed.fields] == [("total", "number"), ("note", "text")]
    (problem,) = _check_json_schema(typed, {"total": 9, "note": ""})  # the anchor is followed, in the document
    assert problem.path == "note" and "should not be valid" in problem.message


def test_a_nested_id_is_refused() -> None:
    schema = {"type": "object", "properties": {"t": {"$id": "https://elsewhere/x.json", "type": "string"}}}
    with pytest.raises(SchemaError, match="below the root"):
        typed_schema(schema)


def test_a_reference_fan_out_is_refused_before_any_work() -> None:
    """A 3 KB schema whose unused keyword expands to 2**40 values."""
    definitions: dict[str, Any] = {"a0": {"type": "string"}}
    for n in range(1, 41):
        definitions[f"a{n}"] = {"anyOf": [{"$ref": f"#/$defs/a{n - 1}"}, {"$ref": f"#/$defs/a{n - 1}"}]}
    bomb = {
        "type": "object",
        "properties": {"t": {"type": "string"}},
        "x": {"$ref": "#/$defs/a40"},
        "$defs": definitions,
    }
    assert len(json.dumps(bomb)) < 4000
    with pytest.raises(SchemaError, match=f"{MAX_SCHEMA_EXPANDED_NODES:,}"):
        typed_schema(bomb)


def test_a_reference_cycle_is_counted_once_not_followed_forever() -> None:
    schema = {
        "type": "object",
        "properties": {"total": {"type": "string"}},
        "x": {"$ref": "#/$defs/node"},
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
    }
    assert [f.name for f in typed_schema(schema).fields] == ["total"]


def test_a_huge_or_deep_schema_is_refused_before_any_work(tmp_path: Path) -> None:
    big = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(MAX_SCHEMA_NODES)}}
    with pytest.raises(SchemaError, match=f"more than {MAX_SCHEMA_NODES:,} values"):
        typed_schema(big)
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"not": deep}
    with pytest.raises(SchemaError, match="nests deeper"):
        typed_schema({"type": "object", "properties": {"t": deep}})
    file = tmp_path / "big.json"
    file.write_text(json.dumps({"description": "x" * MAX_SCHEMA_BYTES}), encoding="utf-8")
    with pytest.raises(SchemaError, match="over the limit"):
        load_schema(str(file))


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, '{"type": "object", "properties": {"t": {"maximum": ' + "9" * 5000 + "}}}", "{"],
)
def test_a_hostile_schema_file_is_a_schema_error(tmp_path: Path, content: str) -> None:
    file = tmp_path / "s.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(SchemaError, match="cannot read a JSON Schema") as info:
        load_schema(str(file))
    assert str(file) in str(info.value)


NAMES = ["model_dump", "schema", "model_config", "_id", "a b", "1st", "copy", "model_fields", "f_a_b"]


def test_data_is_keyed_by_the_schemas_own_names() -> None:
    properties = {name: {"type": "string"} for name in NAMES} | {"total": {"type": "number"}}
    answer = {name: "ACME TRADING" for name in NAMES} | {"total": "9.00"}
    model = ScriptedChatModel([json.dumps(answer)], retry_policy=RetryPolicy(max_attempts=1))
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    result = ocr.extract(RECEIPT.encode(), schema={"type": "object", "properties": properties})
    assert result.data is not None and result.errors == []
    data = result.to_dict()["data"]
    assert list(data) == [*NAMES, "total"]
    assert all(data[name] == "ACME TRADING" for name in NAMES) and data["total"] == 9.0
    assert result.data.model_dump(mode="json") == data


def test_an_empty_property_name_is_a_schema_error() -> None:
    for schema in (
        {"type": "object", "properties": {"": {"type": "string"}}},
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {" ": {"type": "string"}}}}
            },
        },
    ):
        with pytest.raises(SchemaError, match="property named") as info:
            typed_schema(schema)
        assert info.value.hint


def test_a_property_whose_schema_is_not_an_object_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        typed_schema({"type": "object", "properties": {"t": {"type": "string", "description": 5}}})
