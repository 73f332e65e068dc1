"""Typed extraction end to end on the scripted backend and pre-OCR'd text: a model in, a typed
instance out, validation errors re-asked, line items grounded row by row, min_confidence, the JSON
form, bad schemas refused before any OCR or model call, and ChatSession.ask(schema=)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, field_validator

from chatocr import ChatOCR, Extraction
from chatocr.errors import ConfigError, SchemaError
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.typed import scenario_from_model

RECEIPT = """ACME TRADING SDN BHD
12 JALAN BESAR, 50000 KUALA LUMPUR
DATE: 25/12/2018        TIME: 10:15
NASI LEMAK        1        4.50
ROTI CANAI        1        4.50
TOTAL        RM 9.00
CASH        RM 10.00
"""


class Item(BaseModel):
    description: str
    quantity: int | None = None
    amount: Decimal


class Receipt(BaseModel):
    company: str = Field(description="the shop's name")
    date: date
    total: Decimal
    items: list[Item] = []


def answer(**changes: Any) -> str:
    data: dict[str, Any] = {
        "company": "ACME TRADING SDN BHD",
        "date": "25/12/2018",
        "total": "9.00",
        "items": [
            {"description": "NASI LEMAK", "quantity": "1", "amount": "4.50"},
            {"description": "ROTI CANAI", "quantity": "1", "amount": "4.50"},
        ],
    }
    return json.dumps({**data, **changes})


def make(*answers: str, **overrides: Any) -> tuple[ChatOCR, ScriptedChatModel]:
    model = ScriptedChatModel(list(answers), retry_policy=RetryPolicy(max_attempts=1))
    return ChatOCR(llm=model, ocr="text", ocr_cache=False, **overrides), model


def test_a_model_in_gives_a_typed_instance_out() -> None:
    ocr, model = make(answer())
    result = ocr.extract(RECEIPT.encode(), schema=Receipt, scenario="retail_receipt")
    assert isinstance(result.data, Receipt) and result.errors == []
    assert result.data.total == Decimal("9.00") and result.data.date == date(2018, 12, 25)
    assert result.data.items[1] == Item(description="ROTI CANAI", quantity=1, amount=Decimal("4.50"))
    assert result.values["total"] == "9.00"  # the verbatim answers are still there
    assert len(model.calls) == 1
    schema = model.calls[0].settings.json_mode
    assert isinstance(schema, dict) and schema["required"] == ["company", "date", "total", "items"]
    assert "the shop's name" in model.calls[0].messages[0].content  # Field(description=...) reaches the prompt


def test_keys_may_be_the_model_itself() -> None:
    # The first try: `keys=Receipt` raised "TypeError: 'ModelMetaclass' object is not iterable".
    ocr, _ = make(answer())
    result = ocr.extract(RECEIPT.encode(), keys=Receipt, scenario="retail_receipt")
    assert isinstance(result.data, Receipt)


def test_line_items_are_grounded_on_their_own_rows() -> None:
    ocr, _ = make(answer())
    result = ocr.extract(RECEIPT.encode(), schema=Receipt, scenario="retail_receipt")
    leaves = result.provenance
    assert set(leaves) >= {"company", "total", "items[0].description", "items[1].amount"}
    first, second = leaves["items[0].amount"], leaves["items[1].amount"]
    assert first.status == second.status == "grounded"
    # Both items cost 4.50: each amount is the one on its own description's row, not the first 4.50.
    assert [e.text for e in first.evidence] == ["NASI LEMAK        1        4.50"]
    assert [e.text for e in second.evidence] == ["ROTI CANAI        1        4.50"]
    assert second.evidence[0].line_id == leaves["items[1].description"].evidence[0].line_id
    assert len(second.evidence[0].box) == 4 and second.confidence == 1.0


def test_an_item_that_is_nowhere_is_flagged_per_item_and_re_asked() -> None:
    invented = {"description": "TEH TARIK", "quantity": "1", "amount": "2.00"}
    good_items = json.loads(answer())["items"]
    ocr, model = make(answer(items=[*good_items, invented]), answer())
    result = ocr.extract(RECEIPT.encode(), schema=Receipt, scenario="retail_receipt")
    repair = model.calls[1].messages[-1].content
    assert "items[2] (TEH TARIK, 1, 2.00) does not occur in the OCR text" in repair
    assert "items[0]" not in repair and "items[1]" not in repair
    assert result.steps == 2 and isinstance(result.data, Receipt) and len(result.data.items) == 2


class Strict(BaseModel):
    total: Decimal

    @field_validator("total")
    @classmethod
    def _round_tens(cls, value: Decimal) -> Decimal:
        if value % 10:
            raise ValueError("total must be a multiple of 10")
        return value


def test_validation_errors_are_re_asked_and_left_in_errors_after_the_budget() -> None:
    ocr, model = make('{"total": "9.00"}', '{"total": "9.00"}', max_steps=2)
    result = ocr.extract(RECEIPT.encode(), schema=Strict, scenario="retail_receipt")
    assert len(model.calls) == 2
    assert "total: Value error, total must be a multiple of 10" in model.calls[1].messages[-1].content
    assert result.ok and result.data is None
    assert result.errors == [{"path": "total", "message": "Value error, total must be a multiple of 10"}]
    assert result.values == {"total": "9.00"} and result.fields["total"].status == "grounded"


def test_a_validator_raising_a_type_error_goes_to_the_re_ask_not_a_traceback() -> None:
    class Odd(BaseModel):
        total: Decimal

        @field_validator("total")
        @classmethod
        def _boom(cls, value: Decimal) -> Decimal:
            raise TypeError("rate table missing")

    ocr, model = make('{"total": "9.00"}', '{"total": "9.00"}', max_steps=2)
    result = ocr.extract(RECEIPT.encode(), schema=Odd, scenario="retail_receipt")
    assert result.ok and result.data is None
    assert "rate table missing" in model.calls[1].messages[-1].content
    assert "rate table missing" in result.errors[0]["message"]


def test_json_form_carries_the_schema_and_loads_back() -> None:
    ocr, _ = make(answer())
    result = ocr.extract(RECEIPT.encode(), schema=Receipt, scenario="retail_receipt")
    data = json.loads(result.to_json())
    assert data["schema"]["name"] == "Receipt"
    assert data["schema"]["json_schema"]["properties"]["items"]["type"] == "array"
    assert data["data"]["total"] == "9.00" and data["data"]["date"] == "2018-12-25"
    assert data["fields"]["items"]["parts"]["items[1].amount"]["status"] == "grounded"
    loaded = Extraction.from_json(result.to_json())
    assert loaded.data == data["data"] and loaded.provenance["items[1].amount"].evidence
    assert loaded.schema == data["schema"]


def test_a_json_schema_works_like_a_model() -> None:
    ocr, _ = make('{"total": "9.00", "date": "25/12/2018"}')
    schema = {
        "title": "Till",
        "type": "object",
        "required": ["total"],
        "properties": {"total": {"type": "number", "maximum": 100}, "date": {"type": "string", "format": "date"}},
    }
    result = ocr.extract(RECEIPT.encode(), schema=schema, scenario="retail_receipt")
    assert result.data is not None and result.data.total == 9  # type: ignore[attr-defined]
    assert result.data.date == date(2018, 12, 25)  # type: ignore[attr-defined]
    assert result.schema is not None and result.schema["name"] == "Till"


LOW = json.dumps(
    [
        {"text": "ACME TRADING SDN BHD", "box": [0, 0, 200, 0, 200, 20, 0, 20], "confidence": 0.97},
        {"text": "TOTAL 9.00", "box": [0, 30, 200, 30, 200, 50, 0, 50], "confidence": 0.55},
    ]
).encode()


class Small(BaseModel):
    company: str
    total: Decimal | None = None


def test_min_confidence_marks_low_values_and_keeps_them_out_unless_asked() -> None:
    reply = '{"company": "ACME TRADING SDN BHD", "total": "9.00"}'
    ocr, model = make(reply, reply, reply, min_confidence=0.8)  # from the config
    result = ocr.extract(LOW, schema=Small, scenario="retail_receipt")
    assert len(model.calls) == 1  # low confidence is not the model's to fix: no re-ask
    assert result.fields["total"].status == "low_confidence" and result.fields["total"].confidence == 0.55
    assert result.fields["company"].status == "grounded"
    assert result.trusted_values() == {"company": "ACME TRADING SDN BHD"}
    assert result.trusted_values(include_low_confidence=True)["total"] == "9.00"
    assert isinstance(result.data, Small) and result.data.total is None
    assert any("below min_confidence" in w for w in result.warnings)
    asked = ocr.extract(LOW, schema=Small, scenario="retail_receipt", include_low_confidence=True)
    assert isinstance(asked.data, Small) and asked.data.total == Decimal("9.00")
    per_field = ocr.extract(
        LOW, keys=["company", "total"], scenario="retail_receipt", min_confidence={"company": 0.99}
    )  # the call's option wins; per field
    assert per_field.fields["company"].status == "low_confidence" and per_field.fields["total"].status == "grounded"


def test_min_confidence_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="min_confidence"):
        make(min_confidence=1.5)


class Bad(BaseModel):
    blob: bytes


def test_an_unmappable_model_fails_before_any_ocr_or_model_call(tmp_path: Path) -> None:
    ocr, model = make(answer())
    missing = tmp_path / "nowhere.png"  # reading it would be an InputError: the schema fails first
    with pytest.raises(SchemaError, match=r"Bad\.blob") as caught:
        ocr.extract(missing, schema=Bad)
    assert "Types that work" in caught.value.hint
    with pytest.raises(SchemaError, match="JSON Schema is invalid"):
        ocr.extract(missing, schema={"type": "object", "properties": {"total": {"type": "money"}}})
    with pytest.raises(SchemaError):
        list(ocr.extract_many([missing, missing], schema=Bad))
    assert model.calls == []


def test_keys_in_the_key_syntax_set_type_and_description() -> None:
    ocr, model = make('{"total": "9.00", "shop": "ACME TRADING SDN BHD"}')
    result = ocr.extract(
        RECEIPT.encode(), keys="total:amount=the final amount paid,shop=the shop's name", scenario="retail_receipt"
    )
    assert result.fields["total"].normalized == "9.00" and result.fields["shop"].status == "grounded"
    system = model.calls[0].messages[0].content
    assert "total (amount" in system and "the final amount paid" in system and "the shop's name" in system
    with pytest.raises(ConfigError, match="Unknown type 'money'"):
        ocr.extract(RECEIPT.encode(), keys="total:money")


def test_a_scenario_yaml_path_is_accepted(tmp_path: Path) -> None:
    scenario = scenario_from_model(Receipt, name="my_receipt", title="My receipt", description="receipts of my shop")
    path = tmp_path / "my_receipt.yaml"
    path.write_text(scenario.to_yaml(), encoding="utf-8")
    ocr, _ = make(answer())
    result = ocr.extract(RECEIPT.encode(), scenario=str(path), schema=Receipt)
    assert result.scenario == "my_receipt" and isinstance(result.data, Receipt)


def test_chat_ask_with_a_schema_returns_a_typed_extraction() -> None:
    class Total(BaseModel):
        total: Decimal

    ocr, model = make('{"total": "9.00"}')
    session = ocr.chat(RECEIPT.encode(), "retail_receipt")
    result = session.ask("What was the total paid?", schema=Total)
    assert isinstance(result, Extraction) and isinstance(result.data, Total) and result.data.total == Decimal("9.00")
    assert "What was the total paid?" in model.calls[0].messages[0].content
    assert session.usage["calls"] == 1 and session.history[-1][0] == "What was the total paid?"


class Line(BaseModel):
    amount: Decimal
    description: str


class Lines(BaseModel):
    items: list[Line]


def test_examples_teach_only_the_item_keys_the_model_asks_for() -> None:
    reply = json.dumps({"items": [{"amount": "4.50", "description": "NASI LEMAK"}]})
    ocr, model = make(reply)
    ocr.extract(RECEIPT.encode(), schema=Lines, scenario="retail_receipt")
    taught = [m.content for m in model.calls[0].messages if m.role == "assistant"]
    assert taught  # the scenario's examples, whose items also have a quantity
    for text in taught:
        for line in text.splitlines():
            if "{" in line:
                for item in json.loads(line[line.index("{") :])["items"] or []:
                    assert list(item) == ["amount", "description"]


def test_a_low_confidence_field_is_drawn_with_its_status() -> None:
    from chatocr.ocr.text import TextEngine
    from chatocr.viewer.drawing import STATUS_MARK, draw_extraction

    ocr, _ = make('{"company": "ACME TRADING SDN BHD", "total": "9.00"}', min_confidence=0.8)
    result = ocr.extract(LOW, schema=Small, scenario="retail_receipt")
    assert result.fields["total"].status == "low_confidence"
    picture = draw_extraction(result, TextEngine().read(LOW))  # a KeyError before the status had a mark
    assert picture.width > 0 and "low_confidence" in STATUS_MARK


def test_the_match_kind_counts_in_the_confidence() -> None:
    page = json.dumps([{"text": "ACME TRADING SDN BHD", "box": [0, 0, 200, 0, 200, 20, 0, 20], "confidence": 1.0}])
    ocr, _ = make('{"company": "Acme Trading Sdn Bhd"}', '{"company": "ACME TRADING SDN BHD"}', min_confidence=0.97)
    folded = ocr.extract(page.encode(), keys=["company"], scenario="retail_receipt")
    assert folded.fields["company"].match == "normalized" and folded.fields["company"].confidence == 0.95
    assert folded.fields["company"].status == "low_confidence"  # found only after case folding
    exact = ocr.extract(page.encode(), keys=["company"], scenario="retail_receipt")
    assert exact.fields["company"].match == "exact" and exact.fields["company"].status == "grounded"


def test_a_bad_schema_fails_before_a_multi_page_input_is_read(tmp_path: Path) -> None:
    ocr, model = make(answer())
    with pytest.raises(SchemaError, match="blob"):
        ocr.extract_pages(tmp_path / "missing.pdf", schema=Bad)  # reading it first would be an InputError
    assert model.calls == []
