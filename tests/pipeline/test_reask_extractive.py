"""Field-aware re-asks (numbered candidates from the page) and extractive decoding (text fields
restricted to the page's strings), without a model: what is offered, what an answer becomes."""

from __future__ import annotations

import json

import pytest

from chatocr.conversation.templates import load_prompts
from chatocr.extraction.extractive import extractive_schema, page_strings
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.reask import MAX_CANDIDATES, answers_from, choice_schema, questions_for, render_question
from chatocr.extraction.result import FieldResult
from chatocr.extraction.validation import check_value
from chatocr.scenarios import FieldSpec
from chatocr.scenarios.model import FieldType

from .test_snapping import document

RECEIPT = document(
    "KEDAI MAJU JAYA",
    "SDN BHD",
    "LOT 7, JALAN MERDEKA,",
    "43000 KAJANG",
    ("DATE:", "03/04/2021", "TIME: 10:05"),
    ("SUBTOTAL", "12.00"),
    ("TOTAL", "12.60"),
    ("CASH", "20.00"),
)
NOISE = document("~~ ,. :; ||", "#%&* ^^", "lIl1 oO0 ..")
COMPANY = FieldSpec(name="company", required=True, aliases=("store",))
DATE = FieldSpec(name="date", type=FieldType.date, required=True)
TOTAL = FieldSpec(name="total", type=FieldType.amount, required=True)


def index_of(doc: object) -> TextIndex:
    return TextIndex(doc.layout())  # type: ignore[attr-defined]


def test_required_bad_fields_get_numbered_candidates_from_the_page() -> None:
    results = {
        "company": FieldResult("company", "KEDAI MAJOO JAYA SDN", status="ungrounded"),
        "date": FieldResult("date", None, status="missing"),
        "total": FieldResult("total", "12.6O", status="invalid"),
    }
    questions = {q.field.name: q for q in questions_for((COMPANY, DATE, TOTAL), results, index_of(RECEIPT))}
    assert set(questions) == {"company", "date", "total"}
    assert [c.text for c in questions["date"].candidates] == ["03/04/2021"]
    totals = [c.text for c in questions["total"].candidates]
    assert "12.60" in totals and "20.00" not in totals  # only rows naming the field ("TOTAL", "SUBTOTAL")
    company = [c.text for c in questions["company"].candidates]
    assert company[0] == "KEDAI MAJU JAYA" and "KEDAI MAJU JAYA SDN BHD" in company  # two lines joined
    schema = choice_schema(list(questions.values()))
    assert schema["properties"]["date"] == {"enum": [0, 1]}
    text = render_question(load_prompts("en"), list(questions.values()))
    assert "1. 03/04/2021" in text and '"company"' in text and "0" in text


def test_grounded_optional_list_and_enum_fields_are_not_reasked() -> None:
    fields = (
        COMPANY,
        FieldSpec(name="note"),  # not required
        FieldSpec(name="grade", type=FieldType.enum, choices=("a", "b"), required=True),
    )
    results = {
        "company": FieldResult("company", "KEDAI MAJU JAYA", status="grounded"),
        "note": FieldResult("note", None, status="missing"),
        "grade": FieldResult("grade", None, status="missing"),
    }
    assert questions_for(fields, results, index_of(RECEIPT)) == []


def test_a_choice_becomes_the_pages_text_and_zero_or_nonsense_none() -> None:
    results = {"date": FieldResult("date", None, status="missing"), "total": FieldResult("total", None)}
    questions = questions_for((DATE, TOTAL), results, index_of(RECEIPT))
    chosen = answers_from(questions, {"date": 1, "total": "0"})
    assert chosen == {"date": "03/04/2021", "total": None}
    assert answers_from(questions, {"date": 9, "total": "x"}) == {"date": None, "total": None}
    assert answers_from(questions, None) == {"date": None, "total": None}


def test_page_strings_hold_lines_joins_and_values_after_labels() -> None:
    strings = page_strings(RECEIPT.layout())
    assert "KEDAI MAJU JAYA" in strings and "KEDAI MAJU JAYA SDN BHD" in strings
    assert "LOT 7, JALAN MERDEKA, 43000 KAJANG" in strings
    assert "10:05" in strings  # "TIME: 10:05" without its label
    assert len(strings) == len(set(strings))


def test_extractive_schema_restricts_text_fields_and_always_allows_null() -> None:
    schema = extractive_schema((COMPANY, DATE, TOTAL), NOISE.layout())
    company = schema["properties"]["company"]["enum"]
    assert company[-1] is None and "~~ ,. :; ||" in company
    assert schema["properties"]["date"] == {"type": ["string", "null"]}  # dates keep free generation
    assert schema["required"] == ["company", "date", "total"]


def test_the_local_models_grammar_accepts_the_extractive_schema() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    schema = extractive_schema((COMPANY, DATE), RECEIPT.layout())
    gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    rule = next(line for line in gbnf.splitlines() if line.startswith("company ::="))
    assert "KEDAI MAJU JAYA" in rule and "null" in rule and "string" not in rule
    llama_grammar.LlamaGrammar.from_string(gbnf, verbose=False)  # it parses


# A receipt whose title sits above the name, and whose name runs over two lines.
TITLED = document(
    "SIMPLIFIED TAX INVOICE",
    "GOLDEN LEAF STATIONERY",
    "CO. (M) SDN BHD",
    "12, JALAN BUNGA RAYA,",
    "75100 MELAKA",
    ("DATE:", "09/09/2022"),
    ("TOTAL", "8.50"),
)
NEVER = (
    r"((simplified|official|tax)\s+)*(tax\s+invoice|invoice|receipt)",
    r"((co\.?|sdn\.?|bhd\.?|\([a-z]\))\s*)+",
)
COMPANY_NEVER = FieldSpec(name="company", required=True, never=NEVER)


def test_a_ruled_out_answer_is_reasked_among_lines_that_are_not_ruled_out() -> None:
    results = {"company": FieldResult("company", "SIMPLIFIED TAX INVOICE", status="invalid")}
    (question,) = questions_for((COMPANY_NEVER,), results, index_of(TITLED))
    offered = [c.text for c in question.candidates]
    # Not the title, nor lines like it: the page's first lines, each joined with its neighbours.
    assert not any(COMPANY_NEVER.ruled_out(text) for text in offered)
    assert "SIMPLIFIED TAX INVOICE" not in " | ".join(offered)
    assert "GOLDEN LEAF STATIONERY CO. (M) SDN BHD" in offered


def test_a_second_line_answered_alone_is_offered_with_the_line_before() -> None:
    results = {"company": FieldResult("company", "CO. (M) SDN BHD", status="invalid")}
    (question,) = questions_for((COMPANY_NEVER,), results, index_of(TITLED))
    offered = [c.text for c in question.candidates]
    assert offered[0] == "GOLDEN LEAF STATIONERY CO. (M) SDN BHD"  # the line the model meant, completed
    assert len(offered) == len(set(offered)) <= MAX_CANDIDATES
    # Without `never`, a line similar to an ungrounded answer is still joined to the one before it.
    plain = FieldSpec(name="company", required=True)
    ungrounded = {"company": FieldResult("company", "CO. (M) SDN BHO", status="ungrounded")}
    (question,) = questions_for((plain,), ungrounded, index_of(TITLED))
    assert "GOLDEN LEAF STATIONERY CO. (M) SDN BHD" in [c.text for c in question.candidates]


def test_extractive_decoding_never_offers_a_ruled_out_string() -> None:
    enum = extractive_schema((COMPANY_NEVER,), TITLED.layout())["properties"]["company"]["enum"]
    assert "SIMPLIFIED TAX INVOICE" not in enum and "CO. (M) SDN BHD" not in enum
    assert "GOLDEN LEAF STATIONERY CO. (M) SDN BHD" in enum and enum[-1] is None


# The same receipt with its registration number, tax and phone lines, which `trim` names.
REGISTERED = document(
    "SIMPLIFIED TAX INVOICE",
    "GOLDEN LEAF STATIONERY SDN BHD",
    "884512-W",
    "GST ID: 000123456789",
    "12, JALAN BUNGA RAYA,",
    "75100 MELAKA",
    "TEL: 06-281 2211",
    ("DATE:", "09/09/2022"),
)
TRIM = (r"\d{4,14}\s*-\s*[a-z]", r"(gst|tel)\b.*\d.*")
COMPANY_TRIM = FieldSpec(name="company", required=True, never=NEVER, trim=TRIM)


def test_a_line_the_field_trims_is_never_its_value_alone() -> None:
    assert COMPANY_TRIM.ruled_out("TEL: 06-281 2211") == TRIM[1]
    assert COMPANY_TRIM.ruled_out("GOLDEN LEAF STATIONERY SDN BHD 884512-W") is None  # cut by snapping instead
    checked = check_value(COMPANY_TRIM, "884512-W")
    assert checked.problem and "never the company" in checked.problem
    results = {"company": FieldResult("company", "884512-W", status="invalid")}
    (question,) = questions_for((COMPANY_TRIM,), results, index_of(REGISTERED))
    offered = [c.text for c in question.candidates]
    assert "GOLDEN LEAF STATIONERY SDN BHD" in offered
    assert not {"884512-W", "GST ID: 000123456789", "TEL: 06-281 2211"} & set(offered)
    enum = extractive_schema((COMPANY_TRIM,), REGISTERED.layout())["properties"]["company"]["enum"]
    assert "884512-W" not in enum and "GOLDEN LEAF STATIONERY SDN BHD" in enum
