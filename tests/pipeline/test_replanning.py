"""Re-planning is the planner's one `shrink` (fewer examples first, then the document in smaller
parts), used for "context too long" and for re-asks that would not fit; the router's classifier
uses the configured prompts, settings and the backend's budget; the plan order follows the
backend's declared prefix cache, not its provider name."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from chatocr import ChatOCR
from chatocr.conversation import ConversationPlanner, PlanExample, TaskSpec, load_prompts
from chatocr.errors import ContextTooLongError, DocumentTooLargeError
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.messages import Limits, Message
from chatocr.scenarios import FieldSpec
from chatocr.tokens import CharCounter

NO_RETRY = RetryPolicy(max_attempts=1)
TASK = TaskSpec("receipt", (FieldSpec(name="company"), FieldSpec(name="total", type="amount")))
DOC = "\n".join(f"line {i:02d} ACME TRADING TOTAL {i}.90" for i in range(40))
RECEIPT = "ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL        RM 9.90\nCASH RM 10.00\n"
GOOD = '{"company": "ACME TRADING SDN BHD", "total": "9.90"}'


def examples(n: int) -> list[PlanExample]:
    return [
        PlanExample(f"ex{i}", f"SHOP {i} SDN BHD\n" + "ITEM 1.00\n" * 20 + f"TOTAL {i}.50", {"company": f"SHOP {i}"})
        for i in range(n)
    ]


def planner(limits: Limits) -> ConversationPlanner:
    return ConversationPlanner(load_prompts("en"), CharCounter(), limits)


def size(messages: list[Message]) -> int:
    return sum(len(m.content) for m in messages)


def test_shrink_drops_the_least_relevant_examples_first_and_keeps_the_document_whole() -> None:
    big = planner(Limits(max_input_chars=100_000))
    ranked = examples(4)
    plan = big.plan(TASK, ranked, DOC)
    assert len(plan.report.included) == 4
    within = Limits(max_input_chars=size(plan.messages) - 1)
    smaller = big.shrink(plan, TASK, ranked, DOC, within=within)
    assert sorted(e.id for e in smaller.report.included) == ["ex0", "ex1", "ex2"]  # ex3, the least relevant, went
    assert smaller.report.document_parts == 1 and size(smaller.messages) <= within.max_input_chars  # type: ignore[operator]


def test_shrink_splits_the_document_when_dropping_examples_is_not_enough() -> None:
    big = planner(Limits(max_input_chars=100_000))
    ranked = examples(2)
    plan = big.plan(TASK, ranked, DOC)
    within = Limits(max_message_chars=1000, max_input_chars=100_000)
    smaller = big.shrink(plan, TASK, ranked, DOC, within=within)
    assert smaller.report.included == [] and smaller.report.document_parts > 1
    assert all(len(m.content) <= 1000 for m in smaller.messages)
    with pytest.raises(DocumentTooLargeError):
        big.shrink(plan, TASK, ranked, DOC, within=Limits(max_input_chars=200))


def test_shrink_makes_room_for_a_re_ask() -> None:
    ranked = examples(3)
    unlimited = planner(Limits(max_input_chars=100_000)).plan(TASK, ranked, DOC)
    extra = [Message("assistant", "x" * 300, kind="answer"), Message("user", "y" * 300, kind="repair")]
    limited = planner(Limits(max_input_chars=size(unlimited.messages) + 100))
    plan = limited.plan(TASK, ranked, DOC)
    assert len(plan.report.included) == 3 and not limited.fits([*plan.messages, *extra])
    smaller = limited.shrink(plan, TASK, ranked, DOC, extra=extra)
    assert len(smaller.report.included) < 3 and limited.fits([*smaller.messages, *extra])


def test_a_refused_call_does_not_use_a_step() -> None:
    model = ScriptedChatModel([ContextTooLongError("too long"), GOOD], retry_policy=NO_RETRY)
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False, max_steps=1)
    result = ocr.extract(RECEIPT.encode(), keys=["company", "total"], scenario="retail_receipt")
    assert result.ok and result.steps == 1 and len(model.calls) == 2
    assert [c.purpose for c in result.calls] == ["extract", "extract"] and result.calls[0].error
    assert result.values == {"company": "ACME TRADING SDN BHD", "total": "9.90"}
    assert len(result.examples) < len(model.calls[0].messages)  # the plan report is the one sent last


def test_a_re_ask_that_would_not_fit_drops_examples() -> None:
    long_prose = "I am not sure. " * 20
    probe = ScriptedChatModel(['{"total": "9.90"}'], retry_policy=NO_RETRY, limits=Limits(max_input_chars=100_000))
    ChatOCR(llm=probe, ocr="text", ocr_cache=False).extract(RECEIPT.encode(), keys=["total"], scenario="retail_receipt")
    first_size = size(list(probe.calls[0].messages))
    model = ScriptedChatModel(
        [long_prose, '{"total": "9.90"}'], retry_policy=NO_RETRY, limits=Limits(max_input_chars=first_size + 450)
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    result = ocr.extract(RECEIPT.encode(), keys=["total"], scenario="retail_receipt")
    assert result.ok and result.steps == 2
    first, second = (list(call.messages) for call in model.calls)
    assert second[-2].kind == "answer" and second[-2].content == long_prose
    assert second[-1].kind == "repair" and size(second) <= first_size + 450

    def example_chars(messages: list[Message]) -> int:
        return size([m for m in messages if m.kind in ("examples", "answers")])

    assert example_chars(second) < example_chars(first)  # examples made room for the re-ask


def test_the_classifier_uses_the_configured_prompts_settings_and_budget(tmp_path: Path) -> None:
    custom = tmp_path / "prompts" / "en"
    custom.mkdir(parents=True)
    (custom / "classifier.j2").write_text(
        "CUSTOM-CLASSIFIER {% for s in scenarios %}{{ s.name }} {% endfor %}\n{{ text }}", encoding="utf-8"
    )
    letter = "Dear Ms Smith,\n" + "We enjoyed the concert and the walk by the river with friends.\n" * 60
    model = ScriptedChatModel(
        ['{"scenario": "none", "confidence": 0.9}', '{"sender": "Ms Smith"}'],
        retry_policy=NO_RETRY,
        limits=Limits(max_message_chars=1500),
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False, prompt_dirs=[str(tmp_path / "prompts")], timeout=42.0)
    result = ocr.extract(letter.encode(), keys=["sender"], raise_errors=False)
    assert [c.purpose for c in result.calls] == ["classify", "extract"]
    classify = model.calls[0]
    assert classify.messages[0].content.startswith("CUSTOM-CLASSIFIER")
    assert len(classify.messages[0].content) <= 1500  # clipped to the backend's per-message limit
    assert classify.settings.timeout == 42.0 and classify.settings.max_output_tokens == 64


def test_order_auto_follows_the_backends_prefix_cache_capability() -> None:
    class Cached(ScriptedChatModel):
        supports_prefix_cache: ClassVar[bool] = True

    assert ChatOCR(llm=Cached([GOOD]), ocr="text", ocr_cache=False).pipeline.policy.order == "stable"
    plain = ChatOCR(llm=ScriptedChatModel([GOOD]), ocr="text", ocr_cache=False)
    assert plain.pipeline.policy.order == "relevance"
    named_local = ScriptedChatModel([GOOD])
    named_local.provider = "local"  # a provider name alone decides nothing
    assert ChatOCR(llm=named_local, ocr="text", ocr_cache=False).pipeline.policy.order == "relevance"
