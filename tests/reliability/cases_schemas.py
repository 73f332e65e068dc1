"""Corpus cases (issue 34): typed schemas under hostile input, and the grounding of typed values.

A JSON Schema never makes chatocr fetch or read: every `$ref` outside the document is refused on
each command and API that takes a schema, checked against a real HTTP server on 127.0.0.1 that
records any request. Size, depth and reference fan-out are refused before any work; property
names like pydantic's members are kept as the schema's own keys in `data`. An amount or date is
grounded only on the page's same value: a near miss is ungrounded, never trusted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from chatocr.api import ChatOCR
from chatocr.errors import SchemaError
from chatocr.extraction.answers import check_answer
from chatocr.llm import RetryPolicy
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.ocr.text import TextEngine
from chatocr.typed.references import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES
from tests.reliability.harness import RECEIPT_ANSWER, RECEIPT_TEXT, Ctx, case, raises

SCHEMA_ARGS = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt"]


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append(self.path)
        body = b'{"type": "string", "description": "SERVER SECRET"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def schema_server() -> Iterator[str]:
    """A server on 127.0.0.1 that would hand out a schema to anyone who asks, and remembers who did."""
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/receipt.json"
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert _Recorder.seen == [], f"chatocr fetched {_Recorder.seen}"


def with_ref(ref: str) -> dict[str, Any]:
    """A receipt schema whose reference sits in a keyword no field uses."""
    return {
        "type": "object",
        "properties": {"company": {"type": "string"}, "total": {"type": "number"}},
        "x-unused": {"not": {"$ref": ref}},
    }


def _secret_file(ctx: Ctx) -> Path:
    return ctx.file("secret.json", '{"type": "string", "description": "FILE SECRET"}')


REFS: dict[str, Callable[[Ctx, str], str]] = {
    "http": lambda ctx, url: url,
    "https": lambda ctx, url: "https://127.0.0.1:9/receipt.json",
    "file": lambda ctx, url: _secret_file(ctx).as_uri(),
    "relative": lambda ctx, url: "secret.json#/description",
    "dangling": lambda ctx, url: "#/$defs/nowhere",
}

# Every command that takes --schema: each refuses the reference before any OCR or model call.
COMMANDS: dict[str, Callable[[Ctx, Path], list[str | Path]]] = {
    "extract": lambda ctx, schema: ["extract", ctx.file("r.txt", RECEIPT_TEXT), *SCHEMA_ARGS, "--schema", schema],
    "plan": lambda ctx, schema: [
        "plan",
        ctx.file("r.txt", RECEIPT_TEXT),
        "--scenario",
        "retail_receipt",
        "--schema",
        schema,
    ],
    "eval": lambda ctx, schema: ["eval", _labelled_set(ctx), *SCHEMA_ARGS, "--schema", schema],
    "scenarios-from-schema": lambda ctx, schema: ["scenarios", "from-schema", schema, "--name", "mine"],
}


def _labelled_set(ctx: Ctx) -> Path:
    ctx.file("set/labels/r1.json", json.dumps(RECEIPT_ANSWER))
    ctx.file("set/ocr/r1.json", json.dumps(RECEIPT_TEXT.splitlines()))
    return ctx.tmp / "set"


for _kind in REFS:

    def _refused_in_python(ctx: Ctx, kind: str = _kind) -> None:
        with schema_server() as url:
            ref = REFS[kind](ctx, url)
            model = ScriptedChatModel([json.dumps(RECEIPT_ANSWER)])
            doc = ctx.file("r.txt", RECEIPT_TEXT)
            error = raises(SchemaError, lambda: ChatOCR(llm=model, ocr="text").extract(str(doc), schema=with_ref(ref)))
            assert ref in str(error) and "SECRET" not in str(error) and model.calls == []

    _refused_in_python.__name__ = f"ref_{_kind}_python"
    case("schema", f"a {_kind} $ref in a schema dict: SchemaError naming it, nothing fetched or read, no call")(
        _refused_in_python
    )

for _command in COMMANDS:
    for _kind in ("http", "file"):

        def _refused_on_cli(ctx: Ctx, command: str = _command, kind: str = _kind) -> None:
            with schema_server() as url:
                ref = REFS[kind](ctx, url)
                schema = ctx.file("schema.json", json.dumps(with_ref(ref)))
                code, out, err = ctx.cli(*COMMANDS[command](ctx, schema))
                assert code == 1 and ref in err and "SECRET" not in out + err, (code, err)

        _refused_on_cli.__name__ = f"ref_{_kind}_{_command.replace('-', '_')}"
        case("schema", f"`chatocr {_command} --schema` with a {_kind} $ref: exit 1 naming it, nothing fetched")(
            _refused_on_cli
        )


@case("schema", "a 3 KB schema whose unused keyword fans out to 2**40 $ref expansions: refused before any work")
def ref_fan_out(ctx: Ctx) -> None:
    definitions: dict[str, Any] = {"a0": {"type": "string"}}
    for n in range(1, 41):
        definitions[f"a{n}"] = {"anyOf": [{"$ref": f"#/$defs/a{n - 1}"}, {"$ref": f"#/$defs/a{n - 1}"}]}
    bomb = {**with_ref("#/$defs/a40"), "$defs": definitions}
    schema = ctx.file("bomb.json", json.dumps(bomb))
    assert schema.stat().st_size < 4000
    code, _, err = ctx.cli("extract", ctx.file("r.txt", RECEIPT_TEXT), *SCHEMA_ARGS, "--schema", schema)
    assert code == 1 and "expand to more than" in err


@case("schema", f"a 13 MB schema file: refused by its size (limit {MAX_SCHEMA_BYTES:,} bytes) before it is read")
def huge_schema_file(ctx: Ctx) -> None:
    properties = {f"field_{n}": {"type": "string", "description": "x" * 120} for n in range(90_000)}
    schema = ctx.file("big.json", json.dumps({"type": "object", "properties": properties}))
    assert schema.stat().st_size > 13_000_000
    code, _, err = ctx.cli("extract", ctx.file("r.txt", RECEIPT_TEXT), *SCHEMA_ARGS, "--schema", schema)
    assert code == 1 and "over the limit" in err


@case("schema", f"a schema dict of more than {MAX_SCHEMA_NODES:,} values: SchemaError before any work")
def huge_schema_dict(ctx: Ctx) -> None:
    properties = {f"f{n}": {"type": "string"} for n in range(MAX_SCHEMA_NODES)}
    raises(
        SchemaError,
        lambda: ChatOCR(llm="scripted", ocr="text").extract(b"TOTAL 9.00", schema={"properties": properties}),
    )


@case("schema", f"a schema nesting deeper than {MAX_SCHEMA_DEPTH} levels: SchemaError, no RecursionError")
def deep_schema_dict(ctx: Ctx) -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        node = {"not": node}
    raises(
        SchemaError,
        lambda: ChatOCR(llm="scripted", ocr="text").extract(b"TOTAL 9.00", schema={"properties": {"t": node}}),
        contains="nests deeper",
    )


for _name, _content in (
    ("deep_json", "[" * 100_000 + "]" * 100_000),
    ("long_number", '{"type": "object", "properties": {"t": {"type": "number", "maximum": ' + "9" * 5000 + "}}}"),
    ("not_utf8", b'{"type": "object", "description": "\xff\xfe"}'),
    ("a_list", "[1, 2, 3]"),
    ("broken", '{"type": "object", "properties": {'),
):

    def _bad_file(ctx: Ctx, content: str | bytes = _content) -> None:
        schema = ctx.file("schema.json", content)
        code, _, err = ctx.cli("extract", ctx.file("r.txt", RECEIPT_TEXT), *SCHEMA_ARGS, "--schema", schema)
        assert code == 1 and str(schema) in err, err

    _bad_file.__name__ = f"file_{_name}"
    case("schema", f"a --schema file that is {_name.replace('_', ' ')}: exit 1 naming the file, no traceback")(
        _bad_file
    )


@case("schema", "a $id below the root (references would mean another document): SchemaError")
def nested_id(ctx: Ctx) -> None:
    schema = {"type": "object", "properties": {"t": {"$id": "https://elsewhere.example/t.json", "type": "string"}}}
    raises(
        SchemaError, lambda: ChatOCR(llm="scripted", ocr="text").extract(b"TOTAL 9.00", schema=schema), contains="$id"
    )


@case("schema", "a reference cycle in an unused definition: accepted, counted once, the extraction runs")
def ref_cycle(ctx: Ctx) -> None:
    schema = {
        **with_ref("#/$defs/node"),
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
    }
    model = ScriptedChatModel([json.dumps(RECEIPT_ANSWER)], retry_policy=RetryPolicy(max_attempts=1))
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(RECEIPT_TEXT.encode(), schema=schema)
    assert result.ok and result.data is not None


def _keyed_by_own_names(ctx: Ctx, name: str) -> None:
    schema = {"type": "object", "properties": {name: {"type": "string"}, "total": {"type": "number"}}}
    model = ScriptedChatModel([json.dumps({name: "SHOP ABC SDN BHD", "total": "9.00"})] * 2)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(RECEIPT_TEXT.encode(), schema=schema)
    data = result.to_dict()["data"]
    assert data == {name: "SHOP ABC SDN BHD", "total": 9.0}, data


for _prop in ("model_dump", "schema", "model_config", "_id", "a b", "1st", "copy", "model_fields", "validate"):

    def _own_name(ctx: Ctx, name: str = _prop) -> None:
        _keyed_by_own_names(ctx, name)

    _own_name.__name__ = "property_" + "".join(c if c.isalnum() else "_" for c in _prop).strip("_")
    case("schema", f"a schema property named {_prop!r}: `data` keyed by it, never renamed, dropped or a traceback")(
        _own_name
    )


@case("schema", "two properties that would share an attribute ('a b', 'a-b'): both kept under their own names")
def property_clash(ctx: Ctx) -> None:
    schema = {"type": "object", "properties": {"a b": {"type": "string"}, "a-b": {"type": "string"}}}
    answer = {"a b": "SHOP ABC SDN BHD", "a-b": "RECEIPT NO 1"}
    model = ScriptedChatModel([json.dumps(answer)] * 2)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(RECEIPT_TEXT.encode(), schema=schema)
    assert result.to_dict()["data"] == answer


@case("schema", "a schema property named '' (the empty string): SchemaError with a hint, no traceback")
def property_empty(ctx: Ctx) -> None:
    schema = {"type": "object", "properties": {"": {"type": "string"}, "total": {"type": "number"}}}
    raises(
        SchemaError, lambda: ChatOCR(llm="scripted", ocr="text").extract(b"TOTAL 9.00", schema=schema), hint_has="name"
    )


@case("schema", "`chatocr extract --schema` with a property named 'model_config': --format values keyed by it")
def property_on_cli(ctx: Ctx) -> None:
    schema = ctx.file("s.json", json.dumps({"type": "object", "properties": {"model_config": {"type": "string"}}}))
    ctx.script([{"model_config": "SHOP ABC SDN BHD"}])
    code, out, err = ctx.cli(
        "extract", ctx.file("r.txt", RECEIPT_TEXT), *SCHEMA_ARGS, "--schema", schema, "--format", "json"
    )
    assert code == 0 and json.loads(out)["data"] == {"model_config": "SHOP ABC SDN BHD"}, err


# ---- grounding: a number or a date is on the page only as that value ---------------------------------


def _grounded(ctx: Ctx, text: str, key: str, answer: str) -> str:
    doc = ctx.file("doc.txt", text)
    model = ScriptedChatModel([json.dumps({key.split(":")[0]: answer})] * 4)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(str(doc), keys=[key])
    field = result.fields[key.split(":")[0]]
    if field.status == "grounded":
        assert field.match != "fuzzy", field
    return field.status


for _name, _text, _key, _answer, _status in (
    ("change_for_total", "CASH 15.00\nCHANGE 7.00\n", "total:amount", "8.00", "ungrounded"),
    ("total_3_for_13", "SUBTOTAL 3.00\nTOTAL 3.00\n", "total:amount", "13.00", "ungrounded"),
    ("total_13_for_3", "TOTAL 13.00\n", "total:amount", "3.00", "ungrounded"),
    ("year_off_by_one", "DATE 25/12/2018\n", "date:date", "25/12/2019", "ungrounded"),
    ("iso_year_off", "DATE 25/12/2018\n", "date:date", "2019-12-25", "ungrounded"),
    ("day_inside_date", "DATE 25/12/2019\n", "date:date", "5/12/2019", "ungrounded"),
    ("thousands_inside", "TOTAL 1,234,567.00\n", "total:amount", "1,234", "ungrounded"),
    ("count_inside", "TICKETS 12\n", "count:number", "2", "ungrounded"),
    ("number_9_on_9_00", "TOTAL 9.00\n", "total:amount", "9", "grounded"),
    ("separators", "TOTAL RM 1,234.50\n", "total:amount", "1234.50", "grounded"),
    ("iso_date", "DATE 25/12/2018\n", "date:date", "2018-12-25", "grounded"),
    ("cjk_date", "开票日期 2024年03月18日\n", "date:date", "2024-03-18", "grounded"),
):

    def _near_miss(ctx: Ctx, text: str = _text, key: str = _key, answer: str = _answer, status: str = _status) -> None:
        assert _grounded(ctx, text, key, answer) == status

    _near_miss.__name__ = _name
    case("grounding", f"{_answer!r} as {_key} on {_text.strip()!r}: {_status}")(_near_miss)


@case("grounding", "a line item whose amount is a near miss (8.00 on a 7.00 row): that leaf ungrounded")
def item_near_miss(ctx: Ctx) -> None:
    text = "ROTI CANAI  7.00\nTEH TARIK  2.00\nTOTAL  9.00\n"
    answer = {
        "items": [{"description": "ROTI CANAI", "amount": "8.00"}, {"description": "TEH TARIK", "amount": "2.00"}]
    }
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"description": {"type": "string"}, "amount": {"type": "number"}},
                },
            }
        },
    }
    model = ScriptedChatModel([json.dumps(answer)] * 4)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(text.encode(), schema=schema)
    assert result.provenance["items[0].amount"].status == "ungrounded"
    assert result.provenance["items[1].amount"].status == "grounded"


@case("grounding", "a typed Decimal total that is a near miss: not in `data` (None), never trusted")
def typed_near_miss(ctx: Ctx) -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}, "company": {"type": "string"}}}
    model = ScriptedChatModel([json.dumps({"total": "8.00", "company": "SHOP ABC SDN BHD"})] * 4)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(b"SHOP ABC SDN BHD\nCHANGE 7.00\n", schema=schema)
    assert result.provenance["total"].status == "ungrounded" and "total" not in result.trusted_values()


@case("grounding", "a free-text answer claiming 8.00 and 25/12/2019 on a page with 7.00 and 25/12/2018: unsupported")
def answer_near_miss(ctx: Ctx) -> None:
    document = TextEngine().read_text("CASH 15.00\nCHANGE 7.00\nDATE 25/12/2018\n")
    checked = check_answer("The change was 8.00 on 25/12/2019.", document)
    assert sorted(c.text for c in checked.unsupported) == ["25/12/2019", "8.00"]
