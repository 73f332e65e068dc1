"""Schema in and instance out, without OCR or a model: the type mapping, the unsupported types, JSON
Schemas (valid and not), scenarios built from models and written to YAML, scenarios exported as
models, and pydantic's validation errors as concrete problems with JSON paths."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field, field_validator

from chatocr.errors import ConfigError, SchemaError
from chatocr.scenarios import FieldType, load_scenario_text, load_scenarios
from chatocr.typed import build_instance, model_from_fields, model_source, scenario_from_model, typed_schema


class Pay(str, Enum):
    cash = "cash"
    card = "card"


class Item(BaseModel):
    description: str = Field(description="as printed")
    quantity: Optional[int] = None  # noqa: UP045 - the Optional spelling is part of what is tested
    amount: Decimal


class Shop(BaseModel):
    name: str
    phone: str | None = None


class Receipt(BaseModel):
    """A shop receipt."""

    company: str = Field(description="the shop's name", alias="store")
    date: date
    issued: datetime | None = None
    total: Decimal
    rate: float | None = None
    kind: Literal["retail", "food"] | None = None
    payment: Pay | None = None
    shop: Shop | None = None
    tags: list[str] = []
    items: list[Item] = []

    @field_validator("total")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("total must be positive")
        return value


def test_the_mapping_table() -> None:
    fields = {f.name: f for f in typed_schema(Receipt).fields}
    kinds = {name: f.type for name, f in fields.items()}
    assert kinds == {
        "company": FieldType.text,
        "date": FieldType.date,
        "issued": FieldType.date,
        "total": FieldType.amount,
        "rate": FieldType.number,
        "kind": FieldType.enum,
        "payment": FieldType.enum,
        "shop": FieldType.object,
        "tags": FieldType.list,
        "items": FieldType.list,
    }
    assert fields["company"].description == "the shop's name" and fields["company"].aliases == ("store",)
    assert fields["company"].required and fields["total"].required and not fields["issued"].required
    assert fields["kind"].choices == ("retail", "food") and fields["payment"].choices == ("cash", "card")
    assert [(s.name, s.type, s.required) for s in fields["items"].items] == [
        ("description", "text", True),
        ("quantity", "number", False),
        ("amount", "amount", True),
    ]
    assert [s.name for s in fields["shop"].items] == ["name", "phone"]
    assert fields["items"].items[0].description == "as printed"


def test_instance_has_typed_values() -> None:
    schema = typed_schema(Receipt)
    instance, problems = build_instance(
        schema,
        {
            "company": "ACME",
            "date": "2018-12-25",
            "total": "9.00",
            "payment": "cash",
            "shop": {"name": "ACME", "phone": None},
            "items": [{"description": "COFFEE", "quantity": "2", "amount": "7.00"}],
        },
    )
    assert problems == []
    assert isinstance(instance, Receipt)
    assert instance.total == Decimal("9.00") and str(instance.total) == "9.00"
    assert instance.date == date(2018, 12, 25)
    assert instance.payment is Pay.cash
    assert instance.items[0].quantity == 2 and instance.items[0].amount == Decimal("7.00")
    assert instance.shop is not None and instance.shop.name == "ACME"


def test_validation_errors_are_problems_with_json_paths() -> None:
    schema = typed_schema(Receipt)
    instance, problems = build_instance(
        schema,
        {
            "company": "ACME",
            "date": "2018-12-25",
            "total": "-1",
            "items": [
                {"description": "A", "amount": "1"},
                {"description": "B", "amount": "1"},
                {"description": "C", "quantity": "1.5", "amount": None},
            ],
        },
    )
    assert instance is None
    by_path = {p.path: p.message for p in problems}
    assert "total must be positive" in by_path["total"]  # the model's own validator, as a message
    assert "items[2].amount" in by_path and "items[2].quantity" in by_path
    # The alias is the key pydantic validates by; the problem names the field.
    _, missing = build_instance(schema, {"date": "2018-12-25", "total": "1"})
    assert [p.path for p in missing] == ["company"]


def test_a_validator_that_raises_anything_becomes_a_problem() -> None:
    class Odd(BaseModel):
        total: Decimal

        @field_validator("total")
        @classmethod
        def _boom(cls, value: Decimal) -> Decimal:
            raise KeyError("no rate table")

    instance, problems = build_instance(typed_schema(Odd), {"total": "1"})
    assert instance is None and len(problems) == 1 and "no rate table" in problems[0].message


class _Bytes(BaseModel):
    blob: bytes


class _Free(BaseModel):
    extra: dict[str, Any]


class _Node(BaseModel):
    label: str
    child: Optional[_Node] = None  # noqa: UP045


class _Tree(BaseModel):
    nodes: list[_Node]


class _A(BaseModel):
    a: str


class _B(BaseModel):
    b: str


class _Union(BaseModel):
    party: _A | _B


class _Deep(BaseModel):
    shop: Receipt


class _Flag(BaseModel):
    paid: bool


@pytest.mark.parametrize(
    ("model", "where", "words"),
    [
        (_Bytes, "_Bytes.blob", "bytes"),
        (_Free, "_Free.extra", "dict"),
        (_Node, "_Node.child", "recursive"),
        (_Tree, "_Tree.nodes[].child", "recursive"),
        (_Union, "_Union.party", "union"),
        (_Deep, "_Deep.shop.shop", "nested more than one level"),
        (_Flag, "_Flag.paid", "bool"),
    ],
)
def test_unsupported_types_are_schema_errors_naming_the_field(model: type[BaseModel], where: str, words: str) -> None:
    with pytest.raises(SchemaError) as caught:
        typed_schema(model)
    assert isinstance(caught.value, ConfigError)
    message = str(caught.value)
    assert where in message and words in message.casefold(), message
    assert "Types that work: str, date" in caught.value.hint


def test_not_a_model_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="pydantic BaseModel subclass or a JSON Schema"):
        typed_schema(Receipt(store="x", date=date.today(), total=Decimal(1)))  # type: ignore[arg-type]


def test_json_schema_in_gives_typed_instances_and_checks_its_constraints() -> None:
    schema = typed_schema(
        {
            "title": "Ticket",
            "type": "object",
            "properties": {
                "price": {"type": "number", "minimum": 0, "description": "ticket price"},
                "day": {"type": "string", "format": "date"},
                "seat": {"type": ["string", "null"]},
                "grade": {"enum": ["一等座", "二等座"]},
                "legs": {"type": "array", "items": {"$ref": "#/$defs/Leg"}},
            },
            "required": ["price", "day"],
            "$defs": {
                "Leg": {
                    "type": "object",
                    "properties": {"train": {"type": "string"}, "n": {"type": "integer"}},
                    "required": ["train"],
                }
            },
        }
    )
    kinds = {f.name: (f.type, f.required) for f in schema.fields}
    assert kinds == {
        "price": (FieldType.number, True),
        "day": (FieldType.date, True),
        "seat": (FieldType.text, False),
        "grade": (FieldType.enum, False),
        "legs": (FieldType.list, False),
    }
    assert schema.name == "Ticket" and schema.describe()["json_schema"]["title"] == "Ticket"
    instance, problems = build_instance(
        schema, {"price": "54.5", "day": "2024-03-18", "grade": "二等座", "legs": [{"train": "G1", "n": "3"}]}
    )
    assert problems == [] and instance is not None
    assert instance.day == date(2024, 3, 18)  # type: ignore[attr-defined]
    _, problems = build_instance(schema, {"price": "-3", "day": "2024-03-18"})
    assert [(p.path, "minimum" in p.message) for p in problems] == [("price", True)]


def test_pydantic_json_schema_round_trips() -> None:
    schema = typed_schema(Item.model_json_schema())
    assert [(f.name, f.type) for f in schema.fields] == [
        ("description", FieldType.text),
        ("quantity", FieldType.number),
        ("amount", FieldType.amount),
    ]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"type": "object", "properties": {"total": {"type": "money"}}}, "properties/total/type"),
        ({"type": "object", "required": "total"}, "required"),
    ],
)
def test_an_invalid_json_schema_gives_the_jsonschema_message_and_path(bad: dict[str, Any], words: str) -> None:
    with pytest.raises(SchemaError, match="JSON Schema is invalid") as caught:
        typed_schema(bad)
    assert words in str(caught.value)


def test_a_json_schema_with_no_properties_or_free_objects_is_refused() -> None:
    with pytest.raises(SchemaError, match="properties"):
        typed_schema({"type": "array"})
    with pytest.raises(SchemaError, match="without `properties`"):
        typed_schema({"type": "object", "properties": {"meta": {"type": "object"}}})


def test_scenario_from_model_writes_yaml_that_loads_back_equal() -> None:
    scenario = scenario_from_model(Receipt, name="my_receipt", title="Receipt", instructions="- total is TOTAL.")
    assert scenario.description == "A shop receipt."
    assert scenario.field("store") is scenario.field("company")  # the alias
    text = scenario.to_yaml()
    assert load_scenario_text(text, "my_receipt.yaml") == scenario
    assert "type: object" in text and "type: list" in text


def _import(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["retail_receipt", "vat_invoice", "train_ticket", "id_card"])
def test_scenario_fields_export_as_a_model_with_the_same_fields(name: str, tmp_path: Path) -> None:
    scenario = load_scenarios().get(name)
    # A model carries neither aliases nor the scenario's position pairs (`before:`); it does carry
    # `never`, `trim` and `complete` (as json_schema_extra "x-never", "x-trim", "x-complete").
    expected = tuple(f.model_copy(update={"aliases": (), "before": None}) for f in scenario.fields)
    assert typed_schema(model_from_fields(scenario.name, scenario.fields)).fields == expected
    source = model_source(scenario)  # what type checkers read
    (tmp_path / f"src_{name}.py").write_text(source, encoding="utf-8")
    module = _import(tmp_path / f"src_{name}.py", f"src_{name}")
    model = next(v for k, v in vars(module).items() if k.lower() == name.replace("_", ""))
    assert typed_schema(model).fields == expected


class _Shop(BaseModel):
    name: str = Field(
        description="the shop", json_schema_extra={"x-never": [r"(tax\s+)?invoice"], "x-complete": [r"sdn\s*bhd"]}
    )
    branch: str | None = Field(None, json_schema_extra={"x-never": ["head office"], "x-trim": [r"tel\b.*"]})
    total: Decimal


def test_x_never_carries_a_text_fields_never_patterns_from_a_model_and_a_json_schema() -> None:
    for given in (_Shop, _Shop.model_json_schema()):
        fields = {f.name: f for f in typed_schema(given).fields}
        assert fields["name"].never == (r"(tax\s+)?invoice",) and fields["name"].ruled_out("TAX  INVOICE")
        assert fields["branch"].never == ("head office",)  # Optional: the JSON Schema keeps it beside anyOf
        assert fields["branch"].trim == (r"tel\b.*",) and fields["branch"].trims("TEL: 03-1234")
        assert fields["name"].complete == (r"sdn\s*bhd",) and fields["name"].completion("5DN BHD") == "SDN BHD"
        assert fields["total"].never == () and fields["total"].trim == () and fields["total"].complete == ()


def test_x_never_on_a_non_text_field_or_not_a_list_of_patterns_is_refused() -> None:
    class OnAmount(BaseModel):
        total: Decimal = Field(json_schema_extra={"x-never": ["0"]})

    class NotAList(BaseModel):
        name: str = Field(json_schema_extra={"x-never": "invoice"})

    class BadRegex(BaseModel):
        name: str = Field(json_schema_extra={"x-never": ["(invoice"]})

    class TrimOnAmount(BaseModel):
        total: Decimal = Field(json_schema_extra={"x-trim": ["tel.*"]})

    class BadTrim(BaseModel):
        name: str = Field(json_schema_extra={"x-trim": ["(tel"]})

    class CompleteOnDate(BaseModel):
        when: date = Field(json_schema_extra={"x-complete": ["pm"]})

    class BadComplete(BaseModel):
        name: str = Field(json_schema_extra={"x-complete": ["(ltd"]})

    refused = (
        (OnAmount, "text .str. fields only"),
        (NotAList, "a list of"),
        (BadRegex, "not a regular"),
        (TrimOnAmount, "x-trim applies to text"),
        (BadTrim, "`trim` pattern"),
        (CompleteOnDate, "x-complete applies to text"),
        (BadComplete, "`complete` pattern"),
    )
    for model, words in refused:
        with pytest.raises(SchemaError, match=words):
            typed_schema(model)
        with pytest.raises(SchemaError, match=words):
            typed_schema(model.model_json_schema())


def test_x_trim_on_a_date_field_names_the_time_printed_after_it() -> None:
    class Receipt(BaseModel):
        when: date = Field(json_schema_extra={"x-trim": [r"\d{1,2}:\d{2}"]})

    for given in (Receipt, Receipt.model_json_schema()):
        field = next(f for f in typed_schema(given).fields if f.name == "when")
        assert field.type is FieldType.date and field.trims("17:52") and not field.trims("2026")
