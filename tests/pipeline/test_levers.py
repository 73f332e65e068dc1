"""Each accuracy lever through the whole pipeline, with a scripted backend: on, it changes the
result the way it should; off (or at its default), it does not. A lever whose code were removed
fails these tests."""

from __future__ import annotations

import json

from chatocr import ChatOCR
from chatocr.extraction.extractive import extractive_schema
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.scenarios import load_scenarios

from .test_reask_extractive import TITLED
from .test_snapping import document

RECEIPT = document(
    "KEDAI MAJU JAYA",
    "SDN BHD",
    "LOT 7, JALAN MERDEKA,",
    "43000 KAJANG",
    ("DATE:", "03/04/2021"),
    ("TOTAL", "12.60"),
)
KEYS = ["company", "date", "address", "total"]
TICKET = document("Z012345", ("东山站", "G101", "西河站"), "2019年01月02日08:09开")


def run(answers: list[str], keys: list[str], doc: object, scenario: str, **config: object):  # type: ignore[no-untyped-def]
    model = ScriptedChatModel(answers, retry_policy=RetryPolicy(max_attempts=1))
    chat = ChatOCR(llm=model, ocr="text", ocr_cache=False, **config)  # type: ignore[arg-type]
    return chat.extract(doc, keys=keys, scenario=scenario), model


def receipt_answer(keys: list[str] = KEYS, **changes: object) -> str:
    base = {
        "company": "KEDAI MAJU JAYA SDN BHD",
        "date": "03/04/2021",
        "address": "LOT 7, JALAN MERDEKA, 43000 KAJANG",
        "total": "12.60",
    }
    return json.dumps({k: v for k, v in {**base, **changes}.items() if k in keys})


THREE = ["company", "date", "total"]


def test_snap_returns_the_pages_text_and_keeps_the_answer() -> None:
    answer = receipt_answer(date="2021-04-03", address="LOT 7 JALAN MERDEKA 43000 KAJANG")
    result, _ = run([answer], KEYS, RECEIPT, "retail_receipt")
    date, address = result.fields["date"], result.fields["address"]
    assert (date.value, date.answer, date.normalized, date.snap) == ("03/04/2021", "2021-04-03", "2021-04-03", "span")
    assert address.value == "LOT 7, JALAN MERDEKA, 43000 KAJANG" and address.answer.startswith("LOT 7 JALAN")
    assert result.values["date"] == "03/04/2021"
    off, _ = run([answer], KEYS, RECEIPT, "retail_receipt", snap=False)
    assert off.fields["date"].value == "2021-04-03" and off.fields["date"].answer is None


def test_snap_completes_the_company_with_its_legal_form_and_its_box() -> None:
    # The model stops before "SDN BHD" on the next line: retail_receipt's `complete` appends it,
    # and the appended line is evidence (where the viewer draws the value) beside the name's.
    result, _ = run([receipt_answer(THREE, company="KEDAI MAJU JAYA")], THREE, RECEIPT, "retail_receipt")
    company = result.fields["company"]
    assert (company.value, company.answer, company.snap) == ("KEDAI MAJU JAYA SDN BHD", "KEDAI MAJU JAYA", "complete")
    assert [e.text for e in company.evidence] == ["KEDAI MAJU JAYA", "SDN BHD"]
    assert all(len(e.box) == 4 for e in company.evidence)
    off, _ = run([receipt_answer(THREE, company="KEDAI MAJU JAYA")], THREE, RECEIPT, "retail_receipt", snap=False)
    assert off.fields["company"].value == "KEDAI MAJU JAYA"


def test_field_reask_asks_the_bad_field_alone_as_numbered_choices() -> None:
    first = receipt_answer(THREE, company="KEDAI MAJOO JAYA ENTERPRISE")  # not in the document
    result, model = run([first, '{"company": 1}'], THREE, RECEIPT, "retail_receipt", field_reask=True)
    assert len(model.calls) == 2 and result.calls[1].purpose == "choose"
    question = model.calls[1].messages[-1].content
    assert "1. KEDAI MAJU JAYA" in question and "company" in question
    schema = model.calls[1].settings.json_mode
    assert isinstance(schema, dict) and list(schema["properties"]) == ["company"]
    company = result.fields["company"]
    assert company.status == "grounded" and company.value.startswith("KEDAI MAJU JAYA")


def test_without_field_reask_the_whole_task_is_repeated() -> None:
    first = receipt_answer(THREE, company="KEDAI MAJOO JAYA ENTERPRISE")
    result, model = run([first, receipt_answer(THREE)], THREE, RECEIPT, "retail_receipt")
    assert result.calls[1].purpose == "repair" and "does not occur" in model.calls[1].messages[-1].content


def test_field_reask_answered_zero_leaves_the_field_as_it_was() -> None:
    first = receipt_answer(THREE, company="KEDAI MAJOO JAYA ENTERPRISE")
    result, _model = run(
        [first, '{"company": 0}', receipt_answer(THREE)], THREE, RECEIPT, "retail_receipt", field_reask=True
    )
    # 0 = none of them: still ungrounded, so the loop goes on with the ordinary re-ask.
    assert [c.purpose for c in result.calls] == ["extract", "choose", "repair"]
    assert result.fields["company"].status == "grounded"


def test_a_choice_question_refused_as_too_long_is_not_answered_with_the_choice_schema() -> None:
    from chatocr.errors import ContextTooLongError

    first = receipt_answer(THREE, company="KEDAI MAJOO JAYA ENTERPRISE")
    result, model = run(
        [first, ContextTooLongError("too long"), receipt_answer(THREE)],  # type: ignore[list-item]
        THREE,
        RECEIPT,
        "retail_receipt",
        field_reask=True,
    )
    # After the re-plan the conversation no longer holds the question: the next call is an
    # ordinary answer under the answer's own schema, not a number under the choice schema.
    third = model.calls[2].settings.json_mode
    assert isinstance(third, dict) and set(third["properties"]) == set(THREE)
    assert result.fields["company"].status == "grounded"


def test_extractive_sends_the_pages_strings_as_the_text_fields_schema() -> None:
    _result, model = run([receipt_answer()], KEYS, RECEIPT, "retail_receipt", extractive=True)
    schema = model.calls[0].settings.json_mode
    assert isinstance(schema, dict)
    company = schema["properties"]["company"]["enum"]
    assert "KEDAI MAJU JAYA SDN BHD" in company and company[-1] is None
    assert "enum" not in schema["properties"]["date"]  # dates keep free generation
    _plain, model = run([receipt_answer()], KEYS, RECEIPT, "retail_receipt")
    assert "enum" not in model.calls[0].settings.json_mode["properties"]["company"]  # type: ignore[index]


def test_positions_put_swapped_stations_back_by_the_boxes() -> None:
    swapped = json.dumps({"starting_station": "西河站", "destination_station": "东山站"}, ensure_ascii=False)
    keys = ["starting_station", "destination_station"]
    result, _ = run([swapped], keys, TICKET, "train_ticket", positions=True)
    assert result.values == {"starting_station": "东山站", "destination_station": "西河站"}
    assert any("other way round" in w for w in result.warnings)
    off, _ = run([swapped], keys, TICKET, "train_ticket")
    assert off.values["starting_station"] == "西河站"


def test_example_layout_weight_reaches_the_example_bank() -> None:
    chat = ChatOCR(llm=ScriptedChatModel([]), ocr="text", ocr_cache=False, example_layout=0.5)  # type: ignore[arg-type]
    assert chat.pipeline.bank.layout_weight == 0.5 and chat.pipeline.bank.layout_index is not None
    plain = ChatOCR(llm=ScriptedChatModel([]), ocr="text", ocr_cache=False)
    assert plain.pipeline.bank.layout_index is None


def test_a_document_of_noise_gets_no_forced_value() -> None:
    noise = document("~~ ,. :; ||", "#%&* ^^", "lIl1 oO0 ..")
    # The extractive grammar of such a page still allows "not present" for every text field...
    fields = load_scenarios().get("retail_receipt").fields
    schema = extractive_schema(tuple(f for f in fields if f.name in KEYS), noise.layout())
    assert all(None in schema["properties"][name]["enum"] for name in ("company", "address"))
    # ...and the pipeline asks nothing of a page with no words (tests/pipeline/test_noise.py).
    nulls = json.dumps(dict.fromkeys(KEYS))
    result, model = run([nulls] * 3, KEYS, noise, "retail_receipt", extractive=True, field_reask=True)
    assert model.calls == []
    assert all(f.value is None and f.status == "missing" for f in result.fields.values())


JOINED = "GOLDEN LEAF STATIONERY CO. (M) SDN BHD"


def test_an_answer_the_scenario_rules_out_is_asked_again_as_a_choice() -> None:
    """retail_receipt's company `never`: the title, or a legal form alone, is no company. Such a field
    is asked alone as numbered lines (with field_reask off too), never the ruled-out line again."""
    for wrong in ("TAX INVOICE", "CO. (M) SDN BHD"):
        first = json.dumps({"company": wrong, "date": "09/09/2022", "total": "8.50"})
        question = _question_for(first)
        assert "TAX INVOICE" not in question and "1. GOLDEN LEAF STATIONERY" in question
        number = next(n for n, _, text in (ln.partition(". ") for ln in question.splitlines()) if text == JOINED)
        result, model = run([first, json.dumps({"company": int(number)})], THREE, TITLED, "retail_receipt")
        assert len(model.calls) == 2 and result.calls[1].purpose == "choose"
        company = result.fields["company"]
        assert (company.value, company.status) == (JOINED, "grounded")
        assert result.fields["date"].value == "09/09/2022"  # the other fields keep the first answer

    # An answer nothing rules out goes through in one call.
    fixed = json.dumps({"company": "GOLDEN LEAF STATIONERY CO. (M) SDN BHD", "date": "09/09/2022", "total": "8.50"})
    result, model = run([fixed], THREE, TITLED, "retail_receipt")
    assert len(model.calls) == 1 and result.fields["company"].value == "GOLDEN LEAF STATIONERY CO. (M) SDN BHD"


def _question_for(first: str) -> str:
    """The re-ask a first answer leads to (the scripted model answers "none of them")."""
    _, model = run([first, '{"company": 0}', first], THREE, TITLED, "retail_receipt")
    return model.calls[1].messages[-1].content
