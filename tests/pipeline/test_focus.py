"""`focus`: rules about fields nobody asked for are left out, example texts are cut to the lines
holding the requested answers; and re-planning after "context too long" shrinks below what was sent."""

from __future__ import annotations

from chatocr import ChatOCR
from chatocr.errors import ContextTooLongError
from chatocr.extraction.examples import ELISION, focus_text
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.messages import Limits
from chatocr.scenarios.loader import load_scenario_text, load_scenarios

from .test_pipeline import GOOD, KEYS, RECEIPT

SCENARIO = """
name: shop
title: Shop receipt
language: en
description: A receipt.
instructions: |-
  - company is the shop's name at the top.
  - date and time are the purchase's, as printed.
  - total is the amount paid, not the subtotal;
    not the cash tendered either.
  - tax_id is the GST number; tax is the tax amount.
  - items: one per line; amount is the line total.
  - amounts are numbers without the currency.
fields:
  - {name: company, type: text}
  - {name: date, type: text}
  - {name: time, type: text}
  - {name: total, type: amount}
  - {name: tax, type: amount}
  - {name: tax_id, type: text}
  - {name: items, type: list, items: [{name: amount, type: amount}]}
"""


def rules(text: str) -> list[str]:
    return [line.split(" ")[1].rstrip(":") for line in text.splitlines() if line.startswith("- ")]


def test_rules_about_fields_not_asked_for_are_left_out() -> None:
    scenario = load_scenario_text(SCENARIO)
    # "total" appears inside the items rule ("the line total") but is not its subject: dropped.
    assert rules(scenario.instructions_for(["company", "total"])) == ["company", "total", "amounts"]
    # A continuation line stays with its rule.
    assert "not the cash tendered either" in scenario.instructions_for(["total"])
    # "date and time": a rule about either is kept for both; aliases and unknown keys are fine.
    assert rules(scenario.instructions_for(["time", "nonsense"])) == ["date", "amounts"]
    # tax_id is not "tax": the longer name wins at a clause start; "tax" opens the second clause.
    assert rules(scenario.instructions_for(["tax"])) == ["tax_id", "amounts"]
    assert rules(scenario.instructions_for(["items"])) == ["items", "amounts"]
    # Everything asked: unchanged.
    everything = [f.name for f in scenario.fields]
    assert scenario.instructions_for(everything) == scenario.instructions


def test_instructions_that_are_not_bullets_are_kept_whole() -> None:
    scenario = load_scenario_text(SCENARIO.replace("  - company is", "  Read carefully.\n  - company is"))
    assert scenario.instructions_for(["company"]) == scenario.instructions


def test_built_in_chinese_rules_are_filtered_by_their_subjects() -> None:
    ticket = load_scenarios().get("train_ticket")
    kept = ticket.instructions_for(["destination_station"])
    assert "destination_station" in kept and "ticket_num" not in kept and "ticket_price" not in kept


def test_focus_text_keeps_answer_lines_and_neighbours() -> None:
    text = (
        "ACME STORE\n1 MAIN ST\nSPRINGFIELD\nTEL 555\nITEM A 1.00\nITEM B 2.00\nITEM C 3.00\n"
        "SUBTOTAL 6.00\nTOTAL 6.00\nCASH 10.00\nCHANGE 4.00\nTHANK YOU\nCOME AGAIN"
    )
    focused = focus_text(text, {"company": "ACME STORE", "address": "1 Main St Springfield", "total": "6.00"})
    # Address lines are found as parts of the joined value; case and spaces do not matter.
    # "6.00" occurs on SUBTOTAL and TOTAL: both kept, with one neighbour each.
    assert focused.splitlines() == [
        "ACME STORE",
        "1 MAIN ST",
        "SPRINGFIELD",
        "TEL 555",
        ELISION,
        "ITEM C 3.00",
        "SUBTOTAL 6.00",
        "TOTAL 6.00",
        "CASH 10.00",
        ELISION,
    ]
    # Nothing to find (all null) or nothing to save: unchanged.
    assert focus_text(text, {"company": None, "total": ""}) == text
    assert focus_text("A\nB 1\nC", {"x": "1"}) == "A\nB 1\nC"
    # List answers: every item's values count.
    assert "ITEM B 2.00" in focus_text(text, {"items": [{"amount": "2.00"}]})


def test_focused_extraction_sends_fewer_tokens_and_the_same_answer() -> None:
    sent = {}
    for focus in (True, False):
        model = ScriptedChatModel([GOOD], retry_policy=RetryPolicy(max_attempts=1))
        ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False, focus=focus, max_examples="all")
        result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
        assert result.ok and result.values["total"] == "9.90"
        messages = model.calls[0].messages
        sent[focus] = "\n".join(m.content for m in messages)
        assert len(result.examples) == len(ocr.library.get("retail_receipt").examples)  # all, either way
    assert len(sent[True]) < 0.75 * len(sent[False])
    assert ELISION in sent[True] and ELISION not in sent[False]
    # The items rule of retail_receipt is not sent when items were not asked for.
    assert "items: one entry per purchased line" in sent[False]
    assert "items: one entry per purchased line" not in sent[True]


def test_default_is_at_most_two_examples() -> None:
    model = ScriptedChatModel([GOOD], retry_policy=RetryPolicy(max_attempts=1))
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(
        RECEIPT.encode(), keys=KEYS, scenario="retail_receipt"
    )
    assert len(result.examples) == 2 and result.plan is not None
    assert any("max_examples" in d.reason for d in result.plan.dropped)


def test_replan_shrinks_below_what_was_refused_even_within_the_declared_limits() -> None:
    # The backend declares a generous limit but refuses: re-planning at 70% of the declared budget
    # would send the same conversation again; it must send less than it did.
    model = ScriptedChatModel(
        [ContextTooLongError("too long"), GOOD],
        retry_policy=RetryPolicy(max_attempts=1),
        limits=Limits(max_input_chars=1_000_000),
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False, max_examples="all")
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    sizes = [sum(len(m.content) for m in call.messages) for call in model.calls]
    assert result.ok and len(result.replans) == 1
    assert sizes[1] <= 0.7 * sizes[0] and len(result.examples) < 4


def test_limits_capped_keeps_the_smaller_budget() -> None:
    limits = Limits(max_input_chars=500, context_window=4096, reserved_output_tokens=512)
    capped = limits.capped(chars=800, tokens=1000)
    assert capped.max_input_chars == 500 and capped.input_token_budget() == 1000
    assert Limits().capped(chars=10, tokens=20).max_input_chars == 10


def test_replan_drops_every_example_when_less_than_what_was_refused_cannot_hold_the_task() -> None:
    model = ScriptedChatModel(
        [ContextTooLongError("too long"), GOOD],
        retry_policy=RetryPolicy(max_attempts=1),
        limits=Limits(max_input_chars=6000),
    )
    # A long document: the task alone is more than 70% of the refused conversation, whatever the
    # size of the built-in examples.
    long_receipt = RECEIPT + "\n" + "\n".join(f"ITEM {i:03d} NOTHING TO SEE AT ALL 1.00" for i in range(60))
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False).extract(
        long_receipt.encode(), keys=KEYS, scenario="retail_receipt"
    )
    first, second = model.calls
    task_only = sum(len(m.content) for m in second.messages)
    assert task_only > 0.7 * sum(len(m.content) for m in first.messages)  # the premise
    assert result.ok and result.examples == [] and "(0 examples" in result.replans[0]
    assert sum(len(m.content) for m in second.messages) < sum(len(m.content) for m in first.messages)
