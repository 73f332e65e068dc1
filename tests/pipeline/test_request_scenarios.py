"""A request's scenario: a name or a YAML path joins or comes from the shared library (the CLI and
the Python API, as before); a Scenario object is used for its own request alone, with its own
examples, and never joins (what the service's inline `scenario_yaml` relies on). And the keys a
request may ask: at most MAX_KEYS, no control characters, refused before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.errors import ConfigError, ScenarioError
from chatocr.extraction.examples import ExampleBank
from chatocr.extraction.request import MAX_KEYS
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.scenarios.loader import load_scenario_text
from chatocr.scenarios.model import FieldSpec
from tests.parcel_scenario import parcel_yaml

RECEIPT = "ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL RM 9.90\n"
GOOD = '{"company": "ACME TRADING SDN BHD", "total": "9.90"}'


def make() -> tuple[ChatOCR, ScriptedChatModel]:
    model = ScriptedChatModel([GOOD] * 8, retry_policy=RetryPolicy(max_attempts=1))
    return ChatOCR(llm=model, ocr="text", ocr_cache=False), model


def _sent(model: ScriptedChatModel) -> str:
    return json.dumps([[m.content for m in call.messages] for call in model.calls], ensure_ascii=False)


@pytest.mark.parametrize("name", ["parcel_label", "retail_receipt"])
def test_a_scenario_object_is_used_with_its_own_examples_and_never_joins_the_library(name: str) -> None:
    ocr, model = make()
    before = (ocr.library.names(), ocr.library.version)
    own = load_scenario_text(parcel_yaml(name), "inline")
    result = ocr.extract(RECEIPT.encode(), scenario=own)
    assert result.ok and result.scenario == name
    assert result.examples == [own.example_id(0)]  # its own example, even under a library scenario's name
    assert "ZEBRA EXAMPLE SENDER" in _sent(model)
    assert (ocr.library.names(), ocr.library.version) == before  # not listed, not routed to, not re-indexed
    if name == "parcel_label":
        with pytest.raises(ScenarioError):
            ocr.request(None, name)  # another request cannot use it by name
    else:  # the library's own scenario of that name is untouched and still gives its own examples
        library = ocr.extract(RECEIPT.encode(), scenario=name)
        assert library.examples and own.example_id(0) not in library.examples
        assert all(e.startswith("retail_receipt/") for e in library.examples)


def test_a_yaml_path_still_joins_the_library(tmp_path: Path) -> None:
    """The command line's `--scenario my.yaml` and the Python API's path: as before."""
    ocr, _ = make()
    path = tmp_path / "parcel.yaml"
    path.write_text(parcel_yaml("parcel_label"), encoding="utf-8")
    request = ocr.request(None, str(path))
    assert request.scenario is not None and "parcel_label" in ocr.library
    assert ocr.request(None, "parcel_label").scenario is request.scenario


def test_the_bank_ranks_a_scenario_outside_its_library_in_a_bank_of_its_own() -> None:
    ocr, _ = make()
    bank = ocr.pipeline.bank
    own = load_scenario_text(parcel_yaml("parcel_label"), "inline")
    fields = [FieldSpec(name="company"), FieldSpec(name="total")]
    ranked = bank.select("SENDER LTD\nTOTAL 3.00", fields, own)
    assert [e.id for e in ranked] == [own.example_id(0)]
    assert ranked[0].answer == {"company": "ZEBRA EXAMPLE SENDER LTD", "total": "4.20"}
    kept = bank._own_bank(own)
    assert bank._own_bank(own) is kept  # a re-plan or the next page does not index it again
    library = bank.select(RECEIPT, fields, ocr.library.get("retail_receipt"))
    assert library and all(e.id.startswith("retail_receipt/") for e in library)
    assert "parcel_label" not in bank.library


def test_a_fresh_bank_over_an_empty_library_still_ranks_a_given_scenario() -> None:
    from chatocr.scenarios.loader import ScenarioLibrary

    own = load_scenario_text(parcel_yaml("parcel_label"), "inline")
    ranked = ExampleBank(ScenarioLibrary()).select("SENDER", [FieldSpec(name="company")], own)
    assert [e.id for e in ranked] == [own.example_id(0)]


@pytest.mark.parametrize(
    "keys",
    [
        [f"k{n}" for n in range(MAX_KEYS + 1)],
        ",".join(f"k{n}" for n in range(MAX_KEYS + 1)),
    ],
    ids=["list", "text"],
)
def test_more_than_max_keys_is_refused_by_count_before_any_work(keys: Any) -> None:
    ocr, model = make()
    with pytest.raises(ConfigError, match=f"at most {MAX_KEYS}") as info:
        ocr.extract(RECEIPT.encode(), keys=keys)
    assert "fewer keys" in info.value.hint and model.calls == []
    assert ocr.request([f"k{n}" for n in range(MAX_KEYS)], None).keys is not None  # the limit itself is fine


@pytest.mark.parametrize("keys", [["com\x00pany"], "company,to\ntal", ["total:amount", "a\x1b[31m"], "x\x7f:text"])
def test_a_key_with_a_control_character_is_refused(keys: Any) -> None:
    ocr, model = make()
    with pytest.raises(ConfigError, match="control character") as info:
        ocr.request(keys, None)
    assert "NAME[:TYPE]" in info.value.hint and model.calls == []


def _objects(count: int, keys: int) -> dict[str, Any]:
    item = {"type": "object", "properties": {f"i{n}": {"type": "string"} for n in range(keys)}}
    return {"type": "object", "properties": {f"o{n}": item for n in range(count)}}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(MAX_KEYS + 1)}},
        _objects(100, 90),  # 9,000 line-item keys under 100 objects
        {  # through a reference, used by a property
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
            "$defs": {"item": {"type": "object", "properties": {f"i{n}": {"type": "string"} for n in range(MAX_KEYS)}}},
        },
    ],
    ids=["flat", "nested", "referenced"],
)
def test_a_schema_asking_more_than_max_keys_properties_is_refused_before_it_is_mapped(schema: dict[str, Any]) -> None:
    from chatocr.errors import SchemaError
    from chatocr.typed import schema as typed_module

    ocr, model = make()
    mapped = len(typed_module._JSON_SCHEMAS)
    with pytest.raises(SchemaError, match=f"more than {MAX_KEYS} properties") as info:
        ocr.request(None, None, schema=schema)
    assert "fewer fields" in info.value.hint and model.calls == []
    assert len(typed_module._JSON_SCHEMAS) == mapped  # nothing was mapped


def test_schemas_within_the_limit_are_mapped_as_before() -> None:
    ocr, _ = make()
    assert ocr.request(None, None, schema=_objects(5, 90)).typed.schema is not None  # 455 properties
    cycle = {  # a definition that refers to itself: counted once, left to the mapping (accepted)
        "type": "object",
        "properties": {"company": {"type": "string"}},
        "x-unused": {"not": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
    }
    assert ocr.request(None, None, schema=cycle).typed.schema is not None
