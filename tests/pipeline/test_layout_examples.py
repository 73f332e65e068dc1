"""Example selection that knows the layout: text similarity blended with where rows, numbers and
labels sit (config `example_layout`); 0 keeps the text-only ranking."""

from __future__ import annotations

from chatocr.extraction.examples import ExampleBank
from chatocr.scenarios import FieldSpec
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import Example, Scenario
from chatocr.similarity import layout_tokens

# Same shop words as the document, laid out as one run of prose.
SAME_WORDS = "KEDAI BUKU RIA SDN BHD KEDAI BUKU RIA JALAN RIA TOTAL CASH CHANGE THANK YOU KEDAI BUKU RIA"
# Other words, the document's layout: a name at the top, label / number rows at the bottom.
SAME_LAYOUT = "\n".join(
    [
        "MEGA MART ENTERPRISE",
        "LOT 9 TAMAN SRI",
        "DATE:  12/12/2020",
        "ITEM A      4.00",
        "JUMLAH      4.00",
        "TUNAI      5.00",
        "BAKI      1.00",
    ]
)
DOCUMENT = "\n".join(
    [
        "KEDAI BUKU RIA SDN BHD",
        "JALAN RIA 3",
        "DATE:  01/02/2024",
        "BUKU      7.00",
        "TOTAL      9.00",
        "CASH      10.00",
        "CHANGE      1.00",
    ]
)


def library() -> ScenarioLibrary:
    field = FieldSpec(name="total")
    examples = (
        Example(id="words", text=SAME_WORDS, answer={"total": None}),
        Example(id="layout", text=SAME_LAYOUT, answer={"total": "4.00"}),
    )
    return ScenarioLibrary(
        [Scenario(name="r", title="r", language="en", description="r", fields=(field,), examples=examples)]
    )


def test_layout_tokens_describe_rows_not_words() -> None:
    a, b = layout_tokens(DOCUMENT), layout_tokens(SAME_LAYOUT)
    shared = set(a) & set(b)
    assert {"1|label date", "4|text num"} <= shared  # the date row near the top, amounts at the bottom
    assert not set(layout_tokens(SAME_WORDS)) & {"1|label date", "4|text num"}


def test_layout_weight_changes_the_ranking_and_zero_keeps_text_only() -> None:
    fields = (FieldSpec(name="total"),)
    text_only = ExampleBank(library()).select(DOCUMENT, fields, None, focus=False)
    assert [e.id for e in text_only] == ["r/words", "r/layout"]
    blended = ExampleBank(library(), layout_weight=0.7).select(DOCUMENT, fields, None, focus=False)
    assert [e.id for e in blended] == ["r/layout", "r/words"]
