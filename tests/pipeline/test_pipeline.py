"""ChatOCR end to end with a scripted backend and pre-OCR'd text: routing, the checked extraction
loop, bad model answers, failures in batches, chat sessions, results that round-trip as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from chatocr import ChatOCR, Extraction, load_config
from chatocr.errors import ConfigError, ContextTooLongError, InputError, ScenarioError, ServiceUnavailableError
from chatocr.extraction.extractor import json_schema_for
from chatocr.llm import ChatSettings, RetryPolicy, ScriptedChatModel
from chatocr.messages import Limits, Message
from chatocr.scenarios import load_scenarios

RECEIPT = """ACME TRADING SDN BHD
12 JALAN BESAR, 50000 KUALA LUMPUR
DATE: 01/02/2024        TIME: 10:15
CASH RECEIPT NO: CR-1001
COFFEE        2        7.00
TOTAL        RM 9.90
CASH        RM 10.00
CHANGE        RM 0.10
"""
GOOD = '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "9.90"}'
KEYS = ["company", "date", "total"]
NO_RETRY = RetryPolicy(max_attempts=1)


def make(script: object, **overrides: object) -> tuple[ChatOCR, ScriptedChatModel]:
    model = ScriptedChatModel(script, retry_policy=NO_RETRY)  # type: ignore[arg-type]
    return ChatOCR(llm=model, ocr="text", ocr_cache=False, **overrides), model  # type: ignore[arg-type]


def test_named_scenario_extracts_grounded_values_with_provenance() -> None:
    ocr, model = make([GOOD])
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert result.ok and result.route is not None and result.route.mode == "given"
    assert result.values == {"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "9.90"}
    total = result.fields["total"]
    assert total.status == "grounded" and total.normalized == "9.90" and total.match == "exact"
    assert total.evidence and "9.90" in total.evidence[0].text and len(total.evidence[0].box) == 4
    assert result.fields["date"].normalized == "2024-02-01"
    assert result.steps == 1 and len(model.calls) == 1
    assert result.examples and all(e.startswith("retail_receipt/") for e in result.examples)
    sent = model.calls[0].messages
    assert sent[-1].role == "user" and "ACME TRADING" in sent[-1].content
    assert model.calls[0].settings.json_mode["required"] == KEYS  # type: ignore[index]


def test_examples_are_projected_onto_the_requested_keys() -> None:
    ocr, model = make([GOOD])
    ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    answers = [m.content for m in model.calls[0].messages if m.role == "assistant"]
    assert answers
    for line in "\n".join(answers).splitlines():
        payload = json.loads(line[line.index("{") :])
        assert list(payload) == KEYS


def test_a_scenario_given_as_a_yaml_file_brings_its_examples(tmp_path: Path) -> None:
    """The file joins the library after the pipeline indexed the examples: its own are used (they
    were silently missing, leaving a file scenario zero-shot)."""
    yaml_file = tmp_path / "shop_slip.yaml"
    yaml_file.write_text(
        "name: shop_slip\ntitle: Shop slip\nlanguage: en\ndescription: A slip.\n"
        "fields:\n  - name: total\n    type: amount\nexamples:\n"
        '  - id: one\n    text: |-\n      KEDAI SATU\n      TOTAL RM 3.00\n    answer:\n      total: "3.00"\n',
        encoding="utf-8",
    )
    ocr, model = make(['{"total": "9.90"}'])
    result = ocr.extract(RECEIPT.encode(), scenario=str(yaml_file))
    assert result.ok and result.values == {"total": "9.90"}
    assert result.examples == ["shop_slip/one"]
    assert "KEDAI SATU" in "".join(m.content for m in model.calls[0].messages)


def test_prescore_routes_a_receipt_without_an_llm_call() -> None:
    ocr, _ = make([GOOD])
    result = ocr.extract(RECEIPT.encode(), keys=KEYS)
    assert result.route is not None and result.route.mode == "prescore"
    assert result.scenario == "retail_receipt"
    assert [c.purpose for c in result.calls] == ["extract"]


def test_unfamiliar_document_falls_back_when_the_classifier_says_none() -> None:
    letter = "Dear Ms Smith,\nThank you for your letter of 3 May.\nYours sincerely,\nJohn Doe\n"
    ocr, _ = make(['{"scenario": "none", "confidence": 0.9}', '{"recipient": "Ms Smith", "sender": "John Doe"}'])
    result = ocr.extract(letter.encode(), keys=["recipient", "sender"])
    assert result.ok
    assert result.route is not None and result.route.mode == "fallback" and "none" in result.route.reason
    assert result.scenario is None
    assert [c.purpose for c in result.calls] == ["classify", "extract"]
    assert result.fields["sender"].status == "grounded"


def test_classifier_failure_or_off_still_extracts() -> None:
    letter = "Dear Ms Smith,\nThank you.\nJohn Doe\n"
    ocr, _ = make([ServiceUnavailableError("down"), '{"sender": "John Doe"}'])
    result = ocr.extract(letter.encode(), keys=["sender"])
    assert result.ok and result.route is not None and result.route.mode == "fallback"
    assert result.calls[0].error and "ServiceUnavailableError" in result.calls[0].error
    ocr, model = make(['{"sender": "John Doe"}'], classify=False)
    result = ocr.extract(letter.encode(), keys=["sender"])
    assert result.route is not None and "classifier off" in result.route.reason and len(model.calls) == 1


def test_no_keys_and_no_match_uses_the_generic_fields() -> None:
    ocr, _ = make(['{"scenario": "none", "confidence": 1}', "{}"], max_steps=1)
    result = ocr.extract(b"Hello world, nothing to see here\n")
    assert set(result.fields) == {f.name for f in ocr.library.get("generic").fields}
    assert any("generic" in w for w in result.warnings)


def test_prose_then_json_is_re_asked_with_the_problem() -> None:
    ocr, model = make(["I think the total is 9.90.", GOOD])
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert result.steps == 2 and all(f.status == "grounded" for f in result.fields.values())
    repair = model.calls[1].messages[-1]
    assert repair.role == "user" and "no JSON object" in repair.content
    assert model.calls[1].messages[-2].content == "I think the total is 9.90."
    assert [c.purpose for c in result.calls] == ["extract", "repair"]


def test_broken_json_extra_keys_and_hallucinations_are_re_asked_then_flagged() -> None:
    answers = [
        '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "99.99", "tip": "1"}',
        '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "99.99"}',
        '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "99.99"}',
    ]
    ocr, model = make(answers)
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    first_repair = model.calls[1].messages[-1].content
    assert "unexpected keys ['tip']" in first_repair and "'99.99' does not occur in the OCR text" in first_repair
    assert result.steps == 3
    assert result.fields["total"].status == "ungrounded" and not result.fields["total"].trusted
    assert "total" not in result.trusted_values() and result.values["total"] == "99.99"
    assert any("do not trust" in w for w in result.warnings)
    assert any("unresolved after 3 step(s)" in w for w in result.warnings)


def test_best_answer_per_field_is_kept_across_steps() -> None:
    answers = [
        '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "99.99"}',
        '{"company": "WRONG CO", "date": "01/02/2024", "total": "9.90"}',
        '{"company": "WRONG CO", "date": "01/02/2024", "total": "9.90"}',
    ]
    ocr, _ = make(answers)
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert result.values["company"] == "ACME TRADING SDN BHD"
    assert result.values["total"] == "9.90"


def test_empty_answers_spend_the_step_budget_and_return_a_partial_result() -> None:
    ocr, model = make(["", "", ""], max_steps=2)
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert result.ok and result.steps == 2 and len(model.calls) == 2
    assert all(f.status == "missing" for f in result.fields.values())
    assert "the answer was empty" in model.calls[1].messages[-1].content


def test_token_budget_stops_the_loop() -> None:
    ocr, model = make(["nope", "nope", "nope"], max_tokens=100)
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert len(model.calls) == 1
    assert any("token budget" in w for w in result.warnings)


def test_context_too_long_replans_with_less() -> None:
    model = ScriptedChatModel(
        [ContextTooLongError("too long"), GOOD], retry_policy=NO_RETRY, limits=Limits(max_input_chars=6000)
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    assert result.ok and result.replans and "re-planned with 70% of the budget" in result.replans[0]
    first, second = model.calls
    assert sum(len(m.content) for m in second.messages) < sum(len(m.content) for m in first.messages)
    assert result.calls[0].error and "ContextTooLongError" in result.calls[0].error


def test_a_document_that_ocrs_to_no_text_is_a_typed_error() -> None:
    from chatocr.ocr import OCRDocument, Page

    ocr, model = make([GOOD])
    blank = OCRDocument(pages=(Page(0, 800, 600, ()),), engine="rapid", model="test", source="blank.png", seconds=0.1)
    with pytest.raises(InputError, match="OCR found no text") as info:
        ocr.extract(blank, keys=KEYS)
    partial: Extraction = info.value.result  # type: ignore[attr-defined]
    assert partial.error is not None and partial.error["type"] == "InputError"
    assert partial.ocr["lines"] == 0
    assert not model.calls
    result = ocr.extract(b"  ", keys=KEYS, raise_errors=False)  # the text engine refuses empty input
    assert not result.ok and result.error is not None and result.error["hint"]


def test_unknown_scenario_is_refused_with_a_suggestion() -> None:
    ocr, _ = make([GOOD])
    with pytest.raises(ScenarioError, match="Did you mean 'retail_receipt'"):
        ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_reciept")


def test_batch_keeps_going_when_the_backend_fails_mid_batch(tmp_path: Path) -> None:
    files = []
    for i in range(6):
        path = tmp_path / f"r{i}.txt"
        path.write_text(RECEIPT.replace("9.90", f"{i}.90"), encoding="utf-8")
        files.append(path)

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        text = messages[-1].content
        if "3.90" in text:
            raise ServiceUnavailableError("backend down")
        total = next(f"{i}.90" for i in range(6) if f"RM {i}.90" in text)
        return GOOD.replace("9.90", total)

    ocr, _ = make(answer)
    results = list(ocr.extract_many(files, keys=KEYS, scenario="retail_receipt", concurrency=3))
    assert len(results) == 6
    failed = [r for r in results if not r.ok]
    assert [Path(r.source).name for r in failed] == ["r3.txt"]
    assert failed[0].error is not None and failed[0].error["type"] == "ServiceUnavailableError"
    for r in results:
        if r.ok:
            assert r.fields["total"].status == "grounded"


def test_extract_many_yields_results_as_they_complete(tmp_path: Path) -> None:
    import asyncio

    class Gated(ScriptedChatModel):
        """The slow document's answer waits until the fast one has been answered."""

        fast_answered: asyncio.Event | None = None

        async def _complete(self, messages, settings):  # type: ignore[no-untyped-def]
            if self.fast_answered is None:
                self.fast_answered = asyncio.Event()
            if "SLOW" in messages[-1].content:
                await self.fast_answered.wait()
            reply = await super()._complete(messages, settings)
            if "FAST" in messages[-1].content:
                self.fast_answered.set()
            return reply

    model = Gated(lambda m, s: '{"company": null}', retry_policy=NO_RETRY)
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    slow, fast = tmp_path / "slow.txt", tmp_path / "fast.txt"
    slow.write_text("SLOW SHOP\nTOTAL 1.00\n", encoding="utf-8")
    fast.write_text("FAST SHOP\nTOTAL 2.00\n", encoding="utf-8")
    order = [
        r.source for r in ocr.extract_many([slow, fast], keys=["company"], scenario="retail_receipt", concurrency=2)
    ]
    assert order == [str(fast), str(slow)]  # submitted slow first, yielded fast first
    # One at a time: submission order (an ungated model: the slow one would wait forever).
    ocr = ChatOCR(llm=ScriptedChatModel(lambda m, s: '{"company": null}'), ocr="text", ocr_cache=False)
    in_turn = [
        r.source for r in ocr.extract_many([slow, fast], keys=["company"], scenario="retail_receipt", concurrency=1)
    ]
    assert in_turn == [str(slow), str(fast)]


def test_overrides_are_validated_like_the_config() -> None:
    from chatocr.config import ChatOCRConfig

    model = ScriptedChatModel([GOOD])
    with pytest.raises(ConfigError, match="max_steps"):
        ChatOCR(llm=model, ocr="text", config=ChatOCRConfig(), max_steps=0)
    with pytest.raises(ConfigError, match="concurrency"):
        ChatOCR(llm=model, ocr="text", config=ChatOCRConfig(), concurrency=0)
    ocr = ChatOCR(llm=model, ocr="text", config=ChatOCRConfig(ocr_cache=False), max_steps=2)
    assert ocr.config.max_steps == 2 and ocr.pipeline.budget.max_steps == 2
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        list(ocr.extract_many([RECEIPT.encode()], keys=KEYS, concurrency=0))


def test_result_round_trips_as_json() -> None:
    ocr, _ = make([GOOD])
    result = ocr.extract(RECEIPT.encode(), keys=KEYS, scenario="retail_receipt")
    again = Extraction.from_json(result.to_json())
    assert again == result
    data = json.loads(result.to_json())
    assert data["ok"] is True and data["usage"]["calls"] == 1
    assert set(data["timings"]) == {"ocr_s", "llm_s", "total_s", "overhead_s"}
    assert data["plan"]["packing"] == "packed" and data["calls"][0]["messages"]


def test_user_keys_by_alias_keep_the_users_name() -> None:
    ocr, model = make(['{"发票号码": "05281746"}'])
    text = (Path(__file__).resolve().parents[2] / "samples" / "invoice.txt").read_bytes()
    result = ocr.extract(text, keys=["发票号码"], scenario="vat_invoice")
    assert result.values == {"发票号码": "05281746"} and result.fields["发票号码"].status == "grounded"
    assert "发票号码" in model.calls[0].messages[-1].content


def test_chat_session_answers_follow_ups_within_the_budget() -> None:
    model = ScriptedChatModel(
        lambda m, s: f"answer {sum(1 for x in m if x.kind == 'question')}",
        retry_policy=NO_RETRY,
        limits=Limits(max_input_chars=1200, message_overhead_tokens=0),
    )
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False)
    session = ocr.chat(RECEIPT.encode())
    first = session.ask("What is the total?")
    assert first == "answer 1"
    sent = model.calls[-1].messages
    assert sent[0].role == "system" and "ACME TRADING" in sent[1].content and sent[-1].content == "What is the total?"
    for i in range(12):
        session.ask(f"Question number {i} about the document, with some padding to use the budget?")
    assert session.dropped_history > 0  # the oldest exchanges were left out to stay in budget
    assert all(sum(len(x.content) for x in call.messages) <= 1200 for call in model.calls)
    assert session.usage["calls"] == 13
    with pytest.raises(InputError):
        session.ask("   ")


def test_config_from_toml_env_and_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chatocr.toml"
    path.write_text('[chatocr]\nllm = "ernie:ernie-3.5"\npacking = "pairs"\nmax_steps = 2\n', encoding="utf-8")
    monkeypatch.setenv("CHATOCR_PACKING", "single")
    config = load_config({"max_steps": 5}, path=path, use_files=False)
    assert (config.llm, config.packing, config.max_steps) == ("ernie:ernie-3.5", "single", 5)
    path.write_text("packing = 'sideways'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="packing"):
        load_config(path=path, use_files=False, use_env=False)
    path.write_text("packing = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path=path, use_files=False, use_env=False)
    with pytest.raises(ConfigError, match=r"unknown_key|Extra inputs"):
        load_config({"unknown_key": 1}, use_files=False, use_env=False)


def test_vlm_engine_is_built_from_a_provider_spec() -> None:
    import asyncio

    from chatocr.ocr import make_engine

    with pytest.raises(ConfigError, match="needs a vision model"):
        make_engine("vlm", {})
    with pytest.raises(ConfigError, match="Only the vlm engine"):
        make_engine("rapid:x", {})
    engine = make_engine("vlm:scripted")
    assert engine.name == "vlm"
    vision = ScriptedChatModel(["TOTAL 9.90"], retry_policy=NO_RETRY)
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(page).text((10, 40), "TOTAL 9.90", fill="black")
    ocr = ChatOCR(llm=ScriptedChatModel([GOOD]), ocr="vlm", ocr_options={"chat": vision}, ocr_cache=False)
    document = asyncio.run(ocr.read(page))
    assert document.text() == "TOTAL 9.90" and document.has_boxes is False
    assert vision.calls[0].messages[0].images  # the page went to the vision model as an image


def test_chat_without_a_system_role_counts_the_system_turn_in_the_budget() -> None:
    from chatocr.conversation import ConversationPlanner, load_prompts
    from chatocr.errors import DocumentTooLargeError
    from chatocr.messages import RoleRules
    from chatocr.tokens import CharCounter

    def planner(max_chars: int | None) -> ConversationPlanner:
        roles = RoleRules(system="none", alternate=True)
        limits = Limits(max_input_chars=max_chars, message_overhead_tokens=0, roles=roles)
        return ConversationPlanner(load_prompts("en"), CharCounter(), limits)

    messages, _ = planner(None).plan_chat("receipt", RECEIPT, [], "What is the total?")
    assert [m.role for m in messages[:2]] == ["user", "assistant"] and messages[1].kind == "ack"
    needed = sum(len(m.content) for m in messages)  # the system turn and its acknowledgement included
    assert planner(needed).plan_chat("receipt", RECEIPT, [], "What is the total?")[0] == messages
    with pytest.raises(DocumentTooLargeError):
        planner(needed - 1).plan_chat("receipt", RECEIPT, [], "What is the total?")


def test_enum_fields_are_enforced_by_the_local_models_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    ticket = load_scenarios().get("train_ticket")
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(json_schema_for(ticket.fields)))
    rule = next(line for line in grammar.splitlines() if line.startswith("ticket-grade ::="))
    choices = ticket.field("ticket_grade").choices  # type: ignore[union-attr]
    # One alternative per seat class and null: not "string | null", which would accept "网".
    assert "string" not in rule and rule.count("|") == len(choices)
